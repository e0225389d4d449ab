/**
 * Runs a tRPC procedure's middleware chain — the same middlewares, input parsers, output validators
 * and resolver that /trpc runs — the way tRPC's own `callRecursive` does, for the REST adapter.
 *
 * tRPC's version copies its options at every step, and its output middleware copies the result,
 * with a transpiled object-spread helper that redefines existing keys one `Object.defineProperty`
 * at a time; on GET /protected those copies took two thirds of the handler's CPU, far more than
 * the token check they surround. Here each step builds one plain object literal instead. The
 * semantics are tRPC 11's: `next(opts)` may extend `ctx`, replace `input` or `getRawInput`; a
 * throw anywhere becomes `{ ok: false, error: TRPCError }`; an output that fails its schema is
 * an INTERNAL_SERVER_ERROR "Output validation failed". test/api/procedure-runner.test.ts holds
 * both runners to the same results.
 *
 * It reads tRPC internals (README.md beside this file): `createProcedureRunner` checks their shape
 * once and, if they differ, runs every procedure through tRPC's own `callTRPCProcedure` instead.
 */
import { type AnyTRPCRouter, callTRPCProcedure, getTRPCErrorFromUnknown, TRPCError } from '@trpc/server'
import { trpcInternalsMismatches } from './internals.ts'

type MiddlewareResult =
  | { ok: true; data: unknown; ctx?: unknown; marker: string }
  | { ok: false; error: TRPCError; marker: string }

type NextOptions = { ctx?: Record<string, unknown>; input?: unknown; getRawInput?: () => Promise<unknown> }

type MiddlewareOptions = {
  ctx: Record<string, unknown>
  type: 'query' | 'mutation'
  path: string
  input: unknown
  getRawInput: () => Promise<unknown>
  meta: unknown
  signal: AbortSignal | undefined
  batchIndex: number
  next(options?: NextOptions): Promise<MiddlewareResult>
}

type Middleware = ((options: MiddlewareOptions) => Promise<MiddlewareResult>) & { _type?: string }

/** The parts of a tRPC procedure the runner reads: its middleware chain, meta and output schema. */
export type RunnableProcedure = {
  _def: { middlewares: Middleware[]; meta?: unknown; output?: OutputSchema }
}

/** A zod schema, as every procedure's output here is. */
type OutputSchema = { parse(value: unknown): unknown; parseAsync(value: unknown): Promise<unknown> }

export type CallOptions = {
  ctx: object
  path: string
  type: 'query' | 'mutation'
  getRawInput: () => Promise<unknown>
  signal?: AbortSignal
  batchIndex?: number
}

type Step = Omit<MiddlewareOptions, 'meta' | 'next'>

async function callFrom(index: number, procedure: RunnableProcedure, step: Step): Promise<MiddlewareResult> {
  const { middlewares, meta, output } = procedure._def
  const middleware = middlewares[index]
  try {
    if (middleware._type === 'output' && output)
      return await validateOutput(output, callFrom(index + 1, procedure, step))
    return await middleware({
      ctx: step.ctx,
      type: step.type,
      path: step.path,
      input: step.input,
      getRawInput: step.getRawInput,
      meta,
      signal: step.signal,
      batchIndex: step.batchIndex,
      next: (options) =>
        callFrom(index + 1, procedure, {
          ctx: options?.ctx ? { ...step.ctx, ...options.ctx } : step.ctx,
          type: step.type,
          path: step.path,
          input: options && 'input' in options ? options.input : step.input,
          getRawInput: options?.getRawInput ?? step.getRawInput,
          signal: step.signal,
          batchIndex: step.batchIndex,
        }),
    })
  } catch (cause) {
    return { ok: false, error: getTRPCErrorFromUnknown(cause), marker: 'middlewareMarker' }
  }
}

/**
 * tRPC's output middleware, minus its copy of the result: the output parsed by the procedure's
 * schema (synchronously unless the schema needs async), a failure reported as tRPC reports it.
 */
async function validateOutput(
  schema: OutputSchema,
  next: Promise<MiddlewareResult>,
): Promise<MiddlewareResult> {
  const result = await next
  if (!result.ok) return result
  try {
    return { ok: true, data: await parseOutput(schema, result.data), ctx: result.ctx, marker: result.marker }
  } catch (cause) {
    throw new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: 'Output validation failed', cause })
  }
}

function parseOutput(schema: OutputSchema, value: unknown): unknown {
  try {
    return schema.parse(value)
  } catch (error) {
    if (Array.isArray((error as { issues?: unknown }).issues)) throw error
    return schema.parseAsync(value)
  }
}

/** The procedure's output, or its error thrown, exactly as calling the procedure itself would give. */
export async function runProcedure(procedure: RunnableProcedure, options: CallOptions): Promise<unknown> {
  const result = await callFrom(0, procedure, {
    ctx: options.ctx as Record<string, unknown>,
    type: options.type,
    path: options.path,
    input: undefined,
    getRawInput: options.getRawInput,
    signal: options.signal,
    batchIndex: options.batchIndex ?? 0,
  })
  if (!result) {
    throw new TRPCError({
      code: 'INTERNAL_SERVER_ERROR',
      message: 'No result from middlewares - did you forget to `return next()`?',
    })
  }
  if (!result.ok) throw result.error
  return result.data
}

type RouterLike = { _def: { procedures: Record<string, unknown> } }

/** One procedure, ready to call with a context and its raw input. */
export type ProcedureCall = (options: CallOptions) => Promise<unknown>

export type ProcedureRunner<Router> = {
  /** False when tRPC's internals did not have the expected shape: tRPC's own code runs every call. */
  readonly fast: boolean
  /** The router for tRPC's handlers, its procedures run by `runProcedure` when `fast`. */
  readonly router: Router
  /** The procedure at `path` (a key of `router._def.procedures`), as the REST adapter calls it. */
  procedure(path: string): ProcedureCall
}

/**
 * Checks once that `router` has the shape this runner reads. If it has, procedures run through
 * `runProcedure`; if not, `onFallback` hears what differs and every call goes through tRPC's own
 * `callTRPCProcedure` on the router as it is: the same answers, at tRPC's speed.
 */
export function createProcedureRunner<Router extends AnyTRPCRouter>(
  router: Router,
  onFallback: (problems: string[]) => void,
): ProcedureRunner<Router> {
  const problems = trpcInternalsMismatches(router)
  if (problems.length > 0) {
    onFallback(problems)
    return {
      fast: false,
      router,
      procedure: (path) => (options) =>
        callTRPCProcedure({
          router,
          path,
          type: options.type,
          ctx: options.ctx,
          getRawInput: options.getRawInput,
          signal: options.signal,
          batchIndex: options.batchIndex ?? 0,
        }),
    }
  }
  const procedures = router._def.procedures as Record<string, RunnableProcedure>
  return {
    fast: true,
    router: withProcedureRunner(router),
    procedure(path) {
      if (!Object.hasOwn(procedures, path)) throw new Error(`no procedure ${path}`)
      const procedure = procedures[path]
      return (options) => runProcedure(procedure, options)
    },
  }
}

/**
 * The router as tRPC's HTTP handler should see it: the same procedures (type, meta, schemas),
 * each called through `runProcedure`, so /trpc and REST run a procedure the same way.
 */
export function withProcedureRunner<Router extends RouterLike>(router: Router): Router {
  // No prototype: a call to `constructor` or `__proto__` must find no procedure, not Object's.
  const procedures: Record<string, unknown> = Object.create(null)
  for (const [path, procedure] of Object.entries(router._def.procedures)) {
    const runnable = procedure as RunnableProcedure
    procedures[path] = Object.assign((options: CallOptions) => runProcedure(runnable, options), {
      _def: runnable._def,
    })
  }
  return { ...router, _def: { ...router._def, procedures } }
}
