/** One initTRPC, base procedures by role, named middleware. */
import { initTRPC, TRPCError } from '@trpc/server'
import type { OpenApiMeta } from 'trpc-to-openapi'
import { DomainError } from '../../domain/errors.ts'
import type { Role } from '../../domain/event.ts'
import type { Principal } from '../app/access-gate.ts'
import type { Runtime } from '../app/runtime.ts'
import { EventStoreUnavailableError } from '../eventstore/event-store.ts'
import { RateLimited, transport } from './errors.ts'
import type { RateLimiter } from './rate-limit.ts'

/**
 * Two keys only: tRPC copies the context object at every middleware step, and on the token-check
 * path that copying cost more than the check itself.
 */
export type Context = { runtime: Runtime; request: RequestContext }

export type RequestContext = {
  rateLimiter: RateLimiter
  client: { ip_address: string | null; user_agent: string | null }
  /** The bearer token, if any; checked only by procedures that need a caller. */
  bearer: string | null
  header: (name: string) => string | null
  responseHeaders: ResponseHeaders
}

/** Headers a procedure adds to its answer (tRPC's `Headers` over /trpc, a Map over REST). */
export type ResponseHeaders = { set(name: string, value: string): unknown }

const t = initTRPC
  .context<Context>()
  .meta<OpenApiMeta>()
  .create({
    isDev: false,
    errorFormatter({ shape }) {
      // No stack trace ever leaves the server.
      const { stack: _stack, ...data } = shape.data
      return { ...shape, data }
    },
  })

export const router = t.router
export const mergeRouters = t.mergeRouters
export const createCallerFactory = t.createCallerFactory

/** Domain errors become the tRPC code of the transport table (the REST adapter reads the cause). */
/** What a client is told while the store cannot be reached (503, Retry-After: 1). */
export const STORE_UNAVAILABLE = 'The event store is unavailable; retry shortly'

function rethrowDomainError<T extends { ok: boolean; error?: { cause?: unknown } }>(result: T): T {
  const cause = result.ok ? undefined : result.error?.cause
  if (cause instanceof EventStoreUnavailableError) {
    throw new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: STORE_UNAVAILABLE, cause })
  }
  if (cause instanceof DomainError) {
    throw new TRPCError({ code: transport[cause.code].trpc, message: cause.message, cause })
  }
  return result
}

const mapDomainErrors = t.middleware(async function mapDomainErrors({ next }) {
  return rethrowDomainError(await next())
})

export const publicProcedure = t.procedure.use(mapDomainErrors)

/** Counts a hit of this route for each key; 429 with Retry-After (the longest wait) if one is over. */
export async function enforceRateLimit(request: RequestContext, path: string, keys: string[]): Promise<void> {
  let wait = 0
  for (const key of keys) wait = Math.max(wait, await request.rateLimiter.hit(key, path))
  if (wait > 0) {
    request.responseHeaders.set('retry-after', String(wait))
    throw new TRPCError({
      code: 'TOO_MANY_REQUESTS',
      message: 'Too many requests',
      cause: new RateLimited(wait),
    })
  }
}

export const clientKey = (request: RequestContext): string => request.client.ip_address ?? 'unknown'

/** Public routes that hand out tokens or send mail are limited per client address. */
export const limitedProcedure = publicProcedure.use(async function rateLimit({ ctx, path, next }) {
  await enforceRateLimit(ctx.request, path, [clientKey(ctx.request)])
  return next()
})

export const notAuthenticated = (): TRPCError =>
  new TRPCError({ code: 'UNAUTHORIZED', message: 'Could not validate credentials' })

/** One middleware on the hot path: authenticate, then map domain errors like publicProcedure. */
export const userProcedure = t.procedure.use(async function requireUser({ ctx, next }) {
  const { bearer } = ctx.request
  const principal: Principal | null = bearer ? await ctx.runtime.gate.authenticate(bearer) : null
  if (!principal) throw notAuthenticated()
  return rethrowDomainError(await next({ ctx: { principal } }))
})

function requireRole(...roles: Role[]) {
  return userProcedure.use(async function requireRole({ ctx, next }) {
    if (!roles.includes(ctx.principal.role)) {
      throw new TRPCError({ code: 'FORBIDDEN', message: 'Not enough privileges' })
    }
    return next()
  })
}

export const adminProcedure = requireRole('admin')
export const auditProcedure = requireRole('admin', 'auditor')
