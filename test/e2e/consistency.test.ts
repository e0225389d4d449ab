/**
 * Read-your-writes (API.md, "Several instances"): every successful write answers with
 * X-Consistency-Position; a request that sends a position back waits until the read models
 * have passed it, and answers 503 with Retry-After when they do not in time. Across instances
 * this is what lets a client read its own write on another instance (the cluster tests); here
 * one instance shows the contract.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Api, api, login, newUser, register } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

let server: TestServer
let request: Api

beforeAll(async () => {
  server = await startServer({ CONSISTENCY_WAIT_MS: '300' })
  request = api(server.url)
})
afterAll(async () => {
  await server?.close()
})

const positionOf = (headers: Headers): bigint => BigInt(headers.get('x-consistency-position') ?? 'NaN')

describe('X-Consistency-Position', () => {
  it('comes with every successful write, at or past where the write committed', async () => {
    const user = newUser('consistent')
    const registered = await request('POST', '/auth/register', { json: user })
    expect(registered.status).toBe(200)
    const afterRegister = positionOf(registered.headers)
    const events = await server.runtime.store.readStream(`user-${registered.body.id}`)
    expect(afterRegister).toBeGreaterThanOrEqual(events[0].position)

    const loggedIn = await request('POST', '/auth/login', {
      form: { username: user.username, password: user.password },
    })
    expect(positionOf(loggedIn.headers)).toBeGreaterThan(afterRegister)
    // Reads and failures carry none.
    expect((await request('GET', '/healthz')).headers.get('x-consistency-position')).toBeNull()
    const failed = await request('POST', '/auth/login', {
      form: { username: user.username, password: 'wrong-password' },
    })
    expect(failed.headers.get('x-consistency-position')).toBeNull()
  })

  it('a read that sends a position the read models have passed is answered at once', async () => {
    const user = newUser('reader')
    await register(request, user)
    const tokens = await login(request, user)
    const revoked = await request(
      'DELETE',
      `/auth/sessions/${JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString()).sid}`,
      {
        token: tokens.access_token,
      },
    )
    expect(revoked.status).toBe(200)
    const fresh = await login(request, user)
    const sessions = await request('GET', '/auth/sessions', {
      token: fresh.access_token,
      headers: { 'x-consistency-position': String(positionOf(revoked.headers)) },
    })
    expect(sessions.status).toBe(200)
    expect(sessions.body).toHaveLength(1)
  })

  it('waits for a position not reached yet, then answers 503 with Retry-After: 1', async () => {
    const ahead = (server.runtime.runner.position + 1_000n).toString()
    const started = performance.now()
    const reply = await request('GET', '/healthz', { headers: { 'x-consistency-position': ahead } })
    expect(reply.status).toBe(503)
    expect(reply.headers.get('retry-after')).toBe('1')
    expect(reply.body).toEqual({ detail: expect.any(String) })
    expect(performance.now() - started).toBeGreaterThanOrEqual(250)
  })

  it('answers as soon as a write elsewhere brings the read models past the position', async () => {
    // An instance of its own that waits longer: the write that unblocks the read hashes a
    // password first, which can take more than 300 ms on a busy machine.
    const patient = await startServer({ CONSISTENCY_WAIT_MS: '10000' })
    try {
      const next = (patient.runtime.runner.position + 1n).toString()
      const waiting = api(patient.url)('GET', '/healthz', { headers: { 'x-consistency-position': next } })
      await register(api(patient.url), newUser('unblocks'))
      expect((await waiting).status).toBe(200)
    } finally {
      await patient.close()
    }
  })

  it('refuses a malformed position with 400', async () => {
    for (const bad of ['-1', 'abc', '1.5', '99999999999999999999', '0x10']) {
      const reply = await request('GET', '/healthz', { headers: { 'x-consistency-position': bad } })
      expect(reply.status, bad).toBe(400)
    }
  })
})
