/**
 * Graceful shutdown of the real process (`node src/main.ts`): on SIGTERM or SIGINT every request
 * the server has begun gets its full answer, new connections are refused, the process
 * exits 0 without waiting for idle keep-alive clients, and a restart on the same DATA_DIR has
 * everything those requests wrote.
 *
 * "In flight" is made exact with `Expect: 100-continue`: the server answers `100 Continue` only
 * once it has parsed the request head, so when every client has seen it, every request is under
 * way. Half of them have sent their body by the time the signal is sent (argon2 work running),
 * the other half send it only after the server has announced the shutdown (upload in progress).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { httpCall, isAnswer } from '../../harness/client.ts'
import { freePort, type ServerProcess, spawnServer, stopServer, waitReady } from '../../harness/server.ts'

/** Below the server's keepAliveTimeout (5 s): a server that waits for idle keep-alive clients misses it. */
const EXIT_TIMEOUT_MS = 4_500

type Reply = { status: number; headers: Record<string, string | string[] | undefined>; text: string }

/** A POST that waits for `100 Continue` before its body may go; `send` releases the body. */
function continued(
  url: string,
  agent: Agent,
  body: { contentType: string; text: string },
): { begun: Promise<void>; send(): void; reply: Promise<Reply> } {
  let begin: () => void = () => {}
  const begun = new Promise<void>((resolve) => {
    begin = resolve
  })
  const req = request(url, {
    method: 'POST',
    agent,
    headers: {
      'content-type': body.contentType,
      'content-length': Buffer.byteLength(body.text),
      expect: '100-continue',
    },
  })
  const reply = new Promise<Reply>((resolve, reject) => {
    req.on('response', (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
      res.on('error', reject)
    })
    req.on('error', reject)
  })
  req.on('continue', () => begin())
  req.flushHeaders()
  return { begun, send: () => req.end(body.text), reply }
}

/** Resolves with the connection error code, or 'connected'. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve('connected')
    })
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
  })
}

/** Connects until refused (the server may take a moment after announcing it); the last result. */
async function refusedWithin(port: number, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const result = await tryConnect(port)
    if (result === 'ECONNREFUSED' || Date.now() > deadline) return result
    await sleep(20)
  }
}

async function waitForOutput(server: ServerProcess, text: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!server.output().includes(text)) {
    if (Date.now() > deadline) throw new Error(`no "${text}" in the server output:\n${server.output()}`)
    await sleep(5)
  }
}

const form = (username: string, password: string) => ({
  contentType: 'application/x-www-form-urlencoded',
  text: new URLSearchParams({ username, password }).toString(),
})

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

describe('graceful shutdown of the service process', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal}: in-flight requests are answered, new connections refused, exit 0, data kept`, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'auth-shutdown-'))
      const port = await freePort()
      const server = spawnServer({ dataDir, port })
      cleanups.push(async () => {
        await stopServer(server, 'SIGKILL')
        rmSync(dataDir, { recursive: true, force: true })
      })
      await waitReady(server)
      const tag = signal.toLowerCase()
      const existing = { username: `existing_${tag}`, password: `Sh0rt-lived-${tag}!` }
      const created = await httpCall(server.url, 'POST', '/auth/register', {
        json: { ...existing, email: `${existing.username}@example.com` },
      })
      expect(isAnswer(created) && created.status).toBe(200)

      // Keep-alive sockets stay open on our side: the server must not wait for us to close them.
      const agent = new Agent({ keepAlive: true, keepAliveMsecs: 60_000 })
      cleanups.push(async () => agent.destroy())
      const newcomer = {
        username: `newcomer_${tag}`,
        email: `newcomer_${tag}@example.com`,
        password: `Fre5h-start-${tag}!`,
      }
      const inFlight = [
        ...Array.from({ length: 4 }, () =>
          continued(`${server.url}/auth/login`, agent, form(existing.username, existing.password)),
        ),
        continued(`${server.url}/auth/register`, agent, {
          contentType: 'application/json',
          text: JSON.stringify(newcomer),
        }),
      ]
      await Promise.all(inFlight.map((r) => r.begun))
      const sentBefore = inFlight.filter((_, i) => i % 2 === 0)
      const sentAfter = inFlight.filter((_, i) => i % 2 === 1)
      for (const r of sentBefore) r.send()

      process.kill(server.child.pid as number, signal) // not child.kill(): see stopServer
      await waitForOutput(server, '"shutting down"')
      // The listening socket closes while requests are still being served (those waiting for
      // their body cannot finish yet, so the process is still there).
      expect(await refusedWithin(port, 10_000)).toBe('ECONNREFUSED')
      expect(server.child.exitCode).toBeNull()
      for (const r of sentAfter) r.send()

      const replies = await Promise.all(inFlight.map((r) => r.reply))
      for (const [i, reply] of replies.entries()) {
        expect(reply.status, reply.text).toBe(200)
        // Answered after the shutdown began: the client is told not to reuse the connection.
        if (i % 2 === 1) expect(reply.headers.connection).toBe('close')
        const body = JSON.parse(reply.text)
        if (i < 4) {
          expect(body.token_type).toBe('bearer')
          expect(typeof body.access_token).toBe('string')
          expect(typeof body.refresh_token).toBe('string')
        } else {
          expect(body).toMatchObject({ username: newcomer.username, role: 'user' })
        }
      }
      const exit = await Promise.race([server.exited, sleep(EXIT_TIMEOUT_MS).then(() => 'still running')])
      expect(exit).toEqual({ code: 0, signal: null })
      expect(server.output()).toContain('"stopped"')
      expect(await tryConnect(port)).toBe('ECONNREFUSED')

      // Everything the answered requests wrote is there after a restart on the same DATA_DIR.
      const again = spawnServer({ dataDir, port })
      cleanups.push(async () => {
        await stopServer(again, 'SIGKILL')
      })
      await waitReady(again)
      const login = await httpCall(again.url, 'POST', '/auth/login', {
        form: { username: newcomer.username, password: newcomer.password },
      })
      expect(isAnswer(login) && login.status, JSON.stringify(login)).toBe(200)
      const hello = isAnswer(login)
        ? await httpCall(again.url, 'GET', '/protected', { token: login.body.access_token })
        : null
      expect(hello && isAnswer(hello) && hello.body.message).toBe(`Hello, ${newcomer.username}`)
      for (const reply of replies.slice(0, 4)) {
        const { refresh_token } = JSON.parse(reply.text)
        const rotated = await httpCall(again.url, 'POST', '/auth/token-refresh', { json: { refresh_token } })
        expect(isAnswer(rotated) && rotated.status, JSON.stringify(rotated)).toBe(200)
      }
      expect(await stopServer(again, signal)).toEqual({ code: 0, signal: null, timedOut: false })
    }, 60_000)
  }
})
