/** A small tRPC router whose procedures cover what the runners must agree on. */
import { initTRPC, TRPCError } from '@trpc/server'
import * as z from 'zod'

export type Ctx = {
  user: string | null
  seen: string[]
  responseHeaders?: { set(name: string, value: string): unknown }
}
export const t = initTRPC.context<Ctx>().create({ isDev: false })
const authed = t.procedure.use(async ({ ctx, next }) => {
  if (!ctx.user) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'who are you' })
  return next({ ctx: { principal: ctx.user.toUpperCase() } })
})
const traced = authed.use(async ({ ctx, path, type, next }) => {
  ctx.seen.push(`${type} ${path}`)
  const result = await next()
  ctx.seen.push(result.ok ? 'ok' : `failed ${result.error.code}`)
  return result
})

export const router = t.router({
  greet: traced
    .input(z.object({ name: z.string().min(2) }))
    .output(z.object({ text: z.string() }))
    .query(({ ctx, input }) => ({ text: `${ctx.principal} greets ${input.name}`, extra: 'stripped' })),
  rename: traced.input(z.object({ name: z.string() })).mutation(({ input }) => {
    if (input.name === 'taken') throw new TRPCError({ code: 'CONFLICT', message: 'name taken' })
    if (input.name === 'crash') throw new Error('disk on fire')
    return { renamed: input.name }
  }),
  leaky: authed.output(z.object({ id: z.number() })).query(() => ({ id: 'not a number' }) as never),
  asyncOutput: t.procedure
    .input(z.number())
    .output(z.object({ n: z.number() }).refine(async (value) => value.n > 0, 'not positive'))
    .query(({ input }) => ({ n: input })),
  slowDown: t.procedure.query(({ ctx }) => {
    ctx.responseHeaders?.set('retry-after', '7')
    return 'later'
  }),
  swapInput: t.procedure
    .use(({ next }) => next({ getRawInput: async () => ({ name: 'swapped' }) }))
    .input(z.object({ name: z.string() }))
    .query(({ input }) => input.name),
})
