/**
 * The HTTP surface as one web-standard `(Request) => Response` handler: typed tRPC at /trpc,
 * the REST routes of API.md, the OpenAPI document, the docs page and metrics.
 */
import { fetchRequestHandler } from '@trpc/server/adapters/fetch'
import type { Runtime } from '../app/runtime.ts'
import { createDocs } from './docs.ts'
import { createMetrics } from './metrics.ts'
import { buildOpenApiDocument } from './openapi.ts'
import { createRateLimiter } from './rate-limit.ts'
import { createRestHandler, json } from './rest.ts'
import { appRouter } from './router.ts'
import type { Context } from './trpc.ts'

const LOGIN_ROUTES = new Set(['/auth/login', '/token', '/admin/login', '/vendor/login', '/auth/verify-2fa'])
const loginOutcome: Record<number, string> = {
  200: 'success',
  401: 'bad_credentials',
  403: 'forbidden',
  423: 'locked',
  429: 'rate_limited',
  422: 'invalid',
}

function securityHeaders(response: Response, isDocs: boolean): Response {
  const h = response.headers
  h.set('x-content-type-options', 'nosniff')
  h.set('referrer-policy', 'no-referrer')
  h.set('x-frame-options', 'DENY')
  if (!isDocs) h.set('cache-control', h.get('cache-control') ?? 'no-store')
  h.set(
    'content-security-policy',
    isDocs
      ? "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
      : "default-src 'none'; frame-ancestors 'none'",
  )
  return response
}

export async function createApp(runtime: Runtime) {
  const { config, log } = runtime
  const rest = createRestHandler(log)
  const metrics = createMetrics()
  const rateLimiter = createRateLimiter(config.rateLimitPerMinute)
  const serveDocs = createDocs()
  let openApiJson: string | null = null

  function clientAddress(request: Request, remoteAddress: string): string {
    if (config.trustProxy) {
      const forwarded = request.headers.get('x-forwarded-for')?.split(',')[0]?.trim()
      if (forwarded) return forwarded
    }
    return remoteAddress
  }

  function context(request: Request, remoteAddress: string, responseHeaders: Headers): Context {
    const authorization = request.headers.get('authorization')
    const bearer = authorization && /^bearer /i.test(authorization) ? authorization.slice(7).trim() : null
    return {
      runtime,
      rateLimiter,
      client: {
        ip_address: clientAddress(request, remoteAddress),
        user_agent: request.headers.get('user-agent')?.slice(0, 512) ?? null,
      },
      bearer: bearer || null,
      headers: request.headers,
      responseHeaders,
    }
  }

  async function route(
    request: Request,
    url: URL,
    remoteAddress: string,
  ): Promise<{ response: Response; label: string }> {
    const { pathname } = url
    if (pathname === '/trpc' || pathname.startsWith('/trpc/')) {
      const response = await fetchRequestHandler({
        endpoint: '/trpc',
        req: request,
        router: appRouter,
        createContext: ({ resHeaders }) => context(request, remoteAddress, resHeaders),
        onError: ({ error }) => {
          if (error.code === 'INTERNAL_SERVER_ERROR')
            log.error('trpc procedure failed', { error: error.message })
        },
      })
      return { response, label: 'trpc' }
    }
    // These paths serve GET only; another method is a 405 as on the REST routes.
    if (
      request.method !== 'GET' &&
      (pathname === '/openapi.json' || pathname === '/metrics' || (await serveDocs(pathname)) !== null)
    ) {
      return { response: json({ detail: 'Method Not Allowed' }, 405), label: 'unmatched' }
    }
    if (pathname === '/openapi.json') {
      openApiJson ??= JSON.stringify(buildOpenApiDocument(config.publicUrl))
      return {
        response: new Response(openApiJson, { headers: { 'content-type': 'application/json' } }),
        label: pathname,
      }
    }
    if (pathname === '/metrics') {
      const pending = await runtime.store.readAll({ fromPosition: runtime.runner.position, limit: 100_000 })
      const body = metrics.render({
        projectionLagEvents: pending.length,
        projectionPosition: runtime.runner.position,
      })
      return {
        response: new Response(body, { headers: { 'content-type': 'text/plain; version=0.0.4' } }),
        label: pathname,
      }
    }
    if (pathname === '/docs' || pathname.startsWith('/docs/')) {
      const response = await serveDocs(pathname)
      if (response) return { response, label: '/docs' }
    }
    const match = rest.match(request.method, pathname)
    if (match === 'method_not_allowed')
      return { response: json({ detail: 'Method Not Allowed' }, 405), label: 'unmatched' }
    if (!match) return { response: json({ detail: 'Not Found' }, 404), label: 'unmatched' }
    const responseHeaders = new Headers()
    const ctx = context(request, remoteAddress, responseHeaders)
    const response = await rest.handle(request, url, match.route, match.params, ctx)
    return { response, label: match.route.template }
  }

  async function handle(
    request: Request,
    info: { remoteAddress: string } = { remoteAddress: 'unknown' },
  ): Promise<Response> {
    const started = performance.now()
    const url = new URL(request.url)
    const { response, label } = await route(request, url, info.remoteAddress)
    metrics.observe(label, response.status, (performance.now() - started) / 1000)
    if (LOGIN_ROUTES.has(label)) metrics.login(loginOutcome[response.status] ?? `status_${response.status}`)
    return securityHeaders(response, label === '/docs')
  }

  return { handle, metrics, async close(): Promise<void> {} }
}
