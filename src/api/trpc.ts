/** One initTRPC, base procedures by role, named middleware. */
import { initTRPC, TRPCError } from '@trpc/server'
import type { OpenApiMeta } from 'trpc-to-openapi'
import { DomainError } from '../../domain/errors.ts'
import type { Role } from '../../domain/event.ts'
import type { Principal } from '../app/access-gate.ts'
import type { Runtime } from '../app/runtime.ts'
import { RateLimited, transport } from './errors.ts'
import type { RateLimiter } from './rate-limit.ts'

export type Context = {
  runtime: Runtime
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

const mapDomainErrors = t.middleware(async function mapDomainErrors({ next }) {
  const result = await next()
  if (!result.ok && result.error.cause instanceof DomainError) {
    const cause = result.error.cause
    throw new TRPCError({ code: transport[cause.code].trpc, message: cause.message, cause })
  }
  return result
})

export const publicProcedure = t.procedure.use(mapDomainErrors)

/** Public routes that hand out tokens or send mail are limited per client address. */
export const limitedProcedure = publicProcedure.use(async function rateLimit({ ctx, path, next }) {
  const wait = ctx.rateLimiter.hit(ctx.client.ip_address ?? 'unknown', path)
  if (wait > 0) {
    ctx.responseHeaders.set('retry-after', String(wait))
    throw new TRPCError({
      code: 'TOO_MANY_REQUESTS',
      message: 'Too many requests',
      cause: new RateLimited(wait),
    })
  }
  return next()
})

export const notAuthenticated = (): TRPCError =>
  new TRPCError({ code: 'UNAUTHORIZED', message: 'Could not validate credentials' })

export const userProcedure = publicProcedure.use(async function requireUser({ ctx, next }) {
  const principal: Principal | null = ctx.bearer ? await ctx.runtime.gate.authenticate(ctx.bearer) : null
  if (!principal) throw notAuthenticated()
  return next({ ctx: { principal } })
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
