/**
 * Abuse over HTTP: a parallel brute force on one account (the lockout holds under concurrency,
 * and the event stream shows exactly the failures that counted), per-client and per-route rate
 * limits behind a trusted proxy, and login answers that do not tell whether a user exists.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_CONSECUTIVE_FAILURES } from '../../domain/lockout.ts'
import {
  type Api,
  api,
  claimsOf,
  login,
  type NewUser,
  newUser,
  type Reply,
  register,
} from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

function expectRetryAfter(reply: Reply): void {
  const retryAfter = Number(reply.headers.get('retry-after'))
  expect(Number.isInteger(retryAfter), `Retry-After ${reply.headers.get('retry-after')}`).toBe(true)
  expect(retryAfter).toBeGreaterThanOrEqual(1)
}

describe('a parallel brute force on one account', () => {
  let server: TestServer
  let request: Api
  let victim: NewUser
  let victimId: number

  beforeAll(async () => {
    server = await startServer()
    request = api(server.url)
    victim = newUser('bruteforced')
    victimId = (await register(request, victim)).id
  })
  afterAll(async () => {
    await server?.close()
  })

  it('lets exactly 5 of 50 parallel wrong passwords through to 401; the rest, and then the right password, get 423', async () => {
    expect(MAX_CONSECUTIVE_FAILURES).toBe(5)
    const attempts = Array.from({ length: 50 }, (_, i) =>
      request('POST', '/auth/login', {
        form: { username: victim.username, password: `wrong-password-${i}` },
      }),
    )
    const replies = await Promise.all(attempts)
    const statuses = replies.map((r) => r.status)
    const unauthorized = statuses.filter((s) => s === 401).length
    const locked = statuses.filter((s) => s === 423).length

    expect(unauthorized, `statuses: ${statuses.join(' ')}`).toBe(MAX_CONSECUTIVE_FAILURES)
    expect(locked, `statuses: ${statuses.join(' ')}`).toBe(50 - MAX_CONSECUTIVE_FAILURES)
    for (const reply of replies) {
      expect(reply.body).toEqual({ detail: expect.any(String) })
      if (reply.status === 401) expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer/)
      if (reply.status === 423) expectRetryAfter(reply)
    }

    const right = await request('POST', '/auth/login', {
      form: { username: victim.username, password: victim.password },
    })
    expect(right.status).toBe(423)
    expect(right.body).toEqual({ detail: expect.any(String) })
    expectRetryAfter(right)
    // The first throttle lasts 15 minutes.
    expect(Number(right.headers.get('retry-after'))).toBeLessThanOrEqual(15 * 60)

    // Every 401 is one recorded failure, and no attempt past the limit reached the account.
    await server.runtime.afterAnswer.settled()
    const events = await server.runtime.store.readStream(`user-${victimId}`)
    const types = events.map((e) => e.type)
    expect(
      types.filter((t) => t === 'LoginFailed'),
      types.join(', '),
    ).toHaveLength(5)
  })
})

describe('rate limits per client with RATE_LIMIT_PER_MINUTE=5 and TRUST_PROXY=1', () => {
  let server: TestServer
  let request: Api

  beforeAll(async () => {
    server = await startServer({ RATE_LIMIT_PER_MINUTE: '5', TRUST_PROXY: '1' })
    request = api(server.url)
  })
  afterAll(async () => {
    await server?.close()
  })

  const tokenFrom = (address: string, path = '/token'): Promise<Reply> =>
    request('POST', path, {
      form: { username: 'nobody-in-particular', password: 'not-the-password' },
      headers: { 'x-forwarded-for': address },
    })

  function expectLimited(reply: Reply): void {
    expect(reply.status).toBe(429)
    expect(reply.body).toEqual({ detail: expect.any(String) })
    expectRetryAfter(reply)
    expect(Number(reply.headers.get('retry-after'))).toBeLessThanOrEqual(60)
  }

  it('answers the 6th POST /token from one address with 429 and Retry-After; another address is unaffected', async () => {
    for (let i = 1; i <= 5; i++) expect((await tokenFrom('203.0.113.7')).status, `request ${i}`).toBe(401)
    expectLimited(await tokenFrom('203.0.113.7'))
    expectLimited(await tokenFrom('203.0.113.7'))
    // The client is the first X-Forwarded-For entry, whatever proxies follow.
    expectLimited(await tokenFrom('203.0.113.7, 10.0.0.1'))

    expect((await tokenFrom('198.51.100.9')).status).toBe(401)
    expect((await tokenFrom('2001:db8::9')).status).toBe(401)
  })

  it('keeps a separate budget per route', async () => {
    for (let i = 0; i < 5; i++) await tokenFrom('192.0.2.55')
    expectLimited(await tokenFrom('192.0.2.55'))
    // The same client still has its whole budget on the other public routes (another username:
    // 5 failures on one username throttle it on every login route).
    const login = await request('POST', '/auth/login', {
      form: { username: 'somebody-else', password: 'not-the-password' },
      headers: { 'x-forwarded-for': '192.0.2.55' },
    })
    expect(login.status).toBe(401)
    const reset = await request('POST', '/auth/password-reset-request', {
      json: { email: 'nobody@example.com' },
      headers: { 'x-forwarded-for': '192.0.2.55' },
    })
    expect(reset.status).toBe(200)
    const refresh = await request('POST', '/auth/token-refresh', {
      json: { refresh_token: '1.not-a-token' },
      headers: { 'x-forwarded-for': '192.0.2.55' },
    })
    expect(refresh.status).toBe(401)
  })
})

describe('user enumeration', () => {
  let server: TestServer
  let request: Api
  const known: NewUser[] = []

  beforeAll(async () => {
    server = await startServer()
    request = api(server.url)
    for (let i = 0; i < 4; i++) {
      const user = newUser('known')
      await register(request, user)
      known.push(user)
    }
  })
  afterAll(async () => {
    await server?.close()
  })

  function sameAnswer(a: Reply, b: Reply, what: string): void {
    expect(b.status, what).toBe(a.status)
    expect(b.body, what).toEqual(a.body)
    expect(JSON.stringify(b.body), what).toBe(JSON.stringify(a.body))
    expect(b.headers.get('www-authenticate'), what).toBe(a.headers.get('www-authenticate'))
    expect(b.headers.get('content-length'), what).toBe(a.headers.get('content-length'))
  }

  it.each(['/auth/login', '/token'])(
    'answers %s for an unknown user exactly as for a known user with a wrong password',
    async (path) => {
      const user = known[path === '/token' ? 1 : 0]
      const unknown = await request('POST', path, {
        form: { username: `ghost_${user.username}`, password: 'Wrong-passw0rd!' },
      })
      const wrong = await request('POST', path, {
        form: { username: user.username, password: 'Wrong-passw0rd!' },
      })
      expect(unknown.status).toBe(401)
      sameAnswer(unknown, wrong, path)
    },
  )

  it('answers /admin/login and /vendor/login alike for unknown users, wrong passwords and other roles', async () => {
    const user = known[2]
    for (const path of ['/admin/login', '/vendor/login']) {
      const unknown = await request('POST', path, {
        json: { username: 'ghost_account', password: 'Wrong-passw0rd!' },
      })
      const wrong = await request('POST', path, {
        json: { username: user.username, password: 'Wrong-passw0rd!' },
      })
      // The right password of an account without that role is no different either.
      const otherRole = await request('POST', path, {
        json: { username: user.username, password: user.password },
      })
      expect(unknown.status).toBe(401)
      sameAnswer(unknown, wrong, `${path} wrong password`)
      sameAnswer(unknown, otherRole, `${path} other role`)
    }
  })

  it('answers a password-reset request alike for known and unknown addresses', async () => {
    const unknown = await request('POST', '/auth/password-reset-request', {
      json: { email: 'ghost@example.com' },
    })
    const existing = await request('POST', '/auth/password-reset-request', {
      json: { email: known[3].email },
    })
    expect(unknown.status).toBe(200)
    sameAnswer(unknown, existing, 'password-reset-request')
  })
})

describe("another user's session", () => {
  let server: TestServer
  let request: Api

  beforeAll(async () => {
    server = await startServer()
    request = api(server.url)
  })
  afterAll(async () => {
    await server?.close()
  })

  it('cannot be revoked by guessing its id: 404, and it keeps working', async () => {
    const [owner, intruder] = [newUser('owner'), newUser('intruder')]
    await register(request, owner)
    await register(request, intruder)
    const ownerTokens = await login(request, owner)
    const intruderTokens = await login(request, intruder)
    const sid = claimsOf(ownerTokens.access_token).sid
    const attempt = await request('DELETE', `/auth/sessions/${sid}`, { token: intruderTokens.access_token })
    expect(attempt.status).toBe(404)
    expect(attempt.body).toEqual({ detail: expect.any(String) })
    expect((await request('GET', '/protected', { token: ownerTokens.access_token })).status).toBe(200)
  })
})
