import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Api, api, USER_RESPONSE_KEYS } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

let server: TestServer
let request: Api
// biome-ignore lint/suspicious/noExplicitAny: the OpenAPI document is read loosely
let doc: any

beforeAll(async () => {
  server = await startServer()
  request = api(server.url)
  const reply = await request('GET', '/openapi.json')
  expect(reply.status).toBe(200)
  doc = reply.body
})
afterAll(async () => {
  await server?.close()
})

const SCHEMAS = [
  'UserCreate',
  'UserResponse',
  'Body_login_for_access_token_auth_login_post',
  'Token',
  'TwoFactorChallenge',
  'TokenRefresh',
  'Message',
  'SessionResponse',
  'UserUpdate',
  'VerifyEmailRequest',
  'HTTPValidationError',
]

/** method, path, operationId (the tRPC procedure), protected by a bearer token. */
const ROUTES: [string, string, string, boolean][] = [
  ['post', '/auth/register', 'auth.register', false],
  ['post', '/auth/login', 'auth.login', false],
  ['post', '/token', 'auth.token', false],
  ['post', '/auth/token-refresh', 'auth.tokenRefresh', false],
  ['get', '/auth/sessions', 'auth.sessions', true],
  ['delete', '/auth/sessions/{session_id}', 'auth.revokeSession', true],
  ['get', '/auth/verify-user/{username}', 'auth.verifyUser', true],
  ['put', '/auth/profile', 'auth.updateProfile', true],
  ['post', '/auth/verify-email', 'auth.verifyEmail', false],
  ['post', '/auth/verify-email/resend', 'auth.resendVerification', true],
  ['get', '/', 'system.root', false],
  ['get', '/protected', 'system.protected', true],
  ['get', '/.well-known/jwks.json', 'system.jwks', false],
  ['get', '/healthz', 'system.healthz', false],
  ['get', '/readyz', 'system.readyz', false],
]

function collectRefs(value: unknown, into: Set<string>): Set<string> {
  if (Array.isArray(value)) for (const item of value) collectRefs(item, into)
  else if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      if (key === '$ref' && typeof inner === 'string') into.add(inner)
      else collectRefs(inner, into)
    }
  }
  return into
}

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3.1 document with JSON content type', async () => {
    const reply = await request('GET', '/openapi.json')
    expect(reply.headers.get('content-type')).toMatch(/^application\/json/)
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/)
    expect(typeof doc.info.title).toBe('string')
    expect(typeof doc.info.version).toBe('string')
  })

  it('has every contract schema of these routes under components.schemas', () => {
    const names = Object.keys(doc.components.schemas)
    expect(names).toEqual(expect.arrayContaining(SCHEMAS))
  })

  it('resolves every $ref inside the document', () => {
    for (const ref of collectRefs(doc, new Set())) {
      expect(ref, ref).toMatch(/^#\/components\/schemas\//)
      const name = ref.slice('#/components/schemas/'.length)
      expect(doc.components.schemas[name], ref).toBeDefined()
    }
  })

  it('describes the schemas with the contract fields', () => {
    const s = doc.components.schemas
    expect(Object.keys(s.UserCreate.properties).sort()).toEqual([
      'email',
      'full_name',
      'password',
      'username',
    ])
    expect([...s.UserCreate.required].sort()).toEqual(['email', 'password', 'username'])
    expect(Object.keys(s.UserResponse.properties).sort()).toEqual(USER_RESPONSE_KEYS)
    expect(s.UserResponse.properties.role.enum).toEqual(['user', 'vendor', 'admin', 'auditor'])
    const form = s.Body_login_for_access_token_auth_login_post
    expect(Object.keys(form.properties).sort()).toEqual([
      'client_id',
      'client_secret',
      'grant_type',
      'password',
      'scope',
      'username',
    ])
    expect(Object.keys(s.Token.properties).sort()).toEqual([
      'access_token',
      'expires_in',
      'refresh_token',
      'token_type',
    ])
    expect(Object.keys(s.TwoFactorChallenge.properties)).toContain('requires_2fa')
    expect(Object.keys(s.TokenRefresh.properties)).toEqual(['refresh_token'])
    expect(Object.keys(s.SessionResponse.properties).sort()).toEqual([
      'created_at',
      'expires_at',
      'id',
      'ip_address',
      'is_current',
      'last_used_at',
      'user_agent',
    ])
    expect(Object.keys(s.UserUpdate.properties).sort()).toEqual([
      'current_password',
      'email',
      'full_name',
      'password',
    ])
    expect(s.UserUpdate.required ?? []).toEqual([])
    expect(s.UserResponse.properties.email_verified.type).toBe('boolean')
    expect(s.VerifyEmailRequest.required).toEqual(['token'])
    expect(s.Message.properties.message.type).toBe('string')
    expect(s.HTTPValidationError.properties.detail.type).toBe('array')
  })

  it('marks only username and password as required in the login form (grant_type, scope, client_* optional)', () => {
    const form = doc.components.schemas.Body_login_for_access_token_auth_login_post
    expect([...form.required].sort()).toEqual(['password', 'username'])
  })

  it('documents every error status API.md names for these routes', () => {
    const documented = (method: string, path: string) => Object.keys(doc.paths[path][method].responses).sort()
    expect(documented('post', '/auth/register')).toEqual(expect.arrayContaining(['200', '409', '422', '429']))
    for (const path of ['/auth/login', '/token']) {
      expect(documented('post', path)).toEqual(
        expect.arrayContaining(['200', '401', '403', '422', '423', '429']),
      )
    }
    expect(documented('post', '/auth/token-refresh')).toEqual(expect.arrayContaining(['200', '401', '422']))
    expect(documented('get', '/auth/sessions')).toEqual(expect.arrayContaining(['200', '401']))
    expect(documented('delete', '/auth/sessions/{session_id}')).toEqual(
      expect.arrayContaining(['200', '401', '404', '422']),
    )
    expect(documented('get', '/auth/verify-user/{username}')).toEqual(
      expect.arrayContaining(['200', '401', '404']),
    )
    expect(documented('put', '/auth/profile')).toEqual(expect.arrayContaining(['200', '401', '409', '422']))
    expect(documented('post', '/auth/verify-email')).toEqual(
      expect.arrayContaining(['200', '400', '422', '429']),
    )
    expect(documented('post', '/auth/verify-email/resend')).toEqual(
      expect.arrayContaining(['200', '400', '401', '429']),
    )
    for (const [method, path] of ROUTES) {
      const responses: Record<string, { content: Record<string, { schema: unknown }> }> =
        doc.paths[path][method].responses
      for (const [status, response] of Object.entries(responses)) {
        if (status === '200' || status === '422') continue
        expect(response.content['application/json'].schema, `${method} ${path} ${status}`).toEqual({
          $ref: '#/components/schemas/HTTPError',
        })
      }
    }
  })

  it('declares OAuth2 password flow security with tokenUrl /token', () => {
    const schemes = Object.values(doc.components.securitySchemes) as {
      type: string
      flows?: { password?: { tokenUrl: string } }
    }[]
    const oauth = schemes.filter((scheme) => scheme.type === 'oauth2')
    expect(oauth).toHaveLength(1)
    expect(oauth[0].flows?.password?.tokenUrl).toBe('/token')
  })

  it.each(ROUTES)(
    '%s %s has operationId %s and the right security',
    (method, path, operationId, isProtected) => {
      const operation = doc.paths[path]?.[method]
      expect(operation, `${method} ${path}`).toBeDefined()
      expect(operation.operationId).toBe(operationId)
      const [schemeName] = Object.keys(doc.components.securitySchemes)
      if (isProtected) {
        expect(operation.security).toEqual([{ [schemeName]: [] }])
        expect(Object.keys(operation.responses)).toContain('401')
      } else {
        expect(operation.security === undefined || operation.security.length === 0).toBe(true)
      }
      expect(operation.responses['200']).toBeDefined()
    },
  )

  it('has unique operationIds', () => {
    const ids: string[] = []
    for (const item of Object.values(doc.paths) as Record<string, { operationId?: string }>[]) {
      for (const operation of Object.values(item)) if (operation.operationId) ids.push(operation.operationId)
    }
    expect(new Set(ids).size).toBe(ids.length)
  })

  it('documents the login forms as application/x-www-form-urlencoded with the named schema', () => {
    for (const path of ['/auth/login', '/token']) {
      const content = doc.paths[path].post.requestBody.content
      expect(Object.keys(content)).toContain('application/x-www-form-urlencoded')
      expect(content['application/x-www-form-urlencoded'].schema).toEqual({
        $ref: '#/components/schemas/Body_login_for_access_token_auth_login_post',
      })
      const ok = doc.paths[path].post.responses['200'].content['application/json'].schema
      expect(collectRefs(ok, new Set())).toEqual(
        new Set(['#/components/schemas/Token', '#/components/schemas/TwoFactorChallenge']),
      )
    }
  })

  it('refers request and response bodies to the named schemas', () => {
    const body = (path: string, method: string) =>
      doc.paths[path][method].requestBody.content['application/json'].schema
    const ok = (path: string, method: string) =>
      doc.paths[path][method].responses['200'].content['application/json'].schema
    expect(body('/auth/register', 'post')).toEqual({ $ref: '#/components/schemas/UserCreate' })
    expect(ok('/auth/register', 'post')).toEqual({ $ref: '#/components/schemas/UserResponse' })
    expect(body('/auth/token-refresh', 'post')).toEqual({ $ref: '#/components/schemas/TokenRefresh' })
    expect(ok('/auth/token-refresh', 'post')).toEqual({ $ref: '#/components/schemas/Token' })
    expect(body('/auth/profile', 'put')).toEqual({ $ref: '#/components/schemas/UserUpdate' })
    expect(ok('/auth/profile', 'put')).toEqual({ $ref: '#/components/schemas/UserResponse' })
    expect(ok('/auth/sessions/{session_id}', 'delete')).toEqual({ $ref: '#/components/schemas/Message' })
    expect(ok('/auth/sessions', 'get')).toEqual({
      type: 'array',
      items: { $ref: '#/components/schemas/SessionResponse' },
    })
    for (const [method, path] of ROUTES) {
      expect(doc.paths[path][method].responses['422'].content['application/json'].schema).toEqual({
        $ref: '#/components/schemas/HTTPValidationError',
      })
    }
  })

  it('documents path parameters as required, session_id as an integer', () => {
    const [sessionId] = doc.paths['/auth/sessions/{session_id}'].delete.parameters
    expect(sessionId).toMatchObject({ in: 'path', name: 'session_id', required: true })
    expect(sessionId.schema.type).toBe('integer')
    const [username] = doc.paths['/auth/verify-user/{username}'].get.parameters
    expect(username).toMatchObject({ in: 'path', name: 'username', required: true })
  })
})

describe('GET /docs', () => {
  it('serves HTML that loads only same-origin scripts and styles, all of which answer 200', async () => {
    const reply = await request('GET', '/docs')
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-type')).toMatch(/^text\/html/)
    const html: string = reply.body
    expect(html).toMatch(/<html/i)

    const scripts = [...html.matchAll(/<script\b[^>]*\bsrc="([^"]+)"/gi)].map((m) => m[1])
    const links = [...html.matchAll(/<link\b[^>]*\bhref="([^"]+)"/gi)].map((m) => m[1])
    expect(scripts.length).toBeGreaterThan(0)
    for (const url of [...scripts, ...links]) {
      expect(url, url).toMatch(/^\/(?!\/)/)
    }
    expect(html).not.toMatch(/https?:\/\//)
    expect(html).not.toMatch(/cdn|unpkg|jsdelivr|cdnjs/i)

    // The page's CSP allows only same-origin scripts.
    const csp = reply.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("default-src 'self'")
    expect(csp).not.toMatch(/script-src[^;]*(https?:|\*)/)

    for (const url of [...scripts, ...links]) {
      // Static third-party assets (swagger-ui) are fetched raw: their code is not an API answer.
      const asset = await fetch(`${server.url}${url}`)
      expect(asset.status, url).toBe(200)
      expect((await asset.arrayBuffer()).byteLength, url).toBeGreaterThan(0)
      if (url.endsWith('.js')) expect(asset.headers.get('content-type')).toMatch(/javascript/)
      if (url.endsWith('.css')) expect(asset.headers.get('content-type')).toMatch(/^text\/css/)
    }
  })

  it('points the UI at /openapi.json from a same-origin init script', async () => {
    const html: string = (await request('GET', '/docs')).body
    const scripts = [...html.matchAll(/<script\b[^>]*\bsrc="([^"]+)"/gi)].map((m) => m[1])
    const bodies = await Promise.all(scripts.map(async (src) => (await fetch(`${server.url}${src}`)).text()))
    expect(bodies.some((text) => text.includes('/openapi.json'))).toBe(true)
    expect(html).not.toMatch(/<script>(?!<\/script>)/)
  })

  it('answers 404 for unknown docs assets', async () => {
    const reply = await request('GET', '/docs/not-a-file.js')
    expect(reply.status).toBe(404)
    expect(reply.body).toEqual({ detail: 'Not Found' })
    const traversal = await request('GET', '/docs/..%2Fpackage.json')
    expect(traversal.status).toBe(404)
  })
})
