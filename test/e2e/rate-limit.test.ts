import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Api, api, type NewUser, newUser, register } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

function expectLimited(reply: { status: number; body: unknown; headers: Headers }) {
  expect(reply.status).toBe(429)
  expect(reply.body).toEqual({ detail: expect.any(String) })
  const retryAfter = Number(reply.headers.get('retry-after'))
  expect(Number.isInteger(retryAfter)).toBe(true)
  expect(retryAfter).toBeGreaterThanOrEqual(1)
  expect(retryAfter).toBeLessThanOrEqual(60)
}

describe('RATE_LIMIT_PER_MINUTE=3', () => {
  let server: TestServer
  let request: Api
  let user: NewUser

  beforeAll(async () => {
    server = await startServer({ RATE_LIMIT_PER_MINUTE: '3' })
    request = api(server.url)
    user = newUser('limited')
    await register(request, user)
  })
  afterAll(async () => {
    await server?.close()
  })

  it('answers the 4th login from one client within a minute with 429 and Retry-After', async () => {
    const form = { username: user.username, password: user.password }
    for (let i = 1; i <= 3; i++) {
      const reply = await request('POST', '/auth/login', { form })
      expect(reply.status, `login ${i}`).toBe(200)
    }
    const fourth = await request('POST', '/auth/login', { form })
    expectLimited(fourth)
    // Wrong passwords are limited too (and do not reach the lockout counter).
    expectLimited(await request('POST', '/auth/login', { form: { ...form, password: 'wrong-password' } }))

    // Metrics count it as a rate-limited login.
    const metrics: string = (await request('GET', '/metrics')).body
    expect(metrics).toMatch(/^auth_logins_total\{outcome="rate_limited"\} 2$/m)
    expect(metrics).toMatch(/^http_requests_total\{route="\/auth\/login",status="429"\} 2$/m)
  })

  it('keeps separate budgets per route, and leaves protected routes alone', async () => {
    // /token has its own budget: this is its first use.
    const token = await request('POST', '/token', {
      form: { username: user.username, password: user.password },
    })
    expect(token.status).toBe(200)
    for (let i = 0; i < 5; i++) {
      const hello = await request('GET', '/protected', { token: token.body.access_token })
      expect(hello.status).toBe(200)
    }
  })

  it('limits registration too', async () => {
    const replies = []
    for (let i = 0; i < 3; i++)
      replies.push(await request('POST', '/auth/register', { json: newUser('many') }))
    // One registration happened in beforeAll, so the budget is exhausted by the third one here.
    expect(replies.map((r) => r.status)).toEqual([200, 200, 429])
    expectLimited(replies[2])
  })

  it('ignores X-Forwarded-For without TRUST_PROXY', async () => {
    const reply = await request('POST', '/auth/login', {
      form: { username: user.username, password: user.password },
      headers: { 'x-forwarded-for': '203.0.113.77' },
    })
    expectLimited(reply)
  })
})

describe('RATE_LIMIT_PER_MINUTE=3 with TRUST_PROXY=1', () => {
  let server: TestServer
  let request: Api
  let user: NewUser

  beforeAll(async () => {
    server = await startServer({ RATE_LIMIT_PER_MINUTE: '3', TRUST_PROXY: '1' })
    request = api(server.url)
    user = newUser('proxied')
    await register(request, user)
  })
  afterAll(async () => {
    await server?.close()
  })

  it('gives each X-Forwarded-For client address its own budget', async () => {
    const form = { username: user.username, password: user.password }
    const from = (address: string) => ({ form, headers: { 'x-forwarded-for': address } })
    for (let i = 0; i < 3; i++)
      expect((await request('POST', '/auth/login', from('198.51.100.1'))).status).toBe(200)
    expectLimited(await request('POST', '/auth/login', from('198.51.100.1')))
    // The first entry is the client; later proxies do not matter.
    expectLimited(await request('POST', '/auth/login', from('198.51.100.1, 10.0.0.1')))

    for (let i = 0; i < 3; i++)
      expect((await request('POST', '/auth/login', from('198.51.100.2'))).status).toBe(200)
    expectLimited(await request('POST', '/auth/login', from('198.51.100.2')))

    expect((await request('POST', '/auth/login', from('2001:db8::5, 198.51.100.1'))).status).toBe(200)
  })

  it('records the forwarded address on the session', async () => {
    const login = await request('POST', '/token', {
      form: { username: user.username, password: user.password },
      headers: { 'x-forwarded-for': '192.0.2.44, 10.0.0.9' },
    })
    expect(login.status).toBe(200)
    const sessions = await request('GET', '/auth/sessions', { token: login.body.access_token })
    const current = sessions.body.find((s: { is_current: boolean }) => s.is_current)
    expect(current.ip_address).toBe('192.0.2.44')
  })
})
