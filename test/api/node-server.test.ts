/**
 * The node server writes answers in batches at the end of each event-loop turn: every request
 * must still get its own answer, and an answer node refuses to write must not take the process
 * (or the rest of its batch) down.
 */
import type { Server } from 'node:http'
import { Agent, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { HttpRequest, HttpResponse } from '../../src/api/http.ts'
import { createNodeServer } from '../../src/api/node-server.ts'

let server: Server | undefined
afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined))
  server = undefined
})

async function serve(handler: (request: HttpRequest) => Promise<HttpResponse>): Promise<number> {
  server = createNodeServer(handler)
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

function get(port: number, path: string, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('node server', () => {
  it('answers each of many concurrent requests with its own response', async () => {
    const port = await serve(async (req) => {
      // Some handlers finish in the same turn, some a few turns later.
      if (req.target.endsWith('7')) await new Promise((resolve) => setTimeout(resolve, 5))
      return { status: 200, headers: { 'content-type': 'text/plain' }, body: `you asked for ${req.target}` }
    })
    const agent = new Agent({ keepAlive: true, maxSockets: 50 })
    const paths = Array.from({ length: 300 }, (_, i) => `/item/${i}`)
    const replies = await Promise.all(paths.map((path) => get(port, path, agent)))
    agent.destroy()
    expect(replies.map((r) => r.body)).toEqual(paths.map((path) => `you asked for ${path}`))
    expect(replies.every((r) => r.status === 200)).toBe(true)
  })

  it('answers 500 when node refuses to write a response, and keeps serving the others', async () => {
    const port = await serve(
      async (req): Promise<HttpResponse> =>
        req.target === '/bad'
          ? { status: 200, headers: { 'x-broken': 'line\nbreak' }, body: 'never sent' }
          : { status: 200, headers: {}, body: 'fine' },
    )
    const agent = new Agent({ keepAlive: true, maxSockets: 10 })
    const replies = await Promise.all(['/ok1', '/bad', '/ok2'].map((path) => get(port, path, agent)))
    agent.destroy()
    expect(replies.map((r) => r.status)).toEqual([200, 500, 200])
    expect(replies[1].body).toBe('{"detail":"Internal server error"}')
    expect(replies[0].body).toBe('fine')
  })
})
