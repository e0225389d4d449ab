/**
 * The console's server side without a browser or a service: its session routes over a fake
 * `forward` (what they send to the service's own routes, what they answer), the cookie's
 * attributes, the CSRF guard, and the static assets.
 */
import { describe, expect, it } from 'vitest'
import { CONSOLE_CSP, createConsole } from '../../src/api/console.ts'
import type { HttpRequest, HttpResponse } from '../../src/api/http.ts'
import { jsonResponse } from '../../src/api/http.ts'

type Sent = {
  method: string
  target: string
  body: unknown
  authorization: string | null
  userAgent: string | null
}

function request(
  method: string,
  target: string,
  options: { headers?: Record<string, string>; json?: unknown } = {},
): HttpRequest {
  const headers: Record<string, string> = {
    host: 'auth.example',
    'user-agent': 'test-browser',
    ...options.headers,
  }
  return {
    method,
    target,
    header: (name) => headers[name] ?? null,
    headerPairs: () => Object.entries(headers),
    body: options.json === undefined ? null : new TextEncoder().encode(JSON.stringify(options.json)),
    remoteAddress: '203.0.113.9',
  }
}

const csrf = { 'x-console-csrf': '1' }
const tokens = {
  access_token: 'a.eyJzaWQiOiI3In0.s',
  token_type: 'bearer',
  refresh_token: '7.secret',
  expires_in: 900,
}

function setup(publicUrl = 'http://auth.example', answer?: (sent: Sent) => HttpResponse) {
  const sent: Sent[] = []
  const serve = createConsole({
    publicUrl,
    cookieMaxAgeSeconds: 3600,
    forward: async (inner) => {
      const text = inner.body ? new TextDecoder().decode(inner.body) : ''
      const record: Sent = {
        method: inner.method,
        target: inner.target,
        body: text ? JSON.parse(text) : null,
        authorization: inner.header('authorization'),
        userAgent: inner.header('user-agent'),
      }
      expect(inner.remoteAddress).toBe('203.0.113.9')
      expect(inner.header('cookie')).toBeNull()
      sent.push(record)
      return answer ? answer(record) : jsonResponse(tokens)
    },
  })
  return { sent, serve }
}

const body = (response: HttpResponse) => JSON.parse(String(response.body))

describe('the console session routes', () => {
  it('login: forwards to /auth/login, puts the refresh token in the cookie only', async () => {
    const { sent, serve } = setup()
    const { response } = await serve(
      request('POST', '/console/api/login', { headers: csrf, json: { username: 'ann', password: 'pw' } }),
      '/console/api/login',
    )
    expect(sent).toEqual([
      {
        method: 'POST',
        target: '/auth/login',
        body: { username: 'ann', password: 'pw' },
        authorization: null,
        userAgent: 'test-browser',
      },
    ])
    expect(response.status).toBe(200)
    expect(body(response)).toEqual({
      access_token: tokens.access_token,
      token_type: 'bearer',
      expires_in: 900,
    })
    expect(response.headers['set-cookie']).toBe(
      'console_refresh=7.secret; Path=/console/api/refresh; Max-Age=3600; HttpOnly; SameSite=Strict',
    )
  })

  it('adds Secure when PUBLIC_URL is https', async () => {
    const { serve } = setup('https://auth.example')
    const { response } = await serve(
      request('POST', '/console/api/login', {
        headers: { ...csrf, origin: 'https://auth.example' },
        json: { username: 'ann', password: 'pw' },
      }),
      '/console/api/login',
    )
    expect(response.headers['set-cookie']).toMatch(/; HttpOnly; SameSite=Strict; Secure$/)
  })

  it('a 2FA challenge and errors pass through untouched, without a cookie', async () => {
    const challenge = { access_token: 'c', token_type: 'bearer', requires_2fa: true, expires_in: 300 }
    const { serve } = setup(undefined, () => jsonResponse(challenge))
    const answered = await serve(
      request('POST', '/console/api/login', { headers: csrf, json: { username: 'a', password: 'b' } }),
      '/console/api/login',
    )
    expect(body(answered.response)).toEqual(challenge)
    expect(answered.response.headers['set-cookie']).toBeUndefined()

    const locked = jsonResponse({ detail: 'Account is locked' }, 423, { 'retry-after': '60' })
    const refused = await setup(undefined, () => locked).serve(
      request('POST', '/console/api/login', { headers: csrf, json: { username: 'a', password: 'b' } }),
      '/console/api/login',
    )
    expect(refused.response).toBe(locked)
  })

  it('verify-2fa: forwards the challenge as the bearer and the code', async () => {
    const { sent, serve } = setup()
    const { response } = await serve(
      request('POST', '/console/api/verify-2fa', {
        headers: { ...csrf, authorization: 'Bearer challenge-jwt' },
        json: { code: '123456' },
      }),
      '/console/api/verify-2fa',
    )
    expect(sent[0]).toMatchObject({
      target: '/auth/verify-2fa',
      body: { code: '123456' },
      authorization: 'Bearer challenge-jwt',
    })
    expect(response.headers['set-cookie']).toContain('console_refresh=7.secret')
  })

  it('passkey-login: forwards the assertion alone, the refresh token goes into the cookie; refused without the CSRF header', async () => {
    const { sent, serve } = setup()
    const assertion = { id: 'cred', rawId: 'cred', type: 'public-key', response: { signature: 'sig' } }
    const refused = await serve(
      request('POST', '/console/api/passkey-login', { json: { response: assertion } }),
      '/console/api/passkey-login',
    )
    expect(refused.response.status).toBe(403)
    expect(sent).toEqual([])
    const { response } = await serve(
      request('POST', '/console/api/passkey-login', {
        headers: csrf,
        json: { response: assertion, extra: 'dropped' },
      }),
      '/console/api/passkey-login',
    )
    expect(sent).toEqual([
      expect.objectContaining({
        method: 'POST',
        target: '/auth/passkeys/login',
        body: { response: assertion },
      }),
    ])
    expect(body(response)).not.toHaveProperty('refresh_token')
    expect(response.headers['set-cookie']).toContain('console_refresh=7.secret')
  })

  it('refresh: rotates the cookie; a refused token clears it; no cookie is a 401', async () => {
    const { sent, serve } = setup()
    const ok = await serve(
      request('POST', '/console/api/refresh', {
        headers: { ...csrf, cookie: 'other=1; console_refresh=7.old' },
      }),
      '/console/api/refresh',
    )
    expect(sent[0]).toMatchObject({ target: '/auth/token-refresh', body: { refresh_token: '7.old' } })
    expect(body(ok.response)).not.toHaveProperty('refresh_token')
    expect(ok.response.headers['set-cookie']).toContain('console_refresh=7.secret;')

    const dead = setup(undefined, () => jsonResponse({ detail: 'Invalid refresh token' }, 401))
    const refused = await dead.serve(
      request('POST', '/console/api/refresh', { headers: { ...csrf, cookie: 'console_refresh=7.old' } }),
      '/console/api/refresh',
    )
    expect(refused.response.status).toBe(401)
    expect(refused.response.headers['set-cookie']).toBe(
      'console_refresh=; Path=/console/api/refresh; Max-Age=0; HttpOnly; SameSite=Strict',
    )

    const none = await setup().serve(
      request('POST', '/console/api/refresh', { headers: csrf }),
      '/console/api/refresh',
    )
    expect(none.response.status).toBe(401)
  })

  it('logout: revokes the access token’s session and clears the cookie; without one, the cookie gets a token first', async () => {
    const { sent, serve } = setup(undefined, (s) =>
      s.method === 'DELETE' ? jsonResponse({ message: 'Session revoked' }) : jsonResponse(tokens),
    )
    const withBearer = await serve(
      request('DELETE', '/console/api/refresh', {
        headers: { ...csrf, authorization: `Bearer ${tokens.access_token}`, cookie: 'console_refresh=7.x' },
      }),
      '/console/api/refresh',
    )
    expect(sent.map((s) => `${s.method} ${s.target}`)).toEqual(['DELETE /auth/sessions/7'])
    expect(withBearer.response.headers['set-cookie']).toContain('Max-Age=0')
    expect(body(withBearer.response)).toEqual({ message: 'Logged out' })

    sent.length = 0
    const cookieOnly = await serve(
      request('DELETE', '/console/api/refresh', { headers: { ...csrf, cookie: 'console_refresh=7.x' } }),
      '/console/api/refresh',
    )
    expect(sent.map((s) => `${s.method} ${s.target}`)).toEqual([
      'POST /auth/token-refresh',
      'DELETE /auth/sessions/7',
    ])
    expect(sent[1].authorization).toBe(`Bearer ${tokens.access_token}`)
    expect(cookieOnly.response.headers['set-cookie']).toContain('Max-Age=0')
  })

  it('refuses what a cross-site page could send, before forwarding anything', async () => {
    const { sent, serve } = setup('https://auth.example')
    const tries: Record<string, string>[] = [
      {},
      { 'x-console-csrf': 'yes' },
      { ...csrf, origin: 'https://evil.example' },
      { ...csrf, origin: 'http://auth.example' },
      { ...csrf, origin: 'null' },
      { ...csrf, 'sec-fetch-site': 'cross-site' },
      { ...csrf, 'sec-fetch-site': 'same-site' },
    ]
    for (const headers of tries) {
      const { response } = await serve(
        request('POST', '/console/api/refresh', { headers: { ...headers, cookie: 'console_refresh=7.x' } }),
        '/console/api/refresh',
      )
      expect(response.status, JSON.stringify(headers)).toBe(403)
      expect(response.headers['set-cookie']).toBeUndefined()
    }
    expect(sent).toEqual([])
    // Its own origin, by PUBLIC_URL or by Host, and same-origin fetches pass.
    const allowed: Record<string, string>[] = [
      { origin: 'https://auth.example' },
      { origin: 'https://auth.example', 'sec-fetch-site': 'same-origin' },
      {},
    ]
    for (const headers of allowed) {
      const { response } = await serve(
        request('POST', '/console/api/refresh', {
          headers: { ...csrf, ...headers, cookie: 'console_refresh=7.x' },
        }),
        '/console/api/refresh',
      )
      expect(response.status).toBe(200)
    }
    expect(
      (await serve(request('GET', '/console/api/refresh', { headers: csrf }), '/console/api/refresh'))
        .response.status,
    ).toBe(405)
  })
})

describe('the console page and assets', () => {
  const { serve } = setup()

  it('serves the page and the stripped modules under the CSP; nothing else', async () => {
    const page = (await serve(request('GET', '/console'), '/console')).response
    expect(page.status).toBe(200)
    expect(page.headers['content-security-policy']).toBe(CONSOLE_CSP)
    expect(String(page.body)).toContain('<script type="module" src="/console/assets/main.ts"></script>')

    const module = (await serve(request('GET', '/console/assets/api.ts'), '/console/assets/api.ts')).response
    expect(module.headers['content-type']).toBe('text/javascript; charset=utf-8')
    expect(String(module.body)).toContain('export async function login(')
    expect(String(module.body)).not.toMatch(/export type |: Promise</)
    const css = (await serve(request('GET', '/console/assets/console.css'), '/console/assets/console.css'))
      .response
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8')

    for (const path of ['/console/assets/index.html', '/console/assets/../api/console.ts', '/console/other'])
      expect((await serve(request('GET', path), path)).response.status, path).toBe(404)
    expect((await serve(request('DELETE', '/console'), '/console')).response.status).toBe(405)
  })
})
