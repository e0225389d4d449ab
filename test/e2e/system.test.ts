import { createHmac } from 'node:crypto'
import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Api,
  api,
  claimsOf,
  expectUnauthorized,
  login,
  type NewUser,
  newUser,
  type Reply,
  register,
  sendRaw,
  type Tokens,
} from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

const expectUnauthorizedCredentials = (reply: Reply): void =>
  expectUnauthorized(reply, 'Could not validate credentials')

let server: TestServer
let request: Api
let user: NewUser
let userId: number
let tokens: Tokens

beforeAll(async () => {
  server = await startServer()
  request = api(server.url)
  user = newUser('sys')
  userId = (await register(request, user)).id
  tokens = await login(request, user)
})
afterAll(async () => {
  await server?.close()
})

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

describe('GET /', () => {
  it('answers message, version and docs', async () => {
    const reply = await request('GET', '/')
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ message: expect.any(String), version: expect.any(String), docs: '/docs' })
    expect(reply.body.version).toMatch(/^\d+\.\d+\.\d+/)
  })
})

describe('GET /protected', () => {
  it('greets the caller by username with user_id and role', async () => {
    const reply = await request('GET', '/protected', { token: tokens.access_token })
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ message: `Hello, ${user.username}`, user_id: userId, role: 'user' })
  })

  it('reads header names in any case, and a repeated Authorization by its first value as node does', async () => {
    const valid = `Bearer ${tokens.access_token}`
    const send = (headerLines: string[]) =>
      sendRaw(
        server.url,
        `GET /protected HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${headerLines.join('\r\n')}\r\n\r\n`,
      )
    expect(await send([`AUTHORIZATION: ${valid}`])).toMatch(/^HTTP\/1\.1 200 /)
    expect(await send([`Authorization: ${valid}`, 'authorization: Bearer forged'])).toMatch(
      /^HTTP\/1\.1 200 /,
    )
    expect(await send(['Authorization: Bearer forged', `authorization: ${valid}`])).toMatch(
      /^HTTP\/1\.1 401 /,
    )
  })

  it('accepts the scheme name in any case', async () => {
    const reply = await request('GET', '/protected', {
      headers: { authorization: `bearer ${tokens.access_token}` },
    })
    expect(reply.status).toBe(200)
  })

  it('answers 401 with WWW-Authenticate: Bearer without a token', async () => {
    expectUnauthorizedCredentials(await request('GET', '/protected'))
    expectUnauthorizedCredentials(
      await request('GET', '/protected', { headers: { authorization: 'Bearer' } }),
    )
    expectUnauthorizedCredentials(
      await request('GET', '/protected', { headers: { authorization: `Basic ${tokens.access_token}` } }),
    )
  })

  it('answers 401 for garbage tokens', async () => {
    for (const token of [
      'garbage',
      'a.b.c',
      `${tokens.access_token}x`,
      tokens.refresh_token,
      'x'.repeat(9000),
    ]) {
      expectUnauthorizedCredentials(await request('GET', '/protected', { token }))
    }
  })

  it('answers 401 for a token with its payload changed', async () => {
    const [header, , signature] = tokens.access_token.split('.')
    const claims = claimsOf(tokens.access_token)
    const forged = `${header}.${b64url({ ...claims, role: 'admin' })}.${signature}`
    expectUnauthorizedCredentials(await request('GET', '/protected', { token: forged }))
  })

  it('answers 401 for an alg:none token with otherwise valid claims', async () => {
    const claims = claimsOf(tokens.access_token)
    const kid = decodeProtectedHeader(tokens.access_token).kid
    for (const alg of ['none', 'None', 'NONE']) {
      const unsigned = `${b64url({ alg, typ: 'at+jwt', kid })}.${b64url(claims)}.`
      expectUnauthorizedCredentials(await request('GET', '/protected', { token: unsigned }))
    }
  })

  it('answers 401 for an HS256 token keyed with the public key, and for an unknown kid', async () => {
    const claims = claimsOf(tokens.access_token)
    const header = decodeProtectedHeader(tokens.access_token)
    const jwks = await request('GET', '/.well-known/jwks.json')
    const publicJwk = JSON.stringify(jwks.body.keys[0])
    const hsInput = `${b64url({ alg: 'HS256', typ: 'at+jwt', kid: header.kid })}.${b64url(claims)}`
    const hs = `${hsInput}.${createHmac('sha256', publicJwk).update(hsInput).digest('base64url')}`
    expectUnauthorizedCredentials(await request('GET', '/protected', { token: hs }))

    const [, payload, signature] = tokens.access_token.split('.')
    const unknownKid = `${b64url({ ...header, kid: 'not-a-key' })}.${payload}.${signature}`
    expectUnauthorizedCredentials(await request('GET', '/protected', { token: unknownKid }))
  })
})

describe('GET /.well-known/jwks.json', () => {
  it('publishes public Ed25519 keys only, one of them with the kid of issued tokens', async () => {
    const reply = await request('GET', '/.well-known/jwks.json')
    expect(reply.status).toBe(200)
    expect(Array.isArray(reply.body.keys)).toBe(true)
    expect(reply.body.keys.length).toBeGreaterThan(0)
    for (const key of reply.body.keys) {
      expect(key.kty).toBe('OKP')
      expect(key.crv).toBe('Ed25519')
      expect(typeof key.x).toBe('string')
      expect(typeof key.kid).toBe('string')
      expect(key.d).toBeUndefined()
    }
    const kid = decodeProtectedHeader(tokens.access_token).kid
    const jwk = reply.body.keys.find((k: { kid: string }) => k.kid === kid)
    expect(jwk).toBeDefined()
    const key = await importJWK(jwk, 'EdDSA')
    const { payload } = await jwtVerify(tokens.access_token, key, {
      issuer: 'auth-service',
      audience: 'auth-service',
    })
    expect(payload.sub).toBe(String(userId))
  })
})

describe('health and readiness', () => {
  it('GET /healthz answers ok', async () => {
    const reply = await request('GET', '/healthz')
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ status: 'ok' })
  })

  it('GET /readyz answers ready, without the global position (which would tell real accounts apart)', async () => {
    const before = await request('GET', '/readyz')
    expect(before.status).toBe(200)
    expect(before.body).toEqual({ status: 'ready' })
    // A failed login on a real account appends an event; the answer must not show it.
    const known = newUser('readyzprobe')
    await register(request, known)
    await request('POST', '/auth/login', { form: { username: known.username, password: 'wrong-password-1' } })
    await server.runtime.afterAnswer.settled()
    const after = await request('GET', '/readyz')
    expect(after.body).toEqual(before.body)
  })
})

describe('GET /metrics', () => {
  it('serves Prometheus text with requests by route, a latency histogram, logins by outcome and projection lag', async () => {
    // Make sure each login outcome and some routes have been seen.
    await request('POST', '/auth/login', { form: { username: user.username, password: 'wrong password' } })
    await login(request, user)
    await request('DELETE', '/auth/sessions/99999', { token: tokens.access_token })
    await request('GET', '/no/such/route')

    const reply = await request('GET', '/metrics')
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-type')).toMatch(/^text\/plain/)
    const text: string = reply.body
    expect(typeof text).toBe('string')

    expect(text).toContain('# TYPE http_requests_total counter')
    expect(text).toMatch(/^http_requests_total\{route="\/auth\/login",status="200"\} [1-9]\d*$/m)
    expect(text).toMatch(/^http_requests_total\{route="\/auth\/login",status="401"\} [1-9]\d*$/m)
    expect(text).toMatch(/^http_requests_total\{route="\/auth\/register",status="200"\} [1-9]\d*$/m)
    expect(text).toMatch(/^http_requests_total\{route="\/protected",status="\d{3}"\} [1-9]\d*$/m)
    // Route labels are templates, never raw paths with ids.
    expect(text).toMatch(/^http_requests_total\{route="\/auth\/sessions\/\{session_id\}",status="404"\} 1$/m)
    expect(text).not.toContain('/no/such/route')
    expect(text).not.toContain('/auth/sessions/99999')
    for (const line of text.split('\n').filter((l) => l.startsWith('http_requests_total{'))) {
      expect(line).toMatch(/^http_requests_total\{route="[^"]+",status="\d{3}"\} \d+$/)
    }

    expect(text).toContain('# TYPE http_request_duration_seconds histogram')
    // prom-client writes `le` before the other labels (their order carries no meaning in the format).
    expect(text).toMatch(/^http_request_duration_seconds_bucket\{le="0\.1",route="\/auth\/login"\} \d+$/m)
    expect(text).toMatch(
      /^http_request_duration_seconds_bucket\{le="\+Inf",route="\/auth\/login"\} [1-9]\d*$/m,
    )
    expect(text).toMatch(/^http_request_duration_seconds_sum\{route="\/auth\/login"\} [\d.e-]+$/m)
    expect(text).toMatch(/^http_request_duration_seconds_count\{route="\/auth\/login"\} [1-9]\d*$/m)
    // Buckets are cumulative: never decreasing, and the last one is the count.
    const buckets = [
      ...text.matchAll(/^http_request_duration_seconds_bucket\{le="[^"]+",route="\/protected"\} (\d+)$/gm),
    ]
    const counts = buckets.map((m) => Number(m[1]))
    expect(counts.length).toBe(13)
    expect(counts).toEqual([...counts].sort((a, b) => a - b))
    expect(counts.at(-1)).toBeGreaterThan(0)
    expect(text).toContain(`http_request_duration_seconds_count{route="/protected"} ${counts.at(-1)}`)

    expect(text).toContain('# TYPE auth_logins_total counter')
    expect(text).toMatch(/^auth_logins_total\{outcome="success"\} [1-9]\d*$/m)
    expect(text).toMatch(/^auth_logins_total\{outcome="bad_credentials"\} [1-9]\d*$/m)

    expect(text).toContain('# TYPE auth_projection_lag gauge')
    expect(text).toMatch(/^auth_projection_lag 0$/m)
    expect(text).toContain('# TYPE auth_projection_lag_events gauge')
    expect(text).toMatch(/^auth_projection_lag_events 0$/m)
  })

  it("also serves the process's CPU, memory and heap, and the event-loop lag", async () => {
    const text: string = (await request('GET', '/metrics')).body
    for (const [name, type] of [
      ['process_cpu_user_seconds_total', 'counter'],
      ['process_resident_memory_bytes', 'gauge'],
      ['nodejs_heap_size_used_bytes', 'gauge'],
      ['nodejs_eventloop_lag_seconds', 'gauge'],
      ['nodejs_eventloop_lag_p99_seconds', 'gauge'],
    ]) {
      expect(text).toContain(`# TYPE ${name} ${type}`)
      expect(text).toMatch(new RegExp(`^${name} [\\d.e+-]+$`, 'm'))
    }
    // No metric family twice (the process metrics are registered once per process).
    const types = text.split('\n').filter((line) => line.startsWith('# TYPE '))
    expect(new Set(types).size).toBe(types.length)
  })

  it('counts requests: the counter for a route grows by exactly the requests made', async () => {
    const count = async () => {
      const text: string = (await request('GET', '/metrics')).body
      const match = text.match(/^http_requests_total\{route="\/healthz",status="200"\} (\d+)$/m)
      return match ? Number(match[1]) : 0
    }
    const before = await count()
    for (let i = 0; i < 3; i++) await request('GET', '/healthz')
    expect(await count()).toBe(before + 3)
  })
})

describe('unknown routes, wrong methods, large bodies', () => {
  it('answers 404 {"detail":"Not Found"} for unknown paths', async () => {
    for (const path of [
      '/nope',
      '/auth',
      '/auth/registerx',
      '/auth/sessions/1/extra',
      '/.well-known/other',
    ]) {
      const reply = await request('GET', path)
      expect(reply.status, path).toBe(404)
      expect(reply.body).toEqual({ detail: 'Not Found' })
    }
    const post = await request('POST', '/nope', { json: {} })
    expect(post.status).toBe(404)
    expect(post.body).toEqual({ detail: 'Not Found' })
  })

  it('answers 405 for a wrong method on a known path', async () => {
    for (const [method, path] of [
      ['GET', '/auth/register'],
      ['GET', '/auth/login'],
      ['DELETE', '/auth/profile'],
      ['POST', '/protected'],
      ['PUT', '/auth/sessions/1'],
      ['POST', '/healthz'],
      ['POST', '/openapi.json'],
      ['DELETE', '/metrics'],
      ['POST', '/docs'],
      ['PUT', '/docs/swagger-ui.css'],
    ]) {
      const reply = await request(method, path, { token: tokens.access_token })
      expect(reply.status, `${method} ${path}`).toBe(405)
      expect(reply.body).toEqual({ detail: 'Method Not Allowed' })
    }
  })

  it('answers 413 for a body over 64 KiB, and accepts one just under', async () => {
    const big = JSON.stringify({ ...newUser('big'), full_name: 'x'.repeat(70 * 1024) })
    const reply = await request('POST', '/auth/register', {
      raw: big,
      headers: { 'content-type': 'application/json' },
    })
    expect(reply.status).toBe(413)
    expect(reply.body).toEqual({ detail: expect.any(String) })

    const form = await request('POST', '/auth/login', {
      form: { username: user.username, password: 'p'.repeat(65 * 1024) },
    })
    expect(form.status).toBe(413)

    // Just under the limit reaches validation (422 for the too-long full_name), not 413.
    const under = JSON.stringify({ ...newUser('under'), full_name: 'x'.repeat(60 * 1024) })
    const ok = await request('POST', '/auth/register', {
      raw: under,
      headers: { 'content-type': 'application/json' },
    })
    expect(ok.status).toBe(422)
    expect(ok.body.detail[0].loc).toEqual(['body', 'full_name'])
  })

  it('sends security headers and no-store on API answers', async () => {
    const reply = await request('GET', '/protected', { token: tokens.access_token })
    expect(reply.headers.get('x-content-type-options')).toBe('nosniff')
    expect(reply.headers.get('cache-control')).toBe('no-store')
  })
})

describe('access token expiry', () => {
  let short: TestServer
  beforeAll(async () => {
    short = await startServer({ ACCESS_TOKEN_TTL_SECONDS: '1' })
  })
  afterAll(async () => {
    await short?.close()
  })

  it('stops an access token after exp (plus the 5 s clock tolerance), while refresh still works', async () => {
    const shortRequest = api(short.url)
    const someone = newUser('expiring')
    await register(shortRequest, someone)
    const issued = await login(shortRequest, someone)
    expect(issued.expires_in).toBe(1)
    const { exp, iat } = claimsOf(issued.access_token) as { exp: number; iat: number }
    expect(exp - iat).toBe(1)
    expect((await shortRequest('GET', '/protected', { token: issued.access_token })).status).toBe(200)

    // Wait until the token is past exp and the verifier's clock tolerance.
    const waitMs = (exp + 5 + 1) * 1000 - Date.now()
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs))

    expectUnauthorizedCredentials(await shortRequest('GET', '/protected', { token: issued.access_token }))
    const refreshed = await shortRequest('POST', '/auth/token-refresh', {
      json: { refresh_token: issued.refresh_token },
    })
    expect(refreshed.status).toBe(200)
    const hello = await shortRequest('GET', '/protected', { token: refreshed.body.access_token })
    expect(hello.status).toBe(200)
    expect(hello.body.message).toBe(`Hello, ${someone.username}`)
  }, 20_000)
})
