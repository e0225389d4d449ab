/**
 * /trpc's own handler for common calls against tRPC's fetch handler: the same status, body and
 * headers for every call it takes, and null (tRPC answers) for every call it leaves alone.
 */
import { fetchRequestHandler } from '@trpc/server/adapters/fetch'
import { describe, expect, it } from 'vitest'
import { type HttpRequest, toWebRequest } from '../../src/api/http.ts'
import { withProcedureRunner } from '../../src/api/trpc-fast-path/procedure-runner.ts'
import { createTrpcHttp } from '../../src/api/trpc-fast-path/trpc-http.ts'
import { type Ctx, router } from './fixture-router.ts'

const served = withProcedureRunner(router)
const contextFor = (request: HttpRequest, responseHeaders: Ctx['responseHeaders']): Ctx => ({
  user: request.header('x-user'),
  seen: [],
  responseHeaders,
})
const failures: string[] = []
const trpcHttp = createTrpcHttp({
  router: served,
  endpoint: '/trpc',
  maxBatchSize: 3,
  createContext: contextFor,
  onError: (error, path) => failures.push(`${path}: ${error.code}`),
})

function httpRequest(
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: string,
): HttpRequest {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]))
  return {
    method,
    target,
    header: (name) => lower[name] ?? null,
    headerPairs: () => Object.entries(lower),
    body: body === undefined ? null : new TextEncoder().encode(body),
    remoteAddress: '127.0.0.1',
  }
}

async function viaFastPath(request: HttpRequest) {
  const q = request.target.indexOf('?')
  const pathname = q < 0 ? request.target : request.target.slice(0, q)
  const answer = await trpcHttp(request, pathname, q < 0 ? '' : request.target.slice(q + 1))
  if (!answer) return null
  const headers = Object.fromEntries(Object.entries(answer.headers).map(([k, v]) => [k.toLowerCase(), v]))
  return { status: answer.status, headers, body: JSON.parse(String(answer.body)) }
}

async function viaTrpc(request: HttpRequest) {
  const response = await fetchRequestHandler({
    endpoint: '/trpc',
    req: toWebRequest(request),
    router: served,
    createContext: ({ resHeaders }) => contextFor(request, resHeaders),
  })
  const headers: Record<string, string> = {}
  response.headers.forEach((value, name) => {
    headers[name] = value
  })
  return { status: response.status, headers, body: await response.json() }
}

const input = (value: unknown) => encodeURIComponent(JSON.stringify(value))
const json = { 'content-type': 'application/json' }
const ann = { 'x-user': 'ann' }

describe('/trpc calls answered without tRPC’s fetch handler', () => {
  const taken: [string, HttpRequest][] = [
    ['a query', httpRequest('GET', `/trpc/greet?input=${input({ name: 'bob' })}`, ann)],
    ['a query without input', httpRequest('GET', '/trpc/slowDown')],
    ['a refused caller', httpRequest('GET', `/trpc/greet?input=${input({ name: 'bob' })}`)],
    ['invalid input', httpRequest('GET', `/trpc/greet?input=${input({ name: 'b' })}`, ann)],
    ['a failed output check', httpRequest('GET', '/trpc/leaky', ann)],
    ['a batch of one', httpRequest('GET', `/trpc/greet?batch=1&input=${input({ 0: { name: 'bob' } })}`, ann)],
    [
      'a batch with mixed outcomes (207)',
      httpRequest('GET', `/trpc/greet,leaky,slowDown?batch=1&input=${input({ 0: { name: 'bob' } })}`, ann),
    ],
    [
      'a batch whose calls all fail alike',
      httpRequest('GET', `/trpc/greet,leaky?batch=1&input=${input({})}`),
    ],
    ['a mutation', httpRequest('POST', '/trpc/rename', { ...json, ...ann }, JSON.stringify({ name: 'new' }))],
    [
      'a mutation with a charset',
      httpRequest(
        'POST',
        '/trpc/rename',
        { 'content-type': 'application/json; charset=utf-8', ...ann },
        '{"name":"n"}',
      ),
    ],
    [
      'a conflicting mutation',
      httpRequest('POST', '/trpc/rename', { ...json, ...ann }, JSON.stringify({ name: 'taken' })),
    ],
    [
      'a crashing mutation',
      httpRequest('POST', '/trpc/rename', { ...json, ...ann }, JSON.stringify({ name: 'crash' })),
    ],
    [
      'a batch of mutations',
      httpRequest(
        'POST',
        '/trpc/rename,rename?batch=1',
        { ...json, ...ann },
        JSON.stringify({ 0: { name: 'a' }, 1: { name: 'taken' } }),
      ),
    ],
    ['a mutation without a body', httpRequest('POST', '/trpc/rename', { ...json, ...ann })],
  ]

  for (const [name, request] of taken) {
    it(`answers as tRPC does: ${name}`, async () => {
      const fast = await viaFastPath(request)
      expect(fast, 'the fast path should take this call').not.toBeNull()
      expect(fast).toEqual(await viaTrpc(request))
    })
  }

  it('passes the headers a procedure sets', async () => {
    const fast = await viaFastPath(httpRequest('GET', '/trpc/slowDown'))
    expect(fast?.headers['retry-after']).toBe('7')
    expect(fast?.body).toEqual({ result: { data: 'later' } })
  })

  it('reports failures as tRPC’s onError would', async () => {
    failures.length = 0
    await viaFastPath(
      httpRequest('POST', '/trpc/rename', { ...json, ...ann }, JSON.stringify({ name: 'crash' })),
    )
    expect(failures).toEqual(['rename: INTERNAL_SERVER_ERROR'])
  })

  const leftToTrpc: [string, HttpRequest][] = [
    ['an unknown procedure', httpRequest('GET', '/trpc/nothing')],
    ['the endpoint itself', httpRequest('GET', '/trpc')],
    ['a query sent as POST', httpRequest('POST', '/trpc/greet', json, '{"name":"bob"}')],
    ['a mutation sent as GET', httpRequest('GET', '/trpc/rename')],
    ['a batch mixing a query with an unknown path', httpRequest('GET', '/trpc/greet,nothing?batch=1')],
    ['input that is not JSON', httpRequest('GET', '/trpc/greet?input=%7Bnope', ann)],
    ['a batch input that is not an object', httpRequest('GET', `/trpc/greet?batch=1&input=${input(3)}`, ann)],
    [
      'a batch input that is an array',
      httpRequest('GET', `/trpc/greet?batch=1&input=${input([{ name: 'bob' }])}`, ann),
    ],
    [
      'a batch longer than the limit',
      httpRequest('GET', '/trpc/slowDown,slowDown,slowDown,slowDown?batch=1'),
    ],
    ['a batch input of null', httpRequest('GET', `/trpc/greet?batch=1&input=null`, ann)],
    [
      'a streaming batch',
      httpRequest('GET', `/trpc/greet?batch=1&input=${input({})}`, { 'trpc-accept': 'application/jsonl' }),
    ],
    ['an Accept of jsonl', httpRequest('GET', '/trpc/slowDown', { accept: 'application/jsonl' })],
    ['a mutation without a content type', httpRequest('POST', '/trpc/rename', ann, '{"name":"x"}')],
    [
      'a form body',
      httpRequest('POST', '/trpc/rename', { 'content-type': 'application/x-www-form-urlencoded' }, 'name=x'),
    ],
    ['HEAD', httpRequest('HEAD', '/trpc/slowDown')],
    ['a malformed path', httpRequest('GET', '/trpc/%E0%A4%A')],
  ]

  for (const [name, request] of leftToTrpc) {
    it(`leaves to tRPC: ${name}`, async () => {
      expect(await viaFastPath(request)).toBeNull()
    })
  }
})
