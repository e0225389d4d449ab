/**
 * REST from the same procedures: each procedure's `meta.openapi` names its method and path.
 * This adapter (rather than trpc-to-openapi's own handlers) assembles the input from path,
 * query and a JSON or OAuth2 form body, and answers errors in FastAPI's shapes: `422`
 * HTTPValidationError for every validation failure, `{"detail": ...}` otherwise, never a stack.
 */
import { TRPCError } from '@trpc/server'
import type { OpenApiMeta } from 'trpc-to-openapi'
import { DomainError } from '../../domain/errors.ts'
import type { Logger } from '../logger.ts'
import { httpStatusOf, RateLimited, transport } from './errors.ts'
import { type HttpRequest, type HttpResponse, jsonResponse } from './http.ts'
import { type AppRouter, appRouter } from './router.ts'
import type { Context } from './trpc.ts'
import type { ProcedureCall, ProcedureRunner } from './trpc-fast-path/procedure-runner.ts'

type Source = 'body' | 'query' | 'path'
type Issue = { loc: (string | number)[]; msg: string; type: string }

export type Route = {
  method: string
  template: string
  pattern: RegExp
  params: string[]
  procedure: string
  type: 'query' | 'mutation'
  call: ProcedureCall
}

class RequestShapeError extends Error {
  readonly issues: Issue[]
  constructor(issues: Issue[]) {
    super('invalid request')
    this.issues = issues
  }
}

function collectRoutes(router: AppRouter, runner: Pick<ProcedureRunner<AppRouter>, 'procedure'>): Route[] {
  const routes: Route[] = []
  for (const [procedure, value] of Object.entries(router._def.procedures)) {
    const { _def } = value as unknown as { _def: { meta?: OpenApiMeta; type: 'query' | 'mutation' } }
    const meta = _def.meta
    if (!meta?.openapi) continue
    const params: string[] = []
    const source = meta.openapi.path
      .replace(/[.*+?^$()|[\]\\]/g, '\\$&')
      .replace(/\{(\w+)\}/g, (_, name: string) => {
        params.push(name)
        return '([^/]+)'
      })
    routes.push({
      method: meta.openapi.method,
      template: meta.openapi.path,
      pattern: new RegExp(`^${source}$`),
      params,
      procedure,
      type: _def.type,
      call: runner.procedure(procedure),
    })
  }
  return routes
}

const json = jsonResponse
const validationError = (issues: Issue[]): HttpResponse => json({ detail: issues }, 422)
const decoder = new TextDecoder()

function readBody(request: HttpRequest): Record<string, unknown> | undefined {
  const text = request.body ? decoder.decode(request.body) : ''
  const type = (request.header('content-type') ?? '').split(';')[0].trim().toLowerCase()
  if (type === 'application/x-www-form-urlencoded') {
    return Object.fromEntries(new URLSearchParams(text))
  }
  if (text.trim() === '') return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new RequestShapeError([
      { loc: ['body', 0], msg: `JSON decode error: ${(error as Error).message}`, type: 'json_invalid' },
    ])
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new RequestShapeError([
      {
        loc: ['body'],
        msg: 'Input should be a valid dictionary or object to extract fields from',
        type: 'model_attributes_type',
      },
    ])
  }
  return parsed as Record<string, unknown>
}

function issueType(code: string, missing: boolean, origin?: string): string {
  if (missing) return 'missing'
  switch (code) {
    case 'too_small':
      return origin === 'string' ? 'string_too_short' : 'greater_than_equal'
    case 'too_big':
      return origin === 'string' ? 'string_too_long' : 'less_than_equal'
    case 'invalid_type':
      return 'type_error'
    case 'invalid_value':
      return 'enum'
    case 'invalid_format':
      return 'value_error'
    default:
      return 'value_error'
  }
}

function toIssues(
  zodIssues: { path: PropertyKey[]; message: string; code: string; origin?: string }[],
  input: Record<string, unknown> | undefined,
  sourceOf: (field: string) => Source,
): Issue[] {
  return zodIssues.map((issue) => {
    const path = issue.path.map((p) => (typeof p === 'number' ? p : String(p)))
    const first = path[0]
    const source: Source = typeof first === 'string' ? sourceOf(first) : 'body'
    let value: unknown = input
    for (const key of path) value = (value as Record<string | number, unknown> | undefined)?.[key]
    const missing = value === undefined && issue.code === 'invalid_type'
    return {
      loc: [source, ...path],
      msg: missing ? 'Field required' : issue.message,
      type: issueType(issue.code, missing, issue.origin),
    }
  })
}

export function createRestHandler(log: Logger, runner: Pick<ProcedureRunner<AppRouter>, 'procedure'>) {
  const routes = collectRoutes(appRouter, runner)

  function errorResponse(
    error: unknown,
    input: Record<string, unknown> | undefined,
    sourceOf: (field: string) => Source,
  ): HttpResponse {
    if (error instanceof RequestShapeError) return validationError(error.issues)
    if (!(error instanceof TRPCError)) {
      log.error('unexpected error', { error: (error as Error)?.message })
      return json({ detail: 'Internal server error' }, 500)
    }
    const cause = error.cause
    if (cause instanceof DomainError) {
      if (cause.code === 'WEAK_PASSWORD') {
        const field = input && 'new_password' in input ? 'new_password' : 'password'
        return validationError([{ loc: ['body', field], msg: cause.message, type: 'value_error' }])
      }
      const status = transport[cause.code].http
      const headers: Record<string, string> = {}
      if (status === 401) headers['www-authenticate'] = 'Bearer'
      if (cause.retryAfterSeconds !== undefined) headers['retry-after'] = String(cause.retryAfterSeconds)
      return json({ detail: cause.message }, status, headers)
    }
    if (cause instanceof RateLimited) {
      return json({ detail: cause.message }, 429, { 'retry-after': String(cause.retryAfterSeconds) })
    }
    const issues = (cause as { issues?: unknown } | undefined)?.issues
    if (error.code === 'BAD_REQUEST' && Array.isArray(issues)) {
      return validationError(toIssues(issues, input, sourceOf))
    }
    if (error.code === 'SERVICE_UNAVAILABLE')
      return json({ detail: error.message }, 503, { 'retry-after': '1' })
    const status = httpStatusOf[error.code] ?? 500
    if (status === 500) {
      log.error('procedure failed', { error: (error.cause as Error | undefined)?.message ?? error.message })
      return json({ detail: 'Internal server error' }, 500)
    }
    return json(
      { detail: error.message },
      status,
      status === 401 ? { 'www-authenticate': 'Bearer' } : undefined,
    )
  }

  // Most paths have no parameters: those are one map lookup; only the rest try their patterns.
  const staticRoutes = new Map<string, Route[]>()
  const patternRoutes: Route[] = []
  for (const route of routes) {
    if (route.params.length > 0) patternRoutes.push(route)
    else staticRoutes.set(route.template, [...(staticRoutes.get(route.template) ?? []), route])
  }
  const NO_PARAMS: string[] = []

  return {
    routes,
    match(
      method: string,
      pathname: string,
    ): { route: Route; params: string[] } | 'method_not_allowed' | null {
      const fixed = staticRoutes.get(pathname)
      const route = fixed?.find((r) => r.method === method)
      if (route) return { route, params: NO_PARAMS }
      // `/admin/user/role` is a path of its own and also fits `/admin/user/{user_id}`.
      let pathMatched = fixed !== undefined
      for (const candidate of patternRoutes) {
        const m = candidate.pattern.exec(pathname)
        if (!m) continue
        pathMatched = true
        if (candidate.method === method) return { route: candidate, params: m.slice(1) }
      }
      return pathMatched ? 'method_not_allowed' : null
    },

    async handle(
      request: HttpRequest,
      query: string,
      route: Route,
      params: string[],
      ctx: Context,
      responseHeaders: Map<string, string>,
    ): Promise<HttpResponse> {
      let fromQuery: Record<string, unknown> | undefined
      let body: Record<string, unknown> | undefined
      let input: Record<string, unknown> | undefined
      // Where a field came from, for the `loc` of a validation error: path over body over query.
      const sourceOf = (field: string): Source =>
        route.params.includes(field)
          ? 'path'
          : (body && Object.hasOwn(body, field)) || !(fromQuery && Object.hasOwn(fromQuery, field))
            ? 'body'
            : 'query'
      try {
        if (query) fromQuery = Object.fromEntries(new URLSearchParams(query))
        body = route.method === 'GET' || route.method === 'DELETE' ? undefined : readBody(request)
        input = body || query || params.length > 0 ? { ...fromQuery, ...body } : undefined
        route.params.forEach((name, i) => {
          let value: string
          try {
            value = decodeURIComponent(params[i])
          } catch {
            throw new RequestShapeError([
              { loc: ['path', name], msg: 'Invalid path parameter', type: 'value_error' },
            ])
          }
          input = { ...input, [name]: value }
        })
        const given = input
        const result = await route.call({
          ctx,
          path: route.procedure,
          type: route.type,
          getRawInput: async () => given,
        })
        return json(result, 200, responseHeaders.size > 0 ? Object.fromEntries(responseHeaders) : undefined)
      } catch (error) {
        return errorResponse(error, input, sourceOf)
      }
    },
  }
}
