import { TRPCError } from '@trpc/server'
import * as z from 'zod'
import { publicProcedure, router, userProcedure } from '../trpc.ts'

export const VERSION = '0.1.0'

const Jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).meta({ id: 'JWKS' })

export const systemRouter = router({
  root: publicProcedure
    .meta({ openapi: { method: 'GET', path: '/', tags: ['system'], summary: 'Service information' } })
    .output(z.object({ message: z.string(), version: z.string(), docs: z.string() }))
    .query(() => ({ message: 'Auth Service', version: VERSION, docs: '/docs' })),

  protected: userProcedure
    .meta({ openapi: { method: 'GET', path: '/protected', tags: ['system'], protect: true } })
    .output(z.object({ message: z.string(), user_id: z.number().int(), role: z.string() }))
    .query(({ ctx }) => ({
      message: `Hello, ${ctx.principal.username}`,
      user_id: ctx.principal.userId,
      role: ctx.principal.role,
    })),

  jwks: publicProcedure
    .meta({ openapi: { method: 'GET', path: '/.well-known/jwks.json', tags: ['system'] } })
    .output(Jwks)
    .query(({ ctx }) => ctx.runtime.signingKeys.jwks() as { keys: Record<string, unknown>[] }),

  healthz: publicProcedure
    .meta({ openapi: { method: 'GET', path: '/healthz', tags: ['system'], summary: 'Liveness' } })
    .output(z.object({ status: z.literal('ok') }))
    .query(() => ({ status: 'ok' as const })),

  readyz: publicProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/readyz',
        tags: ['system'],
        summary: 'Readiness: store reachable, projections caught up',
      },
    })
    // No position here: watching a public global position move would tell whether a failed
    // login or a reset request hit a real account. It is in /metrics (behind METRICS_TOKEN).
    .output(z.object({ status: z.literal('ready') }))
    .query(async ({ ctx }) => {
      const { runner } = ctx.runtime
      if (runner.failure !== null) {
        throw new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'Projections stopped' })
      }
      // Store reachable: a cheap read (PostgreSQL or EventStoreDB may be down while we run).
      await ctx.runtime.store.headPosition().catch(() => {
        throw new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'The event store is unavailable' })
      })
      return { status: 'ready' as const }
    }),
})
