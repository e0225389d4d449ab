import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Api, api, claimsOf, login, type NewUser, newUser, register } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

let server: TestServer
let request: Api
let alice: NewUser
let aliceId: number

beforeAll(async () => {
  server = await startServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP })
  request = api(server.url)
  alice = newUser('alice')
  aliceId = (await register(request, alice)).id
})
afterAll(async () => {
  await server?.close()
})

const BOOTSTRAP = 'e2e-bootstrap-token-for-login-tests'
const TOKEN_KEYS = ['access_token', 'expires_in', 'refresh_token', 'token_type']

describe.each(['/auth/login', '/token'])('POST %s', (path) => {
  it('answers 200 with a Token for the OAuth2 password form', async () => {
    const reply = await request('POST', path, {
      form: { username: alice.username, password: alice.password },
    })
    expect(reply.status).toBe(200)
    expect(Object.keys(reply.body).sort()).toEqual(TOKEN_KEYS)
    expect(reply.body.token_type).toBe('bearer')
    expect(reply.body.expires_in).toBe(900)
    expect(reply.body.access_token.split('.')).toHaveLength(3)
    expect(typeof reply.body.refresh_token).toBe('string')
    expect(reply.body.refresh_token).not.toBe(reply.body.access_token)
    const hello = await request('GET', '/protected', { token: reply.body.access_token })
    expect(hello.status).toBe(200)
    expect(hello.body.user_id).toBe(aliceId)
  })

  it('accepts grant_type=password with scope, client_id and client_secret', async () => {
    const reply = await request('POST', path, {
      form: {
        grant_type: 'password',
        username: alice.username,
        password: alice.password,
        scope: '',
        client_id: 'docs',
        client_secret: 'unused',
      },
    })
    expect(reply.status).toBe(200)
    expect(reply.body.token_type).toBe('bearer')
  })

  it('accepts the username in another letter case', async () => {
    const reply = await request('POST', path, {
      form: { username: alice.username.toUpperCase(), password: alice.password },
    })
    expect(reply.status).toBe(200)
    expect(claimsOf(reply.body.access_token).sub).toBe(String(aliceId))
  })

  it('answers 401 with WWW-Authenticate: Bearer and the same detail for unknown user and wrong password', async () => {
    const unknown = await request('POST', path, {
      form: { username: 'nobody_here_at_all', password: alice.password },
    })
    const wrong = await request('POST', path, {
      form: { username: alice.username, password: `${alice.password}x` },
    })
    for (const reply of [unknown, wrong]) {
      expect(reply.status).toBe(401)
      expect(reply.headers.get('www-authenticate')).toBe('Bearer')
      expect(reply.body).toEqual({ detail: 'Incorrect username or password' })
    }
    expect(unknown.body).toEqual(wrong.body)
    // One wrong password does not lock the account; a success resets the count.
    const ok = await request('POST', path, { form: { username: alice.username, password: alice.password } })
    expect(ok.status).toBe(200)
  })

  it('answers 422 for missing form fields', async () => {
    const none = await request('POST', path, { form: {} })
    expect(none.status).toBe(422)
    expect(none.body.detail).toEqual(
      expect.arrayContaining([
        { loc: ['body', 'username'], msg: 'Field required', type: 'missing' },
        { loc: ['body', 'password'], msg: 'Field required', type: 'missing' },
      ]),
    )
    expect(none.body.detail).toHaveLength(2)
    const noPassword = await request('POST', path, { form: { username: alice.username } })
    expect(noPassword.status).toBe(422)
    expect(noPassword.body).toEqual({
      detail: [{ loc: ['body', 'password'], msg: 'Field required', type: 'missing' }],
    })
    const empty = await request('POST', path, { form: { username: alice.username, password: '' } })
    expect(empty.status).toBe(422)
    expect(empty.body.detail[0].loc).toEqual(['body', 'password'])
  })

  it('answers 422 for a grant_type other than password', async () => {
    const reply = await request('POST', path, {
      form: { grant_type: 'client_credentials', username: alice.username, password: alice.password },
    })
    expect(reply.status).toBe(422)
    expect(reply.body.detail).toEqual([
      { loc: ['body', 'grant_type'], msg: expect.any(String), type: 'value_error' },
    ])
  })
})

describe('the access token', () => {
  it('is an EdDSA JWT with kid and the contract claims, verifiable from /.well-known/jwks.json', async () => {
    const reply = await request('POST', '/auth/login', {
      form: { username: alice.username, password: alice.password },
    })
    expect(reply.status).toBe(200)
    const token: string = reply.body.access_token
    const header = decodeProtectedHeader(token)
    expect(header.alg).toBe('EdDSA')
    expect(typeof header.kid).toBe('string')
    expect(header.kid?.length).toBeGreaterThan(0)

    const jwks = createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`))
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: 'auth-service',
      audience: 'auth-service',
      algorithms: ['EdDSA'],
    })
    expect(protectedHeader.kid).toBe(header.kid)
    expect(Object.keys(payload).sort()).toEqual(
      expect.arrayContaining(['amr', 'aud', 'exp', 'iat', 'iss', 'jti', 'role', 'sid', 'sub']),
    )
    expect(payload.iss).toBe('auth-service')
    expect(payload.aud).toBe('auth-service')
    expect(payload.sub).toBe(String(aliceId))
    expect(payload.role).toBe('user')
    expect(payload.amr).toEqual(['pwd'])
    expect(typeof payload.sid).toBe('string')
    expect(Number(payload.sid)).toBeGreaterThan(0)
    expect(typeof payload.jti).toBe('string')
    expect((payload.jti as string).length).toBeGreaterThan(0)
    expect(payload.exp! - payload.iat!).toBe(900)
    expect(Math.abs(payload.iat! - Date.now() / 1000)).toBeLessThan(60)

    // The refresh token belongs to the same session and is opaque with 256 bits of randomness.
    const [sid, secret] = (reply.body.refresh_token as string).split('.')
    expect(sid).toBe(payload.sid)
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
  })

  it('has a fresh jti and sid on each login', async () => {
    const one = await request('POST', '/token', {
      form: { username: alice.username, password: alice.password },
    })
    const two = await request('POST', '/token', {
      form: { username: alice.username, password: alice.password },
    })
    expect(claimsOf(one.body.access_token).jti).not.toBe(claimsOf(two.body.access_token).jti)
    expect(claimsOf(one.body.access_token).sid).not.toBe(claimsOf(two.body.access_token).sid)
  })

  it('does not verify against a different audience', async () => {
    const reply = await request('POST', '/token', {
      form: { username: alice.username, password: alice.password },
    })
    const jwks = createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`))
    await expect(jwtVerify(reply.body.access_token, jwks, { audience: 'someone-else' })).rejects.toThrow()
  })
})

describe('lockout', () => {
  const THROTTLED = { detail: 'Too many failed attempts; try again later' }

  it('throttles after 5 consecutive wrong passwords: the 6th attempt is 423 with Retry-After, even with the right password; open sessions keep working', async () => {
    const bob = newUser('bob')
    await register(request, bob)
    const before = await login(request, bob)
    expect((await request('GET', '/protected', { token: before.access_token })).status).toBe(200)
    for (let i = 1; i <= 5; i++) {
      const reply = await request('POST', '/auth/login', {
        form: { username: bob.username, password: `wrong-password-${i}` },
      })
      expect(reply.status, `attempt ${i}`).toBe(401)
      expect(reply.body).toEqual({ detail: 'Incorrect username or password' })
    }
    for (const path of ['/auth/login', '/token']) {
      const locked = await request('POST', path, { form: { username: bob.username, password: bob.password } })
      expect(locked.status).toBe(423)
      expect(locked.body).toEqual(THROTTLED)
      const retryAfter = Number(locked.headers.get('retry-after'))
      expect(Number.isInteger(retryAfter)).toBe(true)
      expect(retryAfter).toBeLessThanOrEqual(15 * 60)
      expect(retryAfter).toBeGreaterThan(14 * 60)
    }
    // Failures stop new logins; they never cut off the sessions already open (an admin's lock does).
    expect((await request('GET', '/protected', { token: before.access_token })).status).toBe(200)
    const refreshed = await request('POST', '/auth/token-refresh', {
      json: { refresh_token: before.refresh_token },
    })
    expect(refreshed.status).toBe(200)

    const metrics: string = (await request('GET', '/metrics')).body
    expect(metrics).toMatch(/^auth_logins_total\{outcome="locked"\} [1-9]\d*$/m)
    expect(metrics).toMatch(/^http_requests_total\{route="\/token",status="423"\} [1-9]\d*$/m)

    const wrongWhileLocked = await request('POST', '/auth/login', {
      form: { username: bob.username, password: 'still-wrong' },
    })
    expect(wrongWhileLocked.status).toBe(423)
  })

  it('resets the count after a success: 4 failures, a success, 4 failures still log in', async () => {
    const carol = newUser('carol')
    await register(request, carol)
    const fail = async () => {
      const reply = await request('POST', '/auth/login', {
        form: { username: carol.username, password: 'nope-nope' },
      })
      expect(reply.status).toBe(401)
    }
    for (let i = 0; i < 4; i++) await fail()
    expect(
      (await request('POST', '/auth/login', { form: { username: carol.username, password: carol.password } }))
        .status,
    ).toBe(200)
    for (let i = 0; i < 4; i++) await fail()
    expect(
      (await request('POST', '/auth/login', { form: { username: carol.username, password: carol.password } }))
        .status,
    ).toBe(200)
  })

  it('counts parallel wrong passwords exactly: 5 answer 401, the rest 423', async () => {
    const dave = newUser('dave')
    await register(request, dave)
    const replies = await Promise.all(
      Array.from({ length: 7 }, (_, i) =>
        request('POST', '/auth/login', {
          form: { username: dave.username, password: `parallel-wrong-${i}` },
        }),
      ),
    )
    const statuses = replies.map((r) => r.status).sort()
    expect(statuses).toEqual([401, 401, 401, 401, 401, 423, 423])
    const locked = await request('POST', '/auth/login', {
      form: { username: dave.username, password: dave.password },
    })
    expect(locked.status).toBe(423)
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0)
  })

  it('throttles unknown usernames exactly like known ones: no 423 that only real accounts get', async () => {
    const known = newUser('known')
    await register(request, known)
    const answers = async (username: string) => {
      const replies = []
      for (let i = 0; i < 7; i++) {
        const reply = await request('POST', '/auth/login', { form: { username, password: 'whatever1' } })
        replies.push({ status: reply.status, body: reply.body, retryAfter: reply.headers.get('retry-after') })
      }
      return replies
    }
    const ghost = await answers('ghost_user')
    const real = await answers(known.username)
    expect(ghost.map((r) => r.status)).toEqual([401, 401, 401, 401, 401, 423, 423])
    expect(real.map((r) => r.status)).toEqual(ghost.map((r) => r.status))
    expect(real.map((r) => r.body)).toEqual(ghost.map((r) => r.body))
    expect(ghost[5].body).toEqual(THROTTLED)
    expect(Number(ghost[5].retryAfter)).toBeGreaterThan(14 * 60)
    expect(Number(real[5].retryAfter)).toBeGreaterThan(14 * 60)
  })
})

describe('deactivated accounts', () => {
  it('answer 403 at login with the right password (401 with a wrong one), and their tokens stop at once', async () => {
    const admin = newUser('admin')
    const created = await request('POST', '/admin/register', {
      json: admin,
      headers: { 'x-bootstrap-token': BOOTSTRAP },
    })
    expect(created.status).toBe(200)
    expect(created.body.role).toBe('admin')
    const adminTokens = await login(request, admin)

    const erin = newUser('erin')
    const erinId = (await register(request, erin)).id
    const erinTokens = await login(request, erin)
    expect((await request('GET', '/protected', { token: erinTokens.access_token })).status).toBe(200)

    // An admin sees the email unmasked.
    const seen = await request('GET', `/auth/verify-user/${erin.username}`, {
      token: adminTokens.access_token,
    })
    expect(seen.body.email).toBe(erin.email)

    const deactivated = await request('PUT', `/admin/deactivate-user/${erinId}`, {
      token: adminTokens.access_token,
    })
    expect(deactivated.status).toBe(200)
    expect(deactivated.body.is_active).toBe(false)

    expect((await request('GET', '/protected', { token: erinTokens.access_token })).status).toBe(401)
    const refreshed = await request('POST', '/auth/token-refresh', {
      json: { refresh_token: erinTokens.refresh_token },
    })
    expect(refreshed.status).toBe(401)
    for (const path of ['/auth/login', '/token']) {
      const reply = await request('POST', path, {
        form: { username: erin.username, password: erin.password },
      })
      expect(reply.status).toBe(403)
      expect(reply.body).toEqual({ detail: 'Account is deactivated' })
    }
    const wrong = await request('POST', '/auth/login', {
      form: { username: erin.username, password: 'wrong-pass' },
    })
    expect(wrong.status).toBe(401)
    expect(wrong.body).toEqual({ detail: 'Incorrect username or password' })
  })
})
