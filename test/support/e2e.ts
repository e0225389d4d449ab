/**
 * Helpers for the end-to-end suites: an HTTP client over `call` that checks every response
 * body for leaks (stack traces, password hashes, refresh-token hashes), and shortcuts for
 * registering and logging in.
 */
import { createHash } from 'node:crypto'
import { connect } from 'node:net'
import { expect } from 'vitest'
import { call } from './server.ts'

// biome-ignore lint/suspicious/noExplicitAny: tests read response bodies loosely
export type Reply = { status: number; body: any; headers: Headers }
export type CallOptions = Parameters<typeof call>[3]
export type Api = (method: string, path: string, options?: CallOptions) => Promise<Reply>

/** SHA-256 hashes of every refresh-token secret seen in any response, across the whole file. */
const refreshTokenHashes = new Set<string>()

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex')

function rememberRefreshToken(token: string): void {
  refreshTokenHashes.add(sha256(token))
  const dot = token.indexOf('.')
  if (dot > 0) refreshTokenHashes.add(sha256(token.slice(dot + 1)))
}

/** Fails the test if a response text carries anything API.md says must never leave the server. */
export function assertNoLeak(text: string, where = 'response'): void {
  const problems: string[] = []
  if (/stack/i.test(text)) problems.push('"stack"')
  // A stack frame: "at " and a file path or URL, optionally after a function name in parentheses.
  const frame = /\bat (?:[^\s()"]+ \()?(?:node:[\w/]+|(?:file:\/\/|\/|[A-Za-z]:\\)[^\s"()]*\.[cm]?[jt]s\b)/
  if (frame.test(text)) problems.push('a stack frame')
  if (/[\w.-]+\.(?:ts|js|mjs|cjs):\d+:\d+/.test(text)) problems.push('a file:line:column')
  if (text.includes('argon2id$')) problems.push('an argon2id hash')
  for (const hash of refreshTokenHashes) if (text.includes(hash)) problems.push('a refresh-token hash')
  expect(problems, `${where} leaks ${problems.join(', ')}: ${text.slice(0, 300)}`).toEqual([])
}

function scan(value: unknown): void {
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>
    if (typeof record.refresh_token === 'string') rememberRefreshToken(record.refresh_token)
    for (const inner of Object.values(record)) scan(inner)
  }
}

/** Checks a reply for leaks and remembers any refresh token it hands out. */
export function inspect(reply: Reply, where: string): Reply {
  scan(reply.body)
  assertNoLeak(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body), where)
  return reply
}

export function api(base: string): Api {
  return async (method, path, options) =>
    inspect(await call(base, method, path, options), `${method} ${path}`)
}

/** A fetch for other clients (tRPC) that applies the same leak checks to every response. */
export function checkedFetch(): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init)
    const text = await response.clone().text()
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {}
    inspect({ status: response.status, body: parsed, headers: response.headers }, String(input))
    return response
  }
}

export type NewUser = { username: string; email: string; password: string; full_name?: string | null }

let counter = 0
/** A fresh, valid account description; `tag` keeps names readable in failures. */
export function newUser(tag: string): NewUser {
  counter += 1
  const suffix = `${process.pid.toString(36)}${counter}`
  return {
    username: `${tag}_${suffix}`,
    email: `${tag}.${suffix}@example.com`,
    password: `Tr0ub4dor&3-${tag}-${suffix}`,
  }
}

export async function register(request: Api, user: NewUser): Promise<Reply['body']> {
  const reply = await request('POST', '/auth/register', { json: user })
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  return reply.body
}

export type Tokens = { access_token: string; refresh_token: string; token_type: string; expires_in: number }

export async function login(
  request: Api,
  user: { username: string; password: string },
  headers?: Record<string, string>,
): Promise<Tokens> {
  const reply = await request('POST', '/auth/login', {
    form: { username: user.username, password: user.password },
    headers,
  })
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  return reply.body
}

/** The claims of a JWT, read without verification (for ids and shapes only). */
export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'))
}

export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z$/

export const USER_RESPONSE_KEYS = [
  'created_at',
  'email',
  'email_verified',
  'full_name',
  'id',
  'is_2fa_enabled',
  'is_active',
  'is_locked',
  'pending_email',
  'role',
  'username',
]

/** A 401 as API.md has it: `WWW-Authenticate: Bearer` and a `{"detail"}` body (optionally this exact text). */
export function expectUnauthorized(reply: Reply, detail?: string): void {
  expect(reply.status, JSON.stringify(reply.body)).toBe(401)
  expect(reply.headers.get('www-authenticate')).toBe('Bearer')
  expect(reply.body).toEqual({ detail: detail ?? expect.any(String) })
}

/**
 * Bytes straight onto a socket, for requests no HTTP client would send; the raw reply, read until
 * the server closes (send `Connection: close` with a well-formed request). The socket is not
 * half-closed first: Deno's HTTP server drops the answer to a client that has ended its side.
 */
export function sendRaw(baseUrl: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(baseUrl)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(bytes))
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    socket.on('error', reject)
  })
}
