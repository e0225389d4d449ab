/**
 * The tRPC internals the fast path reads (src/api/trpc-fast-path/README.md), asserted on a real
 * router built from the project's own procedures and on appRouter, so an upgrade that changes
 * them fails here with a message saying where to look; and what the service does if it runs
 * with such a change anyway: tRPC's own code answers, with the same results.
 */
import { readFileSync } from 'node:fs'
import { experimental_lazy as lazy } from '@trpc/server'
import { fetchRequestHandler } from '@trpc/server/adapters/fetch'
import type { OpenApiMeta } from 'trpc-to-openapi'
import { describe, expect, it } from 'vitest'
import type { HttpRequest } from '../../src/api/http.ts'
import { appRouter } from '../../src/api/router.ts'
import { Message, PasswordResetRequest } from '../../src/api/schemas.ts'
import { type Context, limitedProcedure, publicProcedure, router, userProcedure } from '../../src/api/trpc.ts'
import { INTERNALS_CHANGED, trpcInternalsMismatches } from '../../src/api/trpc-fast-path/internals.ts'
import { type CallOptions, createProcedureRunner } from '../../src/api/trpc-fast-path/procedure-runner.ts'
import { createTrpcHttp } from '../../src/api/trpc-fast-path/trpc-http.ts'

const CHANGED = INTERNALS_CHANGED

const meta: OpenApiMeta = { openapi: { method: 'POST', path: '/probe', tags: ['probe'] } }
const probe = router({
  withOutput: limitedProcedure
    .meta(meta)
    .input(PasswordResetRequest)
    .output(Message)
    .mutation(({ input }) => ({ message: `sent to ${input.email}` })),
  bare: publicProcedure.query(() => 'bare'),
  authed: userProcedure.query(({ ctx }) => ctx.principal.username),
  nested: router({ deep: publicProcedure.query(() => 1) }),
})

type Middleware = ((options: unknown) => Promise<unknown>) & { _type?: unknown }
type ProcedureDef = {
  type: unknown
  meta: unknown
  middlewares: Middleware[]
  inputs: unknown[]
  output?: unknown
  caller?: unknown
  experimental_caller?: unknown
}
const defOf = (procedure: unknown): ProcedureDef => (procedure as { _def: ProcedureDef })._def

/** Enough of the service's context for the probe's procedures: no rate limit, one known token. */
function contextFor(bearer: string | null = null): Context {
  return {
    runtime: {
      gate: {
        authenticate: async (token: string) =>
          token === 'good' ? { userId: 1, username: 'ann', role: 'user', sessionId: 1 } : null,
      },
    },
    request: {
      rateLimiter: { hit: async () => 0 },
      client: { ip_address: '127.0.0.1', user_agent: null },
      bearer,
      header: () => null,
      responseHeaders: new Map(),
    },
  } as unknown as Context
}

describe('the tRPC internals the fast path reads', () => {
  it("a router's _def: flat dotted procedures, no lazy routers, the root config", () => {
    const def = probe._def as unknown as Record<string, unknown>
    expect(Object.keys(def.procedures as object).sort(), CHANGED).toEqual([
      'authed',
      'bare',
      'nested.deep',
      'withOutput',
    ])
    expect(def.lazy, CHANGED).toEqual({})
    const config = def._config as Record<string, unknown>
    expect(typeof config, CHANGED).toBe('object')
    expect(config.isDev, CHANGED).toBe(false)
    expect(typeof config.errorFormatter, CHANGED).toBe('function')
    const transformer = config.transformer as { output?: { serialize?: unknown } }
    expect(typeof transformer?.output?.serialize, CHANGED).toBe('function')
  })

  it("a procedure's _def: type, meta, middlewares in order with input and output marked", () => {
    const procedure = probe._def.procedures.withOutput
    expect(typeof procedure, CHANGED).toBe('function')
    const def = defOf(procedure)
    expect(def.type, CHANGED).toBe('mutation')
    expect(def.meta, CHANGED).toEqual(meta)
    expect(def.output, CHANGED).toBe(Message)
    expect(def.inputs, CHANGED).toEqual([PasswordResetRequest])
    expect(def.caller, CHANGED).toBeUndefined()
    expect(def.experimental_caller, CHANGED).not.toBe(true)
    expect(Array.isArray(def.middlewares), CHANGED).toBe(true)
    expect(
      def.middlewares.map((m) => typeof m),
      CHANGED,
    ).toEqual(def.middlewares.map(() => 'function'))
    // limitedProcedure: domain errors, rate limit; then .input, .output, and the resolver last.
    expect(
      def.middlewares.map((m) => m._type ?? null),
      CHANGED,
    ).toEqual([null, null, 'input', 'output', null])
  })

  it('a procedure without input or output: no marks, no _def.output, meta undefined', () => {
    const def = defOf(probe._def.procedures.bare)
    expect(def.type, CHANGED).toBe('query')
    expect(def.meta, CHANGED).toBeUndefined()
    expect('output' in def && def.output !== undefined, CHANGED).toBe(false)
    expect(def.inputs, CHANGED).toEqual([])
    expect(
      def.middlewares.map((m) => m._type ?? null),
      CHANGED,
    ).toEqual([null, null])
  })

  it('the resolver middleware answers { marker, ok, data, ctx }', async () => {
    const { middlewares } = defOf(probe._def.procedures.bare)
    const ctx = contextFor()
    const result = await middlewares[middlewares.length - 1]({
      ctx,
      type: 'query',
      path: 'bare',
      input: undefined,
      getRawInput: async () => undefined,
      meta: undefined,
      signal: undefined,
      batchIndex: 0,
      next: () => {
        throw new Error('the resolver calls no next')
      },
    })
    expect(result, CHANGED).toEqual({ marker: expect.any(String), ok: true, data: 'bare', ctx })
  })

  it('the check finds nothing to report on the probe router and on appRouter', () => {
    expect(trpcInternalsMismatches(probe), CHANGED).toEqual([])
    expect(trpcInternalsMismatches(appRouter), CHANGED).toEqual([])
  })

  it('@trpc/server and @trpc/client are pinned to the installed version', () => {
    const manifest = (path: string) => JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8'))
    const dependencies = manifest('../../package.json').dependencies as Record<string, string>
    const installed = manifest('../../node_modules/@trpc/server/package.json').version as string
    const pinned = 'the fast path reads tRPC internals: pin @trpc/server and @trpc/client exactly'
    expect(dependencies['@trpc/server'], pinned).toBe(installed)
    expect(dependencies['@trpc/client'], pinned).toBe(installed)
  })
})

/** The probe router with the output middleware's `_type` mark gone, as a changed tRPC might. */
function withoutOutputMark(): typeof probe {
  const original = probe._def.procedures.withOutput
  const def = defOf(original)
  const middlewares = def.middlewares.map((m) =>
    m._type === 'output' ? (options: unknown) => m(options) : m,
  )
  const changed = Object.assign((options: unknown) => (original as (o: unknown) => unknown)(options), {
    _def: { ...def, middlewares },
  })
  return {
    ...probe,
    _def: { ...probe._def, procedures: { ...probe._def.procedures, withOutput: changed } },
  } as unknown as typeof probe
}

const withLazy = router({
  bare: publicProcedure.query(() => 'bare'),
  later: lazy(async () => router({ deep: publicProcedure.query(() => 'loaded') })),
})

const call = (path: string, type: 'query' | 'mutation', input: unknown, bearer: string | null = null) =>
  ({ ctx: contextFor(bearer), path, type, getRawInput: async () => input }) satisfies CallOptions

async function settle(promise: Promise<unknown>) {
  try {
    return { ok: true, data: await promise }
  } catch (error) {
    const e = error as { code?: string; message: string }
    return { ok: false, code: e.code, message: e.message }
  }
}

describe('when the internals differ: tRPC runs the calls', () => {
  it('names what differs: an unmarked output middleware, a lazy router', () => {
    expect(trpcInternalsMismatches(withoutOutputMark())).toEqual([
      "procedure withOutput: 0 middlewares marked _type 'output', not 1",
    ])
    expect(trpcInternalsMismatches(withLazy)).toEqual([
      'router._def.lazy is not an empty object (lazy routers are not supported)',
    ])
  })

  it('the runner falls back to callTRPCProcedure, with the same answers', async () => {
    const fast = createProcedureRunner(probe, () => {
      throw new Error('no fallback expected')
    })
    expect(fast.fast).toBe(true)
    const heard: string[][] = []
    const changed = withoutOutputMark()
    const slow = createProcedureRunner(changed, (problems) => heard.push(problems))
    expect(slow.fast).toBe(false)
    expect(slow.router).toBe(changed)
    expect(heard).toEqual([["procedure withOutput: 0 middlewares marked _type 'output', not 1"]])

    const calls: [string, 'query' | 'mutation', unknown, string | null][] = [
      ['withOutput', 'mutation', { email: 'ann@example.com' }, null],
      ['withOutput', 'mutation', { email: 'not an email' }, null],
      ['authed', 'query', undefined, 'good'],
      ['authed', 'query', undefined, null],
      ['nested.deep', 'query', undefined, null],
    ]
    for (const [path, type, input, bearer] of calls) {
      const viaRunner = await settle(fast.procedure(path)(call(path, type, input, bearer)))
      const viaTrpc = await settle(slow.procedure(path)(call(path, type, input, bearer)))
      expect(viaTrpc, path).toEqual(viaRunner)
    }
    expect(
      await settle(fast.procedure('withOutput')(call('withOutput', 'mutation', { email: 'a@b.co' }))),
    ).toEqual({ ok: true, data: { message: 'sent to a@b.co' } })
  })

  it('a lazy router runs on tRPC, which loads it', async () => {
    const runner = createProcedureRunner(withLazy, () => {})
    expect(runner.fast).toBe(false)
    expect(await runner.procedure('later.deep')(call('later.deep', 'query', undefined))).toBe('loaded')
  })

  it('/trpc leaves every request to tRPC, which answers it', async () => {
    const changed = withoutOutputMark()
    const request: HttpRequest = {
      method: 'POST',
      target: '/trpc/withOutput',
      header: (name) => (name === 'content-type' ? 'application/json' : null),
      headerPairs: () => [['content-type', 'application/json']],
      body: new TextEncoder().encode(JSON.stringify({ email: 'ann@example.com' })),
      remoteAddress: '127.0.0.1',
    }
    const options = { endpoint: '/trpc', maxBatchSize: 5, createContext: () => contextFor(), onError() {} }
    const fast = createTrpcHttp({ ...options, router: probe })
    expect(await fast(request, '/trpc/withOutput', '')).toMatchObject({ status: 200 })
    const stepsAside = createTrpcHttp({ ...options, router: changed })
    expect(await stepsAside(request, '/trpc/withOutput', '')).toBeNull()
    const response = await fetchRequestHandler({
      endpoint: '/trpc',
      req: new Request('http://localhost/trpc/withOutput', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'ann@example.com' }),
      }),
      router: changed,
      createContext: () => contextFor(),
    })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ result: { data: { message: 'sent to ann@example.com' } } })
  })
})
