/**
 * Property-based fuzzing of every REST operation of `/openapi.json`, over raw HTTP: wrong
 * types, missing and extra fields, huge and empty strings, odd Unicode, hostile ids and path
 * segments, wrong content types, malformed or oversized bodies, with and without tokens.
 * Property: every answer is a contract-shaped 4xx (or a JSON 200), never a 5xx or a stack
 * trace, and the service stays healthy. Reproduce a failure with FUZZ_SEED=<seed printed>.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { request as httpRequest } from 'node:http'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { newUser, sendRaw } from '../support/e2e.ts'
import { call, startServer } from '../support/server.ts'

const RUNS = Number(process.env.FUZZ_RUNS ?? 25)
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31)
const BOOTSTRAP = 'fuzz-bootstrap-token-0123456789'
const BODY_LIMIT = 64 * 1024

// ---------------------------------------------------------------- the server and its document

const server = await startServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP })
afterAll(async () => {
  await server.close()
})

const user = newUser('fuzzuser')
const admin = newUser('fuzzadmin')
{
  const registered = await call(server.url, 'POST', '/auth/register', { json: user })
  if (registered.status !== 200) throw new Error(`register: ${JSON.stringify(registered.body)}`)
  const created = await call(server.url, 'POST', '/admin/register', {
    json: admin,
    headers: { 'x-bootstrap-token': BOOTSTRAP },
  })
  if (created.status !== 200) throw new Error(`admin register: ${JSON.stringify(created.body)}`)
}
const userToken: string = (
  await call(server.url, 'POST', '/auth/login', {
    form: { username: user.username, password: user.password },
  })
).body.access_token
const adminToken: string = (
  await call(server.url, 'POST', '/admin/login', {
    json: { username: admin.username, password: admin.password },
  })
).body.access_token

type Schema = {
  $ref?: string
  type?: string | string[]
  enum?: unknown[]
  format?: string
  pattern?: string
  minLength?: number
  maxLength?: number
  properties?: Record<string, Schema>
  anyOf?: Schema[]
  oneOf?: Schema[]
}
type Parameter = { in: 'path' | 'query' | 'header'; name: string; schema: Schema }
type OpenApiOperation = {
  operationId: string
  parameters?: Parameter[]
  requestBody?: { content: Record<string, { schema: Schema }> }
  security?: unknown[]
}
type Operation = {
  id: string
  method: string
  path: string
  pathParams: Parameter[]
  queryParams: Parameter[]
  bodyFields: Record<string, Schema> | null
  protected: boolean
}

const documentReply = await call(server.url, 'GET', '/openapi.json')
const document = documentReply.body as {
  paths: Record<string, Record<string, OpenApiOperation>>
  components: { schemas: Record<string, Schema> }
}

function resolve(schema: Schema): Schema {
  if (schema.$ref) return resolve(document.components.schemas[schema.$ref.split('/').pop()!])
  return schema
}

const operations: Operation[] = Object.entries(document.paths ?? {}).flatMap(([path, methods]) =>
  Object.entries(methods).map(([method, op]) => {
    const content = op.requestBody?.content ?? {}
    const bodySchema = Object.values(content)[0]?.schema
    return {
      id: op.operationId,
      method: method.toUpperCase(),
      path,
      pathParams: (op.parameters ?? []).filter((p) => p.in === 'path'),
      queryParams: (op.parameters ?? []).filter((p) => p.in === 'query'),
      bodyFields: bodySchema ? (resolve(bodySchema).properties ?? {}) : null,
      protected: (op.security ?? []).length > 0,
    }
  }),
)

// ---------------------------------------------------------------- raw HTTP

type Answer = { status: number; headers: IncomingHttpHeaders; text: string }
type Sent = {
  method: string
  path: string
  headers: Record<string, string>
  body?: string | Buffer
  chunked?: boolean
}

/** One request on its own connection, with the path, headers and body bytes exactly as given. */
function send(req: Sent): Promise<Answer> {
  const { hostname, port } = new URL(server.url)
  return new Promise((resolvePromise, reject) => {
    const body = req.body === undefined ? undefined : Buffer.from(req.body)
    const headers: Record<string, string> = { connection: 'close', ...req.headers }
    // Explicit: node's client sends GET and DELETE bodies without any framing otherwise.
    if (body)
      headers[req.chunked ? 'transfer-encoding' : 'content-length'] = req.chunked
        ? 'chunked'
        : String(body.length)
    let answered = false
    const outgoing = httpRequest(
      { host: hostname, port, method: req.method, path: req.path, headers, agent: false },
      (res) => {
        answered = true
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolvePromise({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        )
        res.on('error', reject)
      },
    )
    outgoing.on('error', (error) => {
      // The server may close while an oversized body is still being written, after answering.
      if (!answered) reject(error)
    })
    if (body) {
      if (req.chunked)
        for (let i = 0; i < body.length; i += 16 * 1024) outgoing.write(body.subarray(i, i + 16 * 1024))
      else outgoing.write(body)
    }
    outgoing.end()
  })
}

// ---------------------------------------------------------------- the contract

const LOCATIONS = ['body', 'query', 'path', 'header']
// 431: a request line or headers over node's limit (answered with a `{"detail"}` too).
const ERROR_STATUSES = [400, 401, 403, 404, 405, 409, 413, 422, 423, 429, 431]

function leak(text: string): string | null {
  if (/\bat (?:[^\s()"]+ \()?(?:node:|file:|\/|[A-Za-z]:\\)/.test(text)) return 'a stack frame'
  if (text.includes('node_modules')) return 'node_modules'
  if (/\.ts:/.test(text)) return 'a .ts: location'
  if (/"stack"/.test(text)) return 'a "stack" field'
  return null
}

/** Why the answer breaks the contract, or null if it keeps it. */
function violation(answer: Answer): string | null {
  const { status, text } = answer
  if (status >= 500) return `server error ${status}`
  const leaked = leak(text)
  if (leaked) return `leaks ${leaked}`
  if (!String(answer.headers['content-type'] ?? '').startsWith('application/json')) {
    return `content-type ${answer.headers['content-type']}`
  }
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return 'body is not JSON'
  }
  if (status === 200) return null
  if (!ERROR_STATUSES.includes(status)) return `unexpected status ${status}`
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'error body is not an object'
  const keys = Object.keys(body)
  if (keys.length !== 1 || keys[0] !== 'detail') return `error body keys ${keys.join(',')}`
  const { detail } = body as { detail: unknown }
  if (status === 422) {
    if (!Array.isArray(detail) || detail.length === 0) return '422 detail is not a non-empty array'
    for (const issue of detail as Record<string, unknown>[]) {
      if (typeof issue !== 'object' || issue === null) return '422 issue is not an object'
      const { loc, msg, type } = issue
      if (!Array.isArray(loc) || !LOCATIONS.includes(loc[0] as string))
        return `422 loc ${JSON.stringify(loc)}`
      if (!loc.every((part) => typeof part === 'string' || typeof part === 'number')) return '422 loc part'
      if (typeof msg !== 'string' || typeof type !== 'string') return '422 msg/type not strings'
    }
    return null
  }
  if (typeof detail !== 'string') return `${status} detail is not a string`
  if (status === 401 && !/^bearer/i.test(String(answer.headers['www-authenticate'] ?? ''))) {
    return '401 without WWW-Authenticate: Bearer'
  }
  if (status === 429 && !answer.headers['retry-after']) return '429 without Retry-After'
  return null
}

function describeSent(req: Sent): string {
  const body =
    req.body === undefined
      ? ''
      : ` body(${req.body.length}${req.chunked ? ', chunked' : ''}): ${String(req.body).slice(0, 200)}`
  return `${req.method} ${req.path.slice(0, 200)} ${JSON.stringify(req.headers).slice(0, 200)}${body}`
}

/**
 * Checks the answer against the contract; `mustRefuse` says a 200 would be an authorization
 * bypass (a protected route without a valid token, an admin route with a user token).
 */
async function expectContract(req: Sent, mustRefuse = false): Promise<void> {
  const answer = await send(req)
  const problem =
    violation(answer) ?? (mustRefuse && answer.status === 200 ? 'answered 200 without the right token' : null)
  if (problem) {
    throw new Error(`${problem}: ${describeSent(req)} → ${answer.status} ${answer.text.slice(0, 500)}`)
  }
}

async function expectHealthy(): Promise<void> {
  const health = await send({ method: 'GET', path: '/healthz', headers: {} })
  expect(health.status).toBe(200)
  expect(JSON.parse(health.text)).toEqual({ status: 'ok' })
}

// ---------------------------------------------------------------- hostile values

/** A long string that prints as its length in counterexamples and serializes in full. */
class Huge {
  readonly length: number
  readonly unit: string
  readonly prefix: string
  constructor(length: number, unit: string, prefix = '') {
    this.length = length
    this.unit = unit
    this.prefix = prefix
  }
  toString(): string {
    return this.prefix + this.unit.repeat(this.length)
  }
  toJSON(): string {
    return this.toString()
  }
  [fc.toStringMethod](): string {
    return `Huge(${JSON.stringify(this.prefix)} + ${this.length} × ${JSON.stringify(this.unit)})`
  }
}

const ODD_STRINGS = [
  '',
  ' ',
  '\ud800',
  '\udfff',
  'a\ud800b',
  '\udc00\ud800',
  '\u202eevil\u202c',
  '\u200f\u200e\u061c',
  'a\u0000b',
  '\u0000',
  '😀',
  '👩‍👩‍👧‍👦',
  'e\u0301\u0301\u0301\u0301',
  'Z\u0324\u0354\u0367\u0311\u0313',
  '\ufeff',
  '\uffff\ufffe',
  '\u2028\u2029',
  'ǅ\u0130\u0131ß',
  '<script>alert(1)</script>',
  "' OR '1'='1",
  '"; DROP TABLE users; --',
  '../../etc/passwd',
  '%00',
  '{{7*7}}#{7*7}%{7*7}',
  'null',
  'undefined',
  'true',
  '0',
  '-1',
  '[]',
  '{}',
  '__proto__',
  'constructor',
]

const oddString = fc.constantFrom(...ODD_STRINGS)
const hugeString = fc
  .constantFrom(100_000, 40_000, 65_537, 5_000)
  .chain((n) => fc.constantFrom(new Huge(n, 'a'), new Huge(n, '€'), new Huge(n, '\ud800'), new Huge(n, '😀')))
/** Ids that are not positive integers, or are too large to exist (the small live ids are left alone). */
const hostileId = fc.oneof(
  fc.constantFrom(
    0,
    -1,
    -0,
    1.5,
    0.000001,
    -(2 ** 31),
    2 ** 31,
    2 ** 53,
    2 ** 53 + 2,
    2 ** 64,
    1e308,
    -1e308,
    Number.MAX_SAFE_INTEGER,
    '0',
    '-1',
    '1.5',
    '1e6',
    '1e400',
    '0x7fffffff',
    'NaN',
    'Infinity',
    '-Infinity',
    '9007199254740993',
    '99999999999999999999999999',
    '',
    ' ',
    'abc',
  ),
  fc.integer({ min: 1_000_000, max: 2 ** 31 }),
  fc.integer({ max: 0 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
)
const wrongType = fc.constantFrom<unknown>(
  null,
  true,
  false,
  0,
  -1,
  1.5,
  [],
  {},
  [1, 'a'],
  { a: 1 },
  [null],
  {
    $gt: '',
  },
)
const anyHostile: fc.Arbitrary<unknown> = fc.oneof(
  oddString,
  hugeString,
  hostileId,
  wrongType,
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.jsonValue({ maxDepth: 3 }),
)

function validValue(schema: Schema): fc.Arbitrary<unknown> {
  const s = resolve(schema)
  const alternatives = s.anyOf ?? s.oneOf
  if (alternatives) return fc.oneof(...alternatives.map(validValue))
  if (s.enum) return fc.constantFrom(...s.enum)
  const type = Array.isArray(s.type) ? s.type[0] : s.type
  switch (type) {
    case 'null':
      return fc.constant(null)
    case 'boolean':
      return fc.boolean()
    case 'integer':
    case 'number':
      return hostileId
    case 'string':
      if (s.format === 'email') return fc.emailAddress()
      if (s.pattern && !s.pattern.includes('@')) {
        return fc.stringMatching(new RegExp(s.pattern), { maxLength: s.maxLength ?? 40 })
      }
      return fc.string({ minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 40, 40) })
    default:
      return anyHostile
  }
}

const fieldValue = (schema: Schema): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 3, arbitrary: validValue(schema) }, { weight: 2, arbitrary: anyHostile })

const extraKey = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'role',
    'is_admin',
    'id',
    'user_id',
    '',
    '\u0000',
    '😀',
  ),
  fc.string({ maxLength: 12 }),
)

function bodyObject(op: Operation): fc.Arbitrary<Record<string, unknown>> {
  const fields = Object.fromEntries(Object.entries(op.bodyFields ?? {}).map(([k, s]) => [k, fieldValue(s)]))
  return fc
    .tuple(
      fc.record(fields, { requiredKeys: [] }),
      fc.oneof(
        { weight: 3, arbitrary: fc.constant({}) },
        { weight: 1, arbitrary: fc.dictionary(extraKey, anyHostile, { maxKeys: 3 }) },
      ),
    )
    .map(([known, extra]) => {
      const body: Record<string, unknown> = {}
      // defineProperty, so that "__proto__" is an own key as a JSON parser would make it.
      for (const [k, v] of [...Object.entries(extra), ...Object.entries(known)]) {
        Object.defineProperty(body, k, { value: v, enumerable: true, writable: true, configurable: true })
      }
      return body
    })
}

const RAW_BODIES = [
  '',
  ' ',
  'null',
  'true',
  '0',
  '-1',
  '1e999',
  '"a string"',
  '[]',
  '[{}]',
  '[1,2,3]',
  '{',
  '{"a":',
  '{"a" 1}',
  "{'single': 'quotes'}",
  '{"a":1,}',
  '{"a":NaN}',
  '\u0000',
  '{"username":"\u0000"}',
  '\ufeff{}',
  '{"x":"\\ud800"}',
  '{"x":"\\udfff\\ud800"}',
  '{"x":"\\u0000"}',
  '{"__proto__":{"role":"admin"}}',
  '{"constructor":{"prototype":{"role":"admin"}}}',
  '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
  `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
  `{"a":${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}}`,
  'a=1&b=2',
  '<xml/>',
]

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/x-www-form-urlencoded',
  'text/plain',
  'multipart/form-data; boundary=xyz',
  'application/json; charset=utf-16',
  'application/xml',
  '',
  null,
]

type BodyRecipe =
  | { kind: 'none' }
  | { kind: 'json'; value: unknown; contentType: string | null }
  | { kind: 'form'; value: Record<string, unknown>; contentType: string | null }
  | { kind: 'raw'; text: string | Huge; contentType: string | null; chunked: boolean }

function bodyRecipe(op: Operation): fc.Arbitrary<BodyRecipe> {
  const contentType = fc.constantFrom(...CONTENT_TYPES)
  const object = bodyObject(op)
  const oversized = fc
    .constantFrom(BODY_LIMIT + 1, 70_000, 200_000, 1_000_000)
    .map((n) => ({ text: new Huge(n, 'a') as string | Huge, wrap: true }))
  const recipes: fc.Arbitrary<BodyRecipe>[] = [
    fc.record({ kind: fc.constant('json' as const), value: object, contentType }),
    fc.record({
      kind: fc.constant('form' as const),
      value: object,
      contentType: fc.constantFrom('application/x-www-form-urlencoded', 'application/json', null),
    }),
    fc.record({
      kind: fc.constant('json' as const),
      value: fc.oneof(wrongType, fc.jsonValue({ maxDepth: 2 }), fc.array(object, { maxLength: 2 })),
      contentType,
    }),
    fc.record({
      kind: fc.constant('raw' as const),
      text: fc.oneof(fc.constantFrom(...RAW_BODIES), fc.string({ unit: 'binary', maxLength: 60 })),
      contentType,
      chunked: fc.boolean(),
    }),
    fc.record({
      kind: fc.constant('raw' as const),
      text: oversized.map((o) => o.text),
      contentType,
      chunked: fc.boolean(),
    }),
  ]
  if (op.bodyFields) {
    return fc.oneof(
      { weight: 2, arbitrary: recipes[0] },
      { weight: 1, arbitrary: recipes[1] },
      ...recipes.slice(2),
    )
  }
  return fc.oneof({ weight: 4, arbitrary: fc.constant({ kind: 'none' as const }) }, ...recipes)
}

/** `encodeURIComponent`, except that lone surrogates become their (invalid) UTF-8 bytes. */
function encode(text: string): string {
  if (text.isWellFormed()) return encodeURIComponent(text)
  return Array.from(text)
    .map((ch) => {
      const unit = ch.charCodeAt(0)
      if (ch.length === 1 && unit >= 0xd800 && unit <= 0xdfff) {
        return [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)]
          .map((b) => `%${b.toString(16).toUpperCase()}`)
          .join('')
      }
      return encodeURIComponent(ch)
    })
    .join('')
}

function formEncode(value: Record<string, unknown>): string {
  return Object.entries(value)
    .map(
      ([k, v]) =>
        `${encode(k)}=${encode(typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v))}`,
    )
    .join('&')
}

/** Path segments: already encoded, sent as they are (`..`, `%00` and friends included). */
const pathSegment = (param: Parameter): fc.Arbitrary<string | Huge> =>
  fc.oneof(
    fc.constantFrom(
      '0',
      '-1',
      '1.5',
      '1e6',
      '1e400',
      '0x10',
      '9007199254740993',
      '99999999999999999999999999999999',
      'NaN',
      'null',
      '%00',
      'a%00b',
      '..',
      '.',
      '%2e%2e',
      '%2F',
      '..%2F..%2Fetc%2Fpasswd',
      '%',
      '%zz',
      '%ED%A0%80',
      '%FF%FE',
      '%C0%AF',
      '%E2%80%AE',
      '%F0%9F%98%80',
      ';',
      '~',
      '@',
      '%20',
      new Huge(8000, 'a'),
      new Huge(5000, '9'),
      new Huge(2000, '%41'),
    ),
    (param.schema && resolve(param.schema).type === 'integer' ? hostileId : fc.string({ maxLength: 70 })).map(
      (v) => encode(String(v)),
    ),
    oddString.map(encode),
  )

const QUERY_VALUES = [
  '',
  'abc',
  '-1',
  '0',
  '1.5',
  '1e400',
  'NaN',
  'Infinity',
  '[]',
  'null',
  'true',
  '9'.repeat(40),
]

type Text = string | Huge
/** Query pairs (encoded when sent), or a raw query string sent as it is. */
type QueryRecipe = { pairs: [string, Text][] } | { raw: string }

function queryRecipe(op: Operation): fc.Arbitrary<QueryRecipe> {
  const value = (param: Parameter): fc.Arbitrary<Text> =>
    fc.oneof(
      validValue(param.schema).map((v) => String(v)),
      fc.constantFrom(...QUERY_VALUES),
      oddString,
      hostileId.map(String),
      fc.constant(new Huge(10_000, 'x')),
    )
  const known = op.queryParams.map((p) =>
    fc.option(
      value(p).map((v): [string, Text] => [p.name, v]),
      { nil: undefined },
    ),
  )
  const extraName = fc.oneof(extraKey, fc.constantFrom(...op.queryParams.map((p) => p.name), 'x'))
  const extra = fc.array(fc.tuple(extraName, oddString as fc.Arbitrary<Text>), { maxLength: 2 })
  return fc.oneof(
    {
      weight: 5,
      arbitrary: fc.tuple(fc.tuple(...known), extra).map(([k, e]) => ({
        pairs: [...k.filter((p) => p !== undefined), ...e],
      })),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom('?', '?&&', '?=', '?%00=%00', '?%zz=%zz', '?a=%ED%A0%80', '?limit=1&limit=2')
        .map((raw) => ({ raw })),
    },
  )
}

function renderQuery(query: QueryRecipe): string {
  if ('raw' in query) return query.raw
  if (query.pairs.length === 0) return ''
  return `?${query.pairs.map(([k, v]) => `${encode(k)}=${encode(String(v))}`).join('&')}`
}

const GARBAGE_AUTHORIZATION = [
  'Bearer',
  'Bearer ',
  'Bearer x',
  'Bearer a.b.c',
  'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.',
  'Bearer ..',
  'Basic dXNlcjpwYXNz',
  'bearer\tx',
  new Huge(9000, 'a', 'Bearer '),
  'Token abc',
]

type AuthMode = 'anonymous' | 'user' | 'admin'

function headersFor(mode: AuthMode): fc.Arbitrary<Record<string, Text>> {
  const base = (authorization: Text): Record<string, Text> => ({ authorization })
  if (mode === 'user') return fc.constant(base(`Bearer ${userToken}`))
  if (mode === 'admin') return fc.constant(base(`Bearer ${adminToken}`))
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant({}) },
    { weight: 2, arbitrary: fc.constantFrom(...GARBAGE_AUTHORIZATION).map(base) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('', 'wrong', BOOTSTRAP.slice(0, -1), new Huge(4000, 'x')).map((t) => ({
        'x-bootstrap-token': t,
      })),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(
          'x/healthz?',
          'x/admin/users#',
          'evil.example',
          'x:99999',
          '[::1]',
          '',
          new Huge(300, 'h'),
        )
        .map((host) => ({ host })),
    },
  )
}

type HostileRequest = {
  method: string
  segments: Text[]
  query: QueryRecipe
  body: BodyRecipe
  headers: Record<string, Text>
}

function hostileRequest(op: Operation, mode: AuthMode): fc.Arbitrary<HostileRequest> {
  return fc.record({
    method: fc.oneof(
      { weight: 12, arbitrary: fc.constant(op.method) },
      { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS') },
    ),
    segments: fc.tuple(...op.pathParams.map(pathSegment)),
    query: queryRecipe(op),
    body: bodyRecipe(op),
    headers: headersFor(mode),
  })
}

function fillPath(template: string, segments: Text[]): string {
  let i = 0
  return template.replace(/\{\w+\}/g, () => String(segments[i++]))
}

function toSent(op: Operation, r: HostileRequest): Sent {
  const sent: Sent = {
    method: r.method,
    path: fillPath(op.path, r.segments) + renderQuery(r.query),
    headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, String(v)])),
  }
  const setType = (type: string | null) => {
    if (type !== null) sent.headers['content-type'] = type
  }
  switch (r.body.kind) {
    case 'none':
      break
    case 'json':
      setType(r.body.contentType)
      sent.body = JSON.stringify(r.body.value) ?? 'null'
      break
    case 'form':
      setType(r.body.contentType)
      sent.body = formEncode(r.body.value)
      break
    case 'raw':
      setType(r.body.contentType)
      sent.body = String(r.body.text)
      sent.chunked = r.body.chunked
      break
  }
  return sent
}

// ---------------------------------------------------------------- the tests

function routePattern(template: string): RegExp {
  return new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{\w+\}/g, '[^/]+')}$`)
}

/** Admin (or admin and auditor) routes: every /admin/ route but the public admin login. */
const isAdminOnly = (op: Operation): boolean => op.path.startsWith('/admin/') && op.path !== '/admin/login'

/** Runs `task` over `items`, `width` at a time. */
async function inParallel<T>(items: T[], width: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await task(items[next++])
  }
  await Promise.all(Array.from({ length: width }, worker))
}

/** Valid path values for the happy route, so fixed hostile bodies reach the body parser. */
function plausibleSegments(op: Operation): string[] {
  return op.pathParams.map((p) => (p.name === 'username' ? user.username : '123456789'))
}

describe('the OpenAPI document', () => {
  it('lists every REST operation of the contract', () => {
    expect(documentReply.status).toBe(200)
    const ids = operations.map((op) => `${op.method} ${op.path}`)
    for (const expected of [
      'POST /auth/register',
      'POST /auth/login',
      'POST /token',
      'POST /auth/token-refresh',
      'DELETE /auth/sessions/{session_id}',
      'GET /auth/verify-user/{username}',
      'PUT /auth/profile',
      'GET /admin/users',
      'PUT /admin/deactivate-user/{user_id}',
      'DELETE /admin/user/{user_id}',
      'POST /admin/lock',
      'GET /admin/users/{user_id}/history',
      'POST /chatbot/interact',
      'GET /protected',
    ]) {
      expect(ids).toContain(expected)
    }
    expect(operations.length).toBeGreaterThanOrEqual(37)
  })

  it('gives the fuzzer working tokens', async () => {
    expect((await call(server.url, 'GET', '/protected', { token: userToken })).status).toBe(200)
    expect((await call(server.url, 'GET', '/admin/users', { token: adminToken })).status).toBe(200)
  })
})

describe.each(operations)('$method $path ($id)', (op) => {
  const modes: AuthMode[] = [
    'anonymous',
    'user',
    ...(op.path.startsWith('/admin/') ? (['admin'] as const) : []),
  ]

  it.each(modes)('answers hostile requests (%s) with contract-shaped 4xx', async (mode) => {
    await fc.assert(
      fc.asyncProperty(hostileRequest(op, mode), async (r) => {
        const sent = toSent(op, r)
        // Only while the path still leads to this route (`..` segments normalize elsewhere).
        const reachesRoute = routePattern(op.path).test(new URL(sent.path, server.url).pathname)
        const refused = mode === 'anonymous' ? op.protected : mode === 'user' && isAdminOnly(op)
        await expectContract(sent, reachesRoute && refused)
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: false },
    )
    await expectHealthy()
  })

  it('answers each fixed hostile body and content type with contract-shaped 4xx', async () => {
    const path = fillPath(op.path, plausibleSegments(op))
    const method = op.method === 'GET' ? 'POST' : op.method
    const headers = { authorization: `Bearer ${op.path.startsWith('/admin/') ? adminToken : userToken}` }
    const requests = RAW_BODIES.flatMap((text) =>
      ['application/json', 'text/plain', 'application/x-www-form-urlencoded'].map(
        (contentType): Sent => ({
          method,
          path,
          headers: { ...headers, 'content-type': contentType },
          body: text,
        }),
      ),
    )
    await inParallel(requests, 8, expectContract)
    for (const size of [BODY_LIMIT + 1, 100_000]) {
      for (const chunked of [false, true]) {
        const body = JSON.stringify({ x: 'a'.repeat(size) })
        const answer = await send({
          method: op.method,
          path,
          headers: { ...headers, 'content-type': 'application/json' },
          body,
          chunked,
        })
        // GET bodies are never read, so only the other methods meet the size limit.
        if (op.method !== 'GET') expect(answer.status, `${size} bytes, chunked: ${chunked}`).toBe(413)
        expect(violation(answer)).toBeNull()
      }
    }
    await expectHealthy()
  })
})

function parseRaw(reply: string): Answer {
  const [head, ...rest] = reply.split('\r\n\r\n')
  const [statusLine, ...lines] = head.split('\r\n')
  const headers: IncomingHttpHeaders = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status: Number(statusLine.split(' ')[1]), headers, text: rest.join('\r\n\r\n') }
}

describe('requests that node itself refuses', () => {
  it.each([
    ['a garbage request line', 'GARBAGE\r\n\r\n', 400],
    ['a header without a colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nnot a header\r\n\r\n', 400],
    ['a NUL in the path', 'GET /heal\u0000thz HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['a bad content-length', 'POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n', 400],
    [
      'both content-length and chunked',
      'POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      400,
    ],
    [
      'bad chunk framing',
      'POST /token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n',
      400,
    ],
    ['a 20 KB request line', `GET /auth/verify-user/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
    ['a 20 KB header', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`, 431],
  ])('answers %s with a {"detail"} body', async (_name, bytes, status) => {
    const answer = parseRaw(await sendRaw(server.url, bytes))
    expect(answer.status).toBe(status)
    expect(violation(answer)).toBeNull()
    expect(JSON.parse(answer.text)).toEqual({ detail: expect.any(String) })
    await expectHealthy()
  })
})

describe('routing', () => {
  it.each([
    ['GET /healthz', 'x/admin/users#', 200],
    ['GET /healthz', 'x/protected?', 200],
    ['GET /nowhere', 'x/healthz?', 404],
    ['GET /admin/users', 'x/healthz?', 401],
    ['GET http://elsewhere.example/healthz', 'x', 200],
    ['GET http://elsewhere.example/admin/users', 'x/healthz?', 401],
    ['GET //admin/users', 'x', 404],
  ])('follows the request target, never the Host header: %s with Host %s', async (line, host, status) => {
    const answer = parseRaw(
      await sendRaw(server.url, `${line} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    )
    expect(answer.status, answer.text).toBe(status)
    expect(violation(answer)).toBeNull()
    if (status === 200) expect(JSON.parse(answer.text)).toEqual({ status: 'ok' })
  })
})

describe('after the fuzzing', () => {
  it('still serves the fuzzer accounts with their tokens', async () => {
    expect((await call(server.url, 'GET', '/healthz')).status).toBe(200)
    expect((await call(server.url, 'GET', '/readyz')).status).toBe(200)
    expect((await call(server.url, 'GET', '/protected', { token: userToken })).status).toBe(200)
    expect((await call(server.url, 'GET', '/protected', { token: adminToken })).status).toBe(200)
  })
})

if (process.env.FUZZ_SEED === undefined) console.info(`fuzz seed ${SEED} (rerun with FUZZ_SEED=${SEED})`)
