/**
 * The parts of tRPC that are not its public API and that the fast path reads, checked on a live
 * router. README.md beside this file lists them and says what to do when this check fails.
 *
 * `trpcInternalsMismatches` answers every difference between a router and that shape: the
 * procedure runner and the /trpc fast path check once, when they are created, and step aside
 * for tRPC's own code if there is any; test/api/trpc-internals.test.ts fails on any.
 */
import type { AnyTRPCProcedure, AnyTRPCRouter, TRPCRootConfig } from '@trpc/server'

export const INTERNALS_CHANGED =
  'tRPC internals changed: src/api/trpc-fast-path/README.md says what to check before upgrading'

// The fields tRPC's own types still declare; a release that drops one fails `npm run check` here.
type Declares<T, K extends PropertyKey> = [K] extends [keyof T] ? true : never
const declared: [
  Declares<AnyTRPCRouter['_def'], '_config' | 'procedures' | 'lazy'>,
  Declares<AnyTRPCProcedure['_def'], 'type' | 'meta' | 'inputs' | 'experimental_caller'>,
  // biome-ignore lint/suspicious/noExplicitAny: any root types, as tRPC's own AnyRouter has
  Declares<TRPCRootConfig<any>, 'isDev' | 'errorFormatter' | 'transformer'>,
] = [true, true, true]
void declared

const PROCEDURE_TYPES: readonly unknown[] = ['query', 'mutation', 'subscription']

type Fields = Record<string, unknown>
const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null
const isFunction = (value: unknown): value is ((...args: never[]) => unknown) & Fields =>
  typeof value === 'function'

/** Every way `router` differs from what the fast path reads; empty when it can run. */
export function trpcInternalsMismatches(router: unknown): string[] {
  const def = isObject(router) ? router._def : undefined
  if (!isObject(def)) return ['router._def is not an object']
  const problems: string[] = []
  const config = def._config
  if (!isObject(config)) {
    problems.push('router._def._config is not an object')
  } else {
    if (typeof config.isDev !== 'boolean') problems.push('router._def._config.isDev is not a boolean')
    if (!isFunction(config.errorFormatter))
      problems.push('router._def._config.errorFormatter is not a function')
    const output = isObject(config.transformer) ? config.transformer.output : undefined
    if (!isObject(output) || !isFunction(output.serialize))
      problems.push('router._def._config.transformer.output.serialize is not a function')
  }
  // Lazy routers load into the original router's record, where the runner's copy never looks.
  if (def.lazy !== undefined && !(isObject(def.lazy) && Object.keys(def.lazy).length === 0))
    problems.push('router._def.lazy is not an empty object (lazy routers are not supported)')
  if (!isObject(def.procedures)) {
    problems.push('router._def.procedures is not an object')
    return problems
  }
  const paths = Object.keys(def.procedures)
  if (paths.length === 0) problems.push('router._def.procedures is empty')
  for (const path of paths) problems.push(...procedureMismatches(path, def.procedures[path]))
  return problems
}

function procedureMismatches(path: string, procedure: unknown): string[] {
  const at = `procedure ${path}:`
  if (!isFunction(procedure)) return [`${at} not a function`]
  const def = procedure._def
  if (!isObject(def)) return [`${at} _def is not an object`]
  const problems: string[] = []
  if (!PROCEDURE_TYPES.includes(def.type)) problems.push(`${at} _def.type is ${String(def.type)}`)
  if (def.meta !== undefined && !isObject(def.meta)) problems.push(`${at} _def.meta is not an object`)
  // A procedure built with `experimental_caller` is called through its own caller, not the chain.
  if (def.caller !== undefined || def.experimental_caller === true)
    problems.push(`${at} has its own caller (_def.caller, experimental_caller)`)
  const { middlewares, inputs, output } = def
  if (!Array.isArray(middlewares) || middlewares.length === 0 || !middlewares.every(isFunction)) {
    problems.push(`${at} _def.middlewares is not a non-empty array of functions`)
    return problems
  }
  const marked = (type: string): number => middlewares.filter((m) => m._type === type).length
  // The runner replaces the one middleware marked 'output' by a parse with `_def.output`.
  const outputs = marked('output')
  if (output === undefined) {
    if (outputs !== 0) problems.push(`${at} ${outputs} middlewares marked _type 'output' but no _def.output`)
  } else {
    if (outputs !== 1) problems.push(`${at} ${outputs} middlewares marked _type 'output', not 1`)
    if (!isObject(output) || !isFunction(output.parse) || !isFunction(output.parseAsync))
      problems.push(`${at} _def.output has no parse and parseAsync (not a zod schema)`)
  }
  // Not read by the runner, but marked the same way: a canary for the `_type` marks.
  if (!Array.isArray(inputs)) problems.push(`${at} _def.inputs is not an array`)
  else if (marked('input') !== inputs.length)
    problems.push(`${at} ${marked('input')} middlewares marked _type 'input' for ${inputs.length} inputs`)
  return problems
}
