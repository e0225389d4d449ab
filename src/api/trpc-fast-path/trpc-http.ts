/**
 * The common /trpc calls answered straight from the service's own request shape: queries over
 * GET and mutations over POST, single or batched, JSON in and out. tRPC's fetch handler builds a
 * web Request, a Response, abort signals and headers objects for each call, several times the
 * cost of the procedure; this does what it does for these calls, through the same procedures,
 * error formatter and status rules. Anything else — streaming or SSE, subscriptions, HEAD,
 * another content type, an unknown path, a method the procedure does not take, input that is not
 * JSON — returns null, and tRPC's own handler answers it. test/api/trpc-http.test.ts compares
 * both handlers' answers request by request.
 *
 * It reads tRPC internals (README.md beside this file): if the router does not have their shape,
 * checked once here, every request returns null and tRPC's own handler answers them all.
 */
import {
  getTRPCErrorFromUnknown,
  getTRPCErrorShape,
  type TRPCError,
  transformTRPCResponse,
} from '@trpc/server'
import { getHTTPStatusCodeFromError } from '@trpc/server/http'
import type { HttpRequest, HttpResponse } from '../http.ts'
import { trpcInternalsMismatches } from './internals.ts'
import { type RunnableProcedure, runProcedure } from './procedure-runner.ts'

type Procedure = RunnableProcedure & { _def: { type: 'query' | 'mutation' | 'subscription' } }

type TrpcRouter = {
  _def: {
    procedures: Record<string, unknown>
    // biome-ignore lint/suspicious/noExplicitAny: tRPC's root config type is internal
    _config: any
  }
}

type Answer = { result: { data: unknown } } | { error: { data?: { httpStatus?: unknown } } }

const decoder = new TextDecoder()

export function createTrpcHttp<Ctx extends object>(options: {
  router: TrpcRouter
  endpoint: string
  /** Longer batches are left to tRPC, which refuses them with the same limit. */
  maxBatchSize: number
  createContext(request: HttpRequest, responseHeaders: Map<string, string>): Ctx
  onError(error: TRPCError, path: string): void
}): (request: HttpRequest, pathname: string, query: string) => Promise<HttpResponse | null> {
  const { router, endpoint } = options
  if (trpcInternalsMismatches(router).length > 0) return async () => null
  const config = router._def._config
  const procedures = router._def.procedures as Record<string, Procedure | undefined>

  return async function serve(
    request: HttpRequest,
    pathname: string,
    query: string,
  ): Promise<HttpResponse | null> {
    const type = request.method === 'GET' ? 'query' : request.method === 'POST' ? 'mutation' : null
    if (!type || isStreamRequest(request)) return null
    const contentType = request.header('content-type')
    if (contentType === null ? type === 'mutation' : !isJson(contentType)) return null
    const params = new URLSearchParams(query)
    if (params.has('connectionParams')) return null
    const isBatch = params.get('batch') === '1'

    let pathPart: string
    try {
      pathPart = decodeURIComponent(pathname.slice(endpoint.length + 1))
    } catch {
      return null
    }
    const paths = isBatch ? pathPart.split(',') : [pathPart]
    if (paths.length > options.maxBatchSize) return null
    const called = paths.map((path) => procedures[path])
    if (called.some((procedure) => procedure?._def.type !== type)) return null

    let inputs: unknown
    try {
      const raw = type === 'query' ? params.get('input') : request.body ? decoder.decode(request.body) : ''
      inputs = raw ? JSON.parse(raw) : undefined
    } catch {
      return null
    }
    // tRPC refuses a batch whose input is not a plain object; it answers that itself.
    if (isBatch && inputs !== undefined && !isRecord(inputs)) return null
    const inputOf = (index: number): unknown =>
      isBatch ? (inputs as Record<number, unknown> | undefined)?.[index] : inputs

    const responseHeaders = new Map<string, string>()
    const ctx = options.createContext(request, responseHeaders)
    const statuses = new Set<number>()
    const answers: Answer[] = await Promise.all(
      paths.map(async (path, index): Promise<Answer> => {
        try {
          const data = await runProcedure(called[index]!, {
            ctx,
            path,
            type,
            getRawInput: async () => inputOf(index),
            batchIndex: index,
          })
          statuses.add(200)
          return { result: { data } }
        } catch (cause) {
          const error = getTRPCErrorFromUnknown(cause)
          options.onError(error, path)
          const shape = getTRPCErrorShape({ config, ctx, error, input: inputOf(index), path, type })
          const status = shape.data?.httpStatus
          statuses.add(typeof status === 'number' ? status : getHTTPStatusCodeFromError(error))
          return { error: shape }
        }
      }),
    )

    const body = isBatch ? answers : answers[0]
    return {
      status: statuses.size === 1 ? [...statuses][0] : 207,
      headers: {
        vary: 'trpc-accept, accept',
        'content-type': 'application/json',
        ...Object.fromEntries(responseHeaders),
      },
      body: JSON.stringify(transformTRPCResponse(config, body as never)),
    }
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isStreamRequest(request: HttpRequest): boolean {
  if (request.header('trpc-accept') !== null) return true
  return (request.header('accept') ?? '').split(',').some((type) => type.trim() === 'application/jsonl')
}

function isJson(contentType: string | null): boolean {
  return contentType !== null && contentType.split(';')[0].trim().toLowerCase() === 'application/json'
}
