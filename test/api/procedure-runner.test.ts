/**
 * The REST adapter runs procedures with its own middleware runner; /trpc runs them with tRPC's.
 * Both must give the same output, the same error and the same context to every procedure.
 */
import type { TRPCError } from '@trpc/server'
import { fetchRequestHandler } from '@trpc/server/adapters/fetch'
import { describe, expect, it } from 'vitest'
import {
  type RunnableProcedure,
  runProcedure,
  withProcedureRunner,
} from '../../src/api/trpc-fast-path/procedure-runner.ts'
import { type Ctx, router, t } from './fixture-router.ts'

type Outcome = { ok: true; data: unknown; seen: string[] } | { ok: false; error: object; seen: string[] }

async function settle(run: (ctx: Ctx) => Promise<unknown>, user: string | null): Promise<Outcome> {
  const ctx: Ctx = { user, seen: [] }
  try {
    return { ok: true, data: await run(ctx), seen: ctx.seen }
  } catch (error) {
    const e = error as TRPCError
    return {
      ok: false,
      error: { type: e.constructor.name, code: e.code, message: e.message, cause: e.cause?.message },
      seen: ctx.seen,
    }
  }
}

const procedures = router._def.procedures as unknown as Record<
  string,
  RunnableProcedure & { _def: { type: 'query' | 'mutation' } }
>

async function both(path: keyof typeof procedures & string, input: unknown, user: string | null) {
  const viaTrpc = await settle(
    (ctx) =>
      (t.createCallerFactory(router)(ctx) as unknown as Record<string, (i: unknown) => Promise<unknown>>)[
        path
      ](input),
    user,
  )
  const procedure = procedures[path]
  const viaRunner = await settle(
    (ctx) =>
      runProcedure(procedure, { ctx, path, type: procedure._def.type, getRawInput: async () => input }),
    user,
  )
  return { viaTrpc, viaRunner }
}

describe('runProcedure', () => {
  const cases: [string, keyof typeof procedures & string, unknown, string | null][] = [
    ['output through every middleware, extra keys stripped', 'greet', { name: 'bob' }, 'ann'],
    ['a middleware refusing the caller', 'greet', { name: 'bob' }, null],
    ['input validation failure', 'greet', { name: 'b' }, 'ann'],
    ['missing input', 'greet', undefined, 'ann'],
    ['a mutation', 'rename', { name: 'new' }, 'ann'],
    ['a TRPCError from the resolver', 'rename', { name: 'taken' }, 'ann'],
    ['an unexpected error from the resolver', 'rename', { name: 'crash' }, 'ann'],
    ['output validation failure', 'leaky', undefined, 'ann'],
    ['a middleware replacing the input', 'swapInput', { name: 'given' }, null],
    ['an output schema that needs async parsing', 'asyncOutput', 1, null],
    ['an async output check failing', 'asyncOutput', -1, null],
  ]

  for (const [name, path, input, user] of cases) {
    it(`matches tRPC's own caller: ${name}`, async () => {
      const { viaTrpc, viaRunner } = await both(path, input, user)
      expect(viaRunner).toEqual(viaTrpc)
    })
  }

  it('really runs the procedures (the cases above are not all alike)', async () => {
    const outcomes = await Promise.all(cases.map(([, path, input, user]) => both(path, input, user)))
    const runner = outcomes.map((o) => o.viaRunner)
    expect(runner[0]).toEqual({ ok: true, data: { text: 'ANN greets bob' }, seen: ['query greet', 'ok'] })
    expect(runner[1]).toMatchObject({ ok: false, error: { code: 'UNAUTHORIZED', message: 'who are you' } })
    expect(runner[2]).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } })
    expect(runner[5]).toMatchObject({
      ok: false,
      error: { code: 'CONFLICT' },
      seen: ['mutation rename', 'failed CONFLICT'],
    })
    expect(runner[6]).toMatchObject({
      ok: false,
      error: { code: 'INTERNAL_SERVER_ERROR', message: 'disk on fire' },
    })
    expect(runner[7]).toMatchObject({
      ok: false,
      error: { code: 'INTERNAL_SERVER_ERROR', message: 'Output validation failed' },
    })
    expect(runner[8]).toEqual({ ok: true, data: 'swapped', seen: [] })
    expect(runner[9]).toEqual({ ok: true, data: { n: 1 }, seen: [] })
    expect(runner[10]).toMatchObject({ ok: false, error: { message: 'Output validation failed' } })
  })
})

describe('withProcedureRunner', () => {
  const viaRunner = withProcedureRunner(router)

  async function answer(
    usedRouter: typeof router,
    path: string,
    init?: RequestInit,
    user: string | null = 'ann',
  ) {
    const response = await fetchRequestHandler({
      endpoint: '/trpc',
      req: new Request(`http://localhost/trpc/${path}`, init),
      router: usedRouter,
      createContext: () => ({ user, seen: [] }),
    })
    return { status: response.status, body: await response.json() }
  }

  const input = (value: unknown) => encodeURIComponent(JSON.stringify(value))
  const post = (body: unknown): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const requests: [string, string, RequestInit?, (string | null)?][] = [
    ['a query', `greet?input=${input({ name: 'bob' })}`],
    ['a batch with one failure', `greet,leaky?batch=1&input=${input({ 0: { name: 'bob' } })}`],
    ['a mutation', 'rename', post({ name: 'new' })],
    ['a refused caller', `greet?input=${input({ name: 'bob' })}`, undefined, null],
    ['invalid input', `greet?input=${input({ name: 'b' })}`],
    ['a query sent as POST', 'greet', post({ name: 'bob' })],
    ['an unknown procedure', 'nothing'],
  ]

  for (const [name, path, init, user] of requests) {
    it(`answers /trpc like the original router: ${name}`, async () => {
      const expected = await answer(router, path, init, user)
      const actual = await answer(viaRunner, path, init, user)
      expect(actual).toEqual(expected)
    })
  }

  it('calls the procedures through the runner, not through tRPC', async () => {
    const procedure = viaRunner._def.procedures.greet as unknown as { _def: unknown }
    expect(procedure).not.toBe(router._def.procedures.greet)
    expect(procedure._def).toBe((router._def.procedures.greet as unknown as { _def: unknown })._def)
    expect((await answer(viaRunner, `greet?input=${input({ name: 'bob' })}`)).body).toEqual({
      result: { data: { text: 'ANN greets bob' } },
    })
  })
})
