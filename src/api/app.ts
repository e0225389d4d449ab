/**
 * The HTTP surface as one handler: typed tRPC at /trpc, the REST routes of API.md, the OpenAPI
 * document, the docs page and metrics. `serve` takes the service's own request shape (what the
 * Node server builds cheaply); `handle` is the same as a web-standard `(Request) => Response`.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { fetchRequestHandler } from '@trpc/server/adapters/fetch'
import type { Runtime } from '../app/runtime.ts'
import type { SqlPool } from '../eventstore/sql-pool.ts'
import { createConsole } from './console.ts'
import { createDocs } from './docs.ts'
import {
  fromWebRequest,
  fromWebResponse,
  type HttpRequest,
  type HttpResponse,
  jsonResponse,
  toWebRequest,
  toWebResponse,
} from './http.ts'
import { createMetrics } from './metrics.ts'
import { buildOpenApiDocument } from './openapi.ts'
import { createPostgresRateLimiter } from './postgres-rate-limit.ts'
import { createRateLimiter, type RateLimiter } from './rate-limit.ts'
import { createRestHandler } from './rest.ts'
import { appRouter } from './router.ts'
import type { Context, ResponseHeaders } from './trpc.ts'
import { createProcedureRunner } from './trpc-fast-path/procedure-runner.ts'
import { createTrpcHttp } from './trpc-fast-path/trpc-http.ts'

const LOGIN_ROUTES = new Set(['/auth/login', '/token', '/admin/login', '/vendor/login', '/auth/verify-2fa'])
const loginOutcome: Record<number, string> = {
  200: 'success',
  401: 'bad_credentials',
  403: 'forbidden',
  423: 'locked',
  429: 'rate_limited',
  422: 'invalid',
}
const GET_ONLY = new Set(['/openapi.json', '/metrics'])
const methodNotAllowed = () => ({
  response: jsonResponse({ detail: 'Method Not Allowed' }, 405),
  label: 'unmatched',
})
const sha256 = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest()
/** More calls than any client batches, few enough that one request cannot queue unbounded work. */
const MAX_TRPC_BATCH = 50

const API_SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
}
const DOCS_SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
}

export async function createApp(runtime: Runtime) {
  const { config, log } = runtime
  // The fast path reads tRPC internals; if their shape changed, tRPC's own code runs every call.
  const runner = createProcedureRunner(appRouter, (problems) =>
    log.warn('tRPC internals changed: tRPC runs every call (see src/api/trpc-fast-path/README.md)', {
      problems: problems.slice(0, 10),
    }),
  )
  const rest = createRestHandler(log, runner)
  const metrics = createMetrics()
  // Instances on one PostgreSQL database share their limits.
  const rateLimiter: RateLimiter =
    'pool' in runtime.store
      ? await createPostgresRateLimiter(runtime.store.pool as SqlPool, config.rateLimitPerMinute)
      : createRateLimiter(config.rateLimitPerMinute)
  const serveDocs = createDocs()
  const serveConsole = createConsole({
    publicUrl: config.publicUrl,
    cookieMaxAgeSeconds: Math.min(config.refreshTokenTtlSeconds, config.sessionMaxAgeSeconds),
    forward: async (inner) => {
      const q = inner.target.indexOf('?')
      const path = q < 0 ? inner.target : inner.target.slice(0, q)
      return (await route(inner, path, q < 0 ? '' : inner.target.slice(q + 1))).response
    },
  })
  let openApiJson: string | null = null
  const trpcRouter = runner.router
  const metricsTokenDigest = config.metricsToken ? sha256(config.metricsToken) : null

  /**
   * With METRICS_TOKEN set, /metrics needs it as the bearer token. Both sides are hashed first,
   * so the constant-time comparison sees equal lengths and the token's length does not leak.
   */
  function metricsAllowed(request: HttpRequest): boolean {
    if (!metricsTokenDigest) return true
    const authorization = request.header('authorization')
    if (!authorization || !/^bearer /i.test(authorization)) return false
    return timingSafeEqual(sha256(authorization.slice(7).trim()), metricsTokenDigest)
  }

  function context(request: HttpRequest, responseHeaders: ResponseHeaders): Context {
    const authorization = request.header('authorization')
    const bearer = authorization && /^bearer /i.test(authorization) ? authorization.slice(7).trim() : null
    const forwarded = config.trustProxy ? request.header('x-forwarded-for')?.split(',')[0]?.trim() : undefined
    return {
      runtime,
      request: {
        rateLimiter,
        client: {
          ip_address: forwarded || request.remoteAddress,
          user_agent: request.header('user-agent')?.slice(0, 512) ?? null,
        },
        bearer: bearer || null,
        header: request.header,
        responseHeaders,
      },
    }
  }

  const logTrpcFailure = (error: { code: string; message: string }): void => {
    if (error.code === 'INTERNAL_SERVER_ERROR') log.error('trpc procedure failed', { error: error.message })
  }
  const trpcHttp = createTrpcHttp({
    router: trpcRouter,
    endpoint: '/trpc',
    maxBatchSize: MAX_TRPC_BATCH,
    createContext: context,
    onError: logTrpcFailure,
  })

  async function serveTrpc(request: HttpRequest, pathname: string, query: string): Promise<HttpResponse> {
    const answered = await trpcHttp(request, pathname, query)
    if (answered) return answered
    const response = await fetchRequestHandler({
      endpoint: '/trpc',
      req: toWebRequest(request),
      router: trpcRouter,
      maxBatchSize: MAX_TRPC_BATCH,
      createContext: ({ resHeaders }) => context(request, resHeaders),
      onError: ({ error }) => logTrpcFailure(error),
    })
    return fromWebResponse(response)
  }

  async function route(
    request: HttpRequest,
    pathname: string,
    query: string,
  ): Promise<{ response: HttpResponse; label: string }> {
    if (pathname === '/trpc' || pathname.startsWith('/trpc/'))
      return { response: await serveTrpc(request, pathname, query), label: 'trpc' }
    // The fixed paths serve GET only; another method is a 405 as on the REST routes.
    if (GET_ONLY.has(pathname)) {
      if (request.method !== 'GET') return methodNotAllowed()
      if (pathname === '/metrics' && !metricsAllowed(request)) {
        const response = jsonResponse({ detail: 'Not authenticated' }, 401, { 'www-authenticate': 'Bearer' })
        return { response, label: pathname }
      }
      return { response: await serveFixed(pathname), label: pathname }
    }
    if (pathname === '/console' || pathname.startsWith('/console/')) return serveConsole(request, pathname)
    const isDocs = pathname === '/docs' || pathname.startsWith('/docs/')
    if (isDocs) {
      const response = await serveDocs(pathname)
      if (response) return request.method === 'GET' ? { response, label: '/docs' } : methodNotAllowed()
    }
    const match = rest.match(request.method, pathname)
    if (match === 'method_not_allowed') return methodNotAllowed()
    if (!match) return { response: jsonResponse({ detail: 'Not Found' }, 404), label: 'unmatched' }
    const responseHeaders = new Map<string, string>()
    const response = await rest.handle(
      request,
      query,
      match.route,
      match.params,
      context(request, responseHeaders),
      responseHeaders,
    )
    return { response, label: match.route.template }
  }

  /** `/openapi.json` or `/metrics` (the GET_ONLY paths). */
  async function serveFixed(pathname: string): Promise<HttpResponse> {
    if (pathname === '/openapi.json') {
      openApiJson ??= JSON.stringify(buildOpenApiDocument(config.publicUrl))
      return { status: 200, headers: { 'content-type': 'application/json' }, body: openApiJson }
    }
    // Two cheap reads, whatever the size of the store: no event is read to measure the lag.
    const position = runtime.runner.position
    const head = await runtime.store.headPosition()
    const body = await metrics.render({
      projectionLag: head > position ? head - position : 0n,
      projectionPosition: position,
    })
    return { status: 200, headers: { 'content-type': metrics.contentType }, body }
  }

  /**
   * Read-your-writes across instances: a request that carries the position a write committed at
   * is answered once this instance's read models have passed it, or 503 after the wait.
   */
  async function awaitConsistency(wanted: string): Promise<HttpResponse | null> {
    if (!/^[0-9]{1,19}$/.test(wanted))
      return jsonResponse({ detail: 'X-Consistency-Position must be a non-negative integer' }, 400)
    const position = BigInt(wanted)
    if (runtime.runner.position >= position) return null
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), config.consistencyWaitMs)
    })
    const outcome = await Promise.race([runtime.runner.waitFor(position).then(() => 'ok' as const), timedOut])
    clearTimeout(timer)
    if (outcome === 'ok') return null
    return jsonResponse(
      { detail: 'This instance has not caught up with X-Consistency-Position yet; retry' },
      503,
      {
        'retry-after': '1',
      },
    )
  }

  /** The position every write answer carries: at least where this request's commands committed. */
  const consistencyPosition = (): string => {
    const committed = runtime.commands.lastPosition
    const projected = runtime.runner.position
    // biome-ignore lint/complexity/useMathMinMax: bigints, which Math.max does not take
    return String(committed > projected ? committed : projected)
  }

  async function serve(request: HttpRequest): Promise<HttpResponse> {
    const started = performance.now()
    const q = request.target.indexOf('?')
    const pathname = q < 0 ? request.target : request.target.slice(0, q)
    const query = q < 0 ? '' : request.target.slice(q + 1)
    const wanted = request.header('x-consistency-position')
    const notYet = wanted == null ? null : await awaitConsistency(wanted)
    const { response, label } = notYet
      ? { response: notYet, label: 'consistency' }
      : await route(request, pathname, query)
    metrics.observe(label, response.status, (performance.now() - started) / 1000)
    if (LOGIN_ROUTES.has(label)) metrics.login(loginOutcome[response.status] ?? `status_${response.status}`)
    const security = label === '/docs' ? DOCS_SECURITY_HEADERS : API_SECURITY_HEADERS
    const wrote =
      request.method !== 'GET' && request.method !== 'HEAD' && response.status >= 200 && response.status < 300
    response.headers = wrote
      ? { ...security, ...response.headers, 'x-consistency-position': consistencyPosition() }
      : { ...security, ...response.headers }
    return response
  }

  async function handle(
    request: Request,
    info: { remoteAddress: string } = { remoteAddress: 'unknown' },
  ): Promise<Response> {
    return toWebResponse(await serve(await fromWebRequest(request, info.remoteAddress)))
  }

  return { serve, handle, metrics, async close(): Promise<void> {} }
}
