/**
 * The web console at `/console`: a page, one stylesheet and the browser's TypeScript modules
 * (served with their types stripped, no build step), under a strict Content-Security-Policy;
 * and the console's own session routes, which keep the refresh token in an `HttpOnly`,
 * `SameSite=Strict` cookie scoped to `/console/api/refresh`, so that no script of the page ever
 * reads it. The access token lives in the page's memory only.
 *
 * Every token operation is forwarded to the service's own REST routes (`/auth/login`,
 * `/auth/verify-2fa`, `/auth/passkeys/login`, `/auth/token-refresh`,
 * `DELETE /auth/sessions/{id}`) as if the browser had called them: their rules, rate limits,
 * lockout and error answers are the console's.
 *
 * CSRF: every console route needs the header `X-Console-CSRF: 1`. A page of another origin can
 * send a custom header only after a CORS preflight, which this service never grants (it sends
 * no `Access-Control-Allow-*` header), and a plain form cannot send one at all. On top of that
 * a browser's `Origin` must be this service's own, a `Sec-Fetch-Site` other than `same-origin`
 * is refused, and the cookie is `SameSite=Strict`, so a cross-site request does not carry it.
 */
import { readdirSync, readFileSync } from 'node:fs'
import * as nodeModule from 'node:module'
import { join, relative, sep } from 'node:path'
import type { HttpRequest, HttpResponse } from './http.ts'
import { jsonResponse } from './http.ts'

export const CONSOLE_REFRESH_PATH = '/console/api/refresh'
export const CONSOLE_CSRF_HEADER = 'x-console-csrf'
export const CONSOLE_COOKIE = 'console_refresh'

/** No inline script or style, nothing from another origin, no framing, DOM sinks need Trusted Types. */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  // The 2FA QR code is an SVG shown through <img src="data:…"> (an image never runs script).
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ')

const PAGE_HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
}

const ASSET_DIR = join(import.meta.dirname, '..', 'console')
const TYPES: Record<string, string> = {
  '.ts': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
}

export type ConsoleDeps = {
  /** The service's base URL: its scheme decides `Secure`, its origin is one the console accepts. */
  publicUrl: string
  /** How long the browser keeps the refresh cookie (the refresh token's own lifetime). */
  cookieMaxAgeSeconds: number
  /** Runs a request through the service's own routes, as if the same client had sent it. */
  forward: (request: HttpRequest) => Promise<HttpResponse>
}

export type ConsoleAnswer = { response: HttpResponse; label: string }

/** The assets: every `.ts` and `.css` file under src/console, by its path there. */
function listAssets(dir: string): Map<string, string> {
  const found = new Map<string, string>()
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const file = join(entry.parentPath, entry.name)
    const name = relative(dir, file).split(sep).join('/')
    const extension = name.slice(name.lastIndexOf('.'))
    if (TYPES[extension] && /^[a-z0-9/-]+\.(ts|css)$/.test(name)) found.set(name, file)
  }
  return found
}

const decoder = new TextDecoder()
const encoder = new TextEncoder()

function cookieValue(request: HttpRequest, name: string): string | null {
  const header = request.header('cookie')
  if (!header) return null
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return null
}

/** The `sid` claim of an access token, read without verification: the forwarded call verifies it. */
function sessionIdOf(accessToken: string): number | null {
  try {
    const payload = JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8'))
    const sid = Number(payload?.sid)
    return Number.isSafeInteger(sid) && sid > 0 ? sid : null
  } catch {
    return null
  }
}

function bearerOf(request: HttpRequest): string | null {
  const authorization = request.header('authorization')
  return authorization && /^bearer /i.test(authorization) ? authorization.slice(7).trim() || null : null
}

function parseJson(response: HttpResponse): Record<string, unknown> | null {
  if (response.body === null) return null
  try {
    const text = typeof response.body === 'string' ? response.body : decoder.decode(response.body)
    const value = JSON.parse(text)
    return value && typeof value === 'object' && !Array.isArray(value) ? value : null
  } catch {
    return null
  }
}

export function createConsole(deps: ConsoleDeps) {
  const secure = deps.publicUrl.toLowerCase().startsWith('https:')
  const scheme = secure ? 'https' : 'http'
  let publicOrigin: string | null = null
  try {
    publicOrigin = new URL(deps.publicUrl).origin
  } catch {}
  const assets = listAssets(ASSET_DIR)
  const cache = new Map<string, string | Uint8Array>()

  const cookie = (value: string, maxAge: number): string =>
    [
      `${CONSOLE_COOKIE}=${value}`,
      `Path=${CONSOLE_REFRESH_PATH}`,
      `Max-Age=${maxAge}`,
      'HttpOnly',
      'SameSite=Strict',
      ...(secure ? ['Secure'] : []),
    ].join('; ')
  const setCookie = (refreshToken: string) => cookie(refreshToken, deps.cookieMaxAgeSeconds)
  const clearCookie = () => cookie('', 0)

  function asset(name: string): HttpResponse | null {
    const file = assets.get(name)
    if (!file) return null
    let body = cache.get(name)
    if (body === undefined) {
      const bytes = readFileSync(file)
      body = name.endsWith('.ts') ? stripTypes(bytes.toString('utf8')) : new Uint8Array(bytes)
      cache.set(name, body)
    }
    const type = TYPES[name.slice(name.lastIndexOf('.'))]
    return {
      status: 200,
      headers: { ...PAGE_HEADERS, 'content-type': type, 'cache-control': 'no-cache' },
      body,
    }
  }

  function page(): HttpResponse {
    let body = cache.get('index.html')
    if (body === undefined) {
      body = readFileSync(join(ASSET_DIR, 'index.html'), 'utf8')
      cache.set('index.html', body)
    }
    return {
      status: 200,
      headers: { ...PAGE_HEADERS, 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
      body,
    }
  }

  /** Why a console route refuses this request as a possible cross-site forgery, or null. */
  function forgery(request: HttpRequest): string | null {
    if (request.header(CONSOLE_CSRF_HEADER) !== '1') return 'Missing X-Console-CSRF header'
    const site = request.header('sec-fetch-site')
    if (site !== null && site !== 'same-origin') return 'Cross-site request refused'
    const origin = request.header('origin')
    if (origin !== null) {
      const host = request.header('host')
      const own = origin === publicOrigin || (host !== null && origin === `${scheme}://${host}`)
      if (!own) return 'Cross-origin request refused'
    }
    return null
  }

  /** One call to the service's own routes with this request's client (address, user agent). */
  function call(
    request: HttpRequest,
    method: string,
    target: string,
    options: { json?: unknown; bearer?: string | null } = {},
  ): Promise<HttpResponse> {
    const body = options.json === undefined ? null : encoder.encode(JSON.stringify(options.json))
    const own: Record<string, string | null> = {
      'content-type': body ? 'application/json' : null,
      'content-length': body ? String(body.length) : null,
      authorization: options.bearer ? `Bearer ${options.bearer}` : null,
      cookie: null,
    }
    const header = (name: string): string | null => (name in own ? own[name] : request.header(name))
    return deps.forward({
      method,
      target,
      body,
      remoteAddress: request.remoteAddress,
      header,
      *headerPairs() {
        for (const [name, value] of request.headerPairs()) if (!(name in own)) yield [name, value]
        for (const [name, value] of Object.entries(own)) if (value !== null) yield [name, value]
      },
    })
  }

  /** A token answer for the page: the refresh token goes into the cookie, never into the body. */
  function tokenAnswer(response: HttpResponse): HttpResponse {
    const body = parseJson(response)
    if (response.status !== 200 || !body) return response
    if (body.requires_2fa === true || typeof body.refresh_token !== 'string') return response
    const { refresh_token, ...rest } = body
    return jsonResponse(rest, 200, { 'set-cookie': setCookie(refresh_token) })
  }

  function readJson(request: HttpRequest): Record<string, unknown> | null {
    if (!request.body) return {}
    try {
      const value = JSON.parse(decoder.decode(request.body))
      return value && typeof value === 'object' && !Array.isArray(value) ? value : null
    } catch {
      return null
    }
  }

  async function login(request: HttpRequest): Promise<HttpResponse> {
    const input = readJson(request)
    if (!input) return jsonResponse({ detail: 'Expected a JSON object' }, 400)
    return tokenAnswer(
      await call(request, 'POST', '/auth/login', {
        json: { username: input.username, password: input.password },
      }),
    )
  }

  async function verifySecondFactor(request: HttpRequest): Promise<HttpResponse> {
    const input = readJson(request)
    if (!input) return jsonResponse({ detail: 'Expected a JSON object' }, 400)
    return tokenAnswer(
      await call(request, 'POST', '/auth/verify-2fa', {
        json: { code: input.code },
        bearer: bearerOf(request),
      }),
    )
  }

  /** The assertion goes to the service as it came; the options call needs no console route. */
  async function passkeyLogin(request: HttpRequest): Promise<HttpResponse> {
    const input = readJson(request)
    if (!input) return jsonResponse({ detail: 'Expected a JSON object' }, 400)
    return tokenAnswer(
      await call(request, 'POST', '/auth/passkeys/login', { json: { response: input.response } }),
    )
  }

  async function refresh(request: HttpRequest): Promise<HttpResponse> {
    const token = cookieValue(request, CONSOLE_COOKIE)
    if (!token) {
      return jsonResponse({ detail: 'No console session' }, 401, { 'www-authenticate': 'Bearer' })
    }
    const response = tokenAnswer(
      await call(request, 'POST', '/auth/token-refresh', { json: { refresh_token: token } }),
    )
    // A refused refresh token is dead for good: drop the cookie with it.
    if (response.status === 401) response.headers = { ...response.headers, 'set-cookie': clearCookie() }
    return response
  }

  /**
   * Log out: revokes this console session (the one the access token names, and the cookie's if
   * another one of the same user) and clears the cookie. Without a working access token, the
   * cookie's refresh token gets one first.
   */
  async function logout(request: HttpRequest): Promise<HttpResponse> {
    const cookieToken = cookieValue(request, CONSOLE_COOKIE)
    const cookieSession = cookieToken ? Number(cookieToken.split('.')[0]) : Number.NaN
    let bearer = bearerOf(request)
    const revoke = (sessionId: number, token: string) =>
      call(request, 'DELETE', `/auth/sessions/${sessionId}`, { bearer: token })
    let sessionId = bearer ? sessionIdOf(bearer) : null
    let outcome = bearer && sessionId ? await revoke(sessionId, bearer) : null
    if ((!outcome || outcome.status === 401) && cookieToken) {
      const renewed = parseJson(
        await call(request, 'POST', '/auth/token-refresh', { json: { refresh_token: cookieToken } }),
      )
      bearer = typeof renewed?.access_token === 'string' ? renewed.access_token : null
      sessionId = bearer ? sessionIdOf(bearer) : null
      outcome = bearer && sessionId ? await revoke(sessionId, bearer) : null
    }
    if (
      bearer &&
      outcome?.status === 200 &&
      Number.isSafeInteger(cookieSession) &&
      cookieSession > 0 &&
      cookieSession !== sessionId
    ) {
      await revoke(cookieSession, bearer)
    }
    const headers = { 'set-cookie': clearCookie() }
    if (outcome && outcome.status >= 500) return { ...outcome, headers: { ...outcome.headers, ...headers } }
    return jsonResponse(
      { message: outcome?.status === 200 ? 'Logged out' : 'No active session' },
      200,
      headers,
    )
  }

  const API: Record<string, Record<string, (request: HttpRequest) => Promise<HttpResponse>>> = {
    '/console/api/login': { POST: login },
    '/console/api/verify-2fa': { POST: verifySecondFactor },
    '/console/api/passkey-login': { POST: passkeyLogin },
    [CONSOLE_REFRESH_PATH]: { POST: refresh, DELETE: logout },
  }

  return async function serveConsole(request: HttpRequest, pathname: string): Promise<ConsoleAnswer> {
    const routes = API[pathname]
    if (routes) {
      const handler = routes[request.method]
      if (!handler) return { response: jsonResponse({ detail: 'Method Not Allowed' }, 405), label: pathname }
      const refused = forgery(request)
      if (refused) return { response: jsonResponse({ detail: refused }, 403), label: pathname }
      return { response: await handler(request), label: pathname }
    }
    const response =
      pathname === '/console' || pathname === '/console/'
        ? page()
        : pathname.startsWith('/console/assets/')
          ? asset(pathname.slice('/console/assets/'.length))
          : null
    if (!response) return { response: jsonResponse({ detail: 'Not Found' }, 404), label: 'unmatched' }
    if (request.method !== 'GET')
      return { response: jsonResponse({ detail: 'Method Not Allowed' }, 405), label: '/console' }
    return { response, label: '/console' }
  }
}

type BunTranspiler = { transformSync(code: string): string }
const bun = (globalThis as { Bun?: { Transpiler: new (options: { loader: 'ts' }) => BunTranspiler } }).Bun

/** The types erased: node:module's stripTypeScriptTypes on Node and Deno; Bun has none, but its own transpiler. */
function stripTypes(source: string): string {
  if (typeof nodeModule.stripTypeScriptTypes === 'function') return nodeModule.stripTypeScriptTypes(source)
  if (bun) return new bun.Transpiler({ loader: 'ts' }).transformSync(source)
  throw new Error('this runtime cannot strip TypeScript types (node:module stripTypeScriptTypes is missing)')
}
