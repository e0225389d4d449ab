/**
 * A small HTTP client (fetch) used by the client processes and the checks, and the client process
 * itself: mixed load at the service, one JSON line per acknowledged request.
 *
 * Client processes are this file run with `--client <json options>`. Each owns its users (so the
 * order of everything done to one user is known) and appends one JSON line per request answered
 * 200 to its own file: what the server acknowledged and must therefore still hold after any crash.
 * A request that died with the server "may have been applied"; clients retry only where that is
 * safe (a refused connection never reached the server; lock, unlock and revoke are idempotent),
 * and a refresh retried after a lost answer is allowed to find its session revoked by reuse
 * detection (the first attempt did rotate the token, and the client never saw the new one).
 *
 * Only `node:` modules are imported, so the client processes start fast.
 */
import { appendFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

/** This file: what the trial runs, with `--client <json options>`, as a client process. */
export const CLIENT_SCRIPT = fileURLToPath(import.meta.url)
/** The admin the trial bootstraps and the clients lock and unlock accounts as. */
export const ADMIN = {
  username: 'crash_admin',
  email: 'crash_admin@example.com',
  password: 'Adm1n-crash-harness!',
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies are read loosely
export type Answer = { status: number; body: any }
export type Failure = { error: string; reachedServer: boolean }

function errorCode(error: unknown): string | undefined {
  const failure = error as {
    code?: string
    cause?: { code?: string; message?: string; errors?: { code?: string }[] }
  }
  const cause = failure?.cause
  // Node's fetch puts the code on its cause, Bun's on the error; Deno's names none, only the OS error.
  const code = cause?.code ?? cause?.errors?.[0]?.code ?? failure?.code
  if (code === undefined && /connection refused/i.test(cause?.message ?? '')) return 'ECONNREFUSED'
  return code
}

// Deno's fetch resends a request once when a kept-alive connection dies under it, even when the
// server had received it, and then reports the resend's error (a refused connection while the server
// is down): a registration that was applied would count as never sent. Without idle connections to
// reuse there is no resend.
const deno = (globalThis as { Deno?: { createHttpClient(options: { poolMaxIdlePerHost: number }): object } })
  .Deno
const unpooled = deno ? { client: deno.createHttpClient({ poolMaxIdlePerHost: 0 }) } : {}

/** The headers and body of a JSON, form or bodiless request, with an optional bearer token. */
export function requestParts(options: {
  json?: unknown
  form?: Record<string, string>
  token?: string
  headers?: Record<string, string>
}): { headers: Record<string, string>; body: string | undefined } {
  const headers: Record<string, string> = { ...options.headers }
  let body: string | undefined
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(options.json)
  } else if (options.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    body = new URLSearchParams(options.form).toString()
  }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  return { headers, body }
}

export async function httpCall(
  base: string,
  method: string,
  path: string,
  options: { json?: unknown; form?: Record<string, string>; token?: string; timeoutMs?: number } = {},
): Promise<Answer | Failure> {
  const { headers, body } = requestParts(options)
  try {
    const response = await fetch(`${base}${path}`, {
      method,
      headers,
      body,
      signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
      ...unpooled,
    } as RequestInit)
    const text = await response.text()
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {}
    return { status: response.status, body: parsed }
  } catch (error) {
    const code = errorCode(error)
    // A refused connection never reached the server: nothing can have been applied.
    return {
      error: `${(error as Error).message}${code ? ` (${code})` : ''}`,
      reachedServer: code !== 'ECONNREFUSED',
    }
  }
}

export const isAnswer = (reply: Answer | Failure): reply is Answer => 'status' in reply

/** A deterministic PRNG (mulberry32), so a failing seed can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const sessionIdOf = (refreshToken: string): number => Number(refreshToken.slice(0, refreshToken.indexOf('.')))
const subjectOf = (accessToken: string): number =>
  Number(JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8')).sub)

// ---------------------------------------------------------------------------------------------
// Client process: mixed load, one JSON line per acknowledged request.

export type Ack =
  | { op: 'register'; user_id: number; username: string; password: string }
  | { op: 'login'; user_id: number; session_id: number; refresh_token: string; access_token: string }
  | { op: 'refresh'; session_id: number; refresh_token: string; access_token: string }
  | { op: 'revoke'; session_id: number }
  | { op: 'reuse_revoked'; session_id: number }
  | { op: 'lock'; user_id: number }
  | { op: 'unlock'; user_id: number }
  | { op: 'uncertain'; kind: string; user_id?: number; session_id?: number }
  | { op: 'unexpected'; kind: string; status: number; body: unknown }
  | { op: 'done'; client: string; answered: number; refused: number; lost_answers: number }

export type ClientOptions = {
  url: string
  out: string
  tag: string
  seed: number
  workers: number
  /** Hard stop, whatever happens to the harness. */
  maxMs: number
}

type ClientSession = { id: number; refresh: string; access: string; live: boolean }
type ClientUser = {
  id: number
  username: string
  password: string
  locked: boolean
  sessions: ClientSession[]
}

const RETRY_FOR_MS = 60_000

async function runClient(options: ClientOptions): Promise<void> {
  let stopping = false
  process.stdin.on('data', () => {
    stopping = true
  })
  process.stdin.on('end', () => {
    stopping = true
  })
  const hardStop = setTimeout(() => {
    stopping = true
  }, options.maxMs)
  hardStop.unref()
  const write = (line: Ack): void => appendFileSync(options.out, `${JSON.stringify(line)}\n`)
  let answered = 0
  let refused = 0
  let lostAnswers = 0
  let counter = 0

  /**
   * Sends until answered. A refused connection is always retried; a request lost after it reached
   * the server only if `retrySent` (idempotent, or the caller knows how to read the retry's answer).
   */
  async function send(
    method: string,
    path: string,
    body: { json?: unknown; form?: Record<string, string>; token?: string },
    retrySent: boolean,
  ): Promise<(Answer & { maybeApplied: boolean }) | null> {
    let maybeApplied = false
    const deadline = performance.now() + RETRY_FOR_MS
    while (performance.now() < deadline) {
      const reply = await httpCall(options.url, method, path, body)
      if (isAnswer(reply)) {
        answered++
        return { ...reply, maybeApplied }
      }
      if (!reply.reachedServer) refused++
      else {
        lostAnswers++
        maybeApplied = true
        if (!retrySent) return null
      }
      await sleep(30)
    }
    return null
  }

  let adminToken = ''
  async function adminLogin(): Promise<void> {
    const reply = await send('POST', '/admin/login', { json: ADMIN }, true)
    if (reply?.status !== 200) throw new Error(`admin login failed: ${JSON.stringify(reply)}`)
    adminToken = reply.body.access_token
  }
  async function asAdmin(path: string, json: unknown): Promise<(Answer & { maybeApplied: boolean }) | null> {
    let reply = await send('POST', path, { json, token: adminToken }, true)
    if (reply?.status === 401) {
      await adminLogin()
      reply = await send('POST', path, { json, token: adminToken }, true)
    }
    return reply
  }
  await adminLogin()

  const unexpected = (kind: string, reply: Answer): void =>
    write({ op: 'unexpected', kind, status: reply.status, body: reply.body })

  async function worker(index: number): Promise<void> {
    const random = prng(options.seed * 31 + index)
    const users: ClientUser[] = []
    const pick = <T>(items: T[]): T | undefined => items[Math.floor(random() * items.length)]

    async function register(): Promise<void> {
      counter++
      const username = `${options.tag}w${index}n${counter}${Math.floor(random() * 1e6).toString(36)}`
      const password = `Cr4sh-${Math.floor(random() * 1e12).toString(36)}-pw`
      // Not retried once it reached the server: a second attempt would only meet our own claim.
      const reply = await send(
        'POST',
        '/auth/register',
        { json: { username, email: `${username}@example.com`, password } },
        false,
      )
      if (!reply) return write({ op: 'uncertain', kind: 'register' })
      if (reply.status !== 200 || typeof reply.body?.id !== 'number') return unexpected('register', reply)
      write({ op: 'register', user_id: reply.body.id, username, password })
      users.push({ id: reply.body.id, username, password, locked: false, sessions: [] })
    }

    async function login(user: ClientUser): Promise<ClientSession | null> {
      // Retried: a lost attempt leaves at most a session nobody knows the tokens of.
      const reply = await send(
        'POST',
        '/auth/login',
        { form: { username: user.username, password: user.password } },
        true,
      )
      if (!reply) {
        write({ op: 'uncertain', kind: 'login', user_id: user.id })
        return null
      }
      if (reply.status !== 200 || typeof reply.body?.refresh_token !== 'string') {
        unexpected('login', reply)
        return null
      }
      const session = {
        id: sessionIdOf(reply.body.refresh_token),
        refresh: reply.body.refresh_token as string,
        access: reply.body.access_token as string,
        live: true,
      }
      if (subjectOf(session.access) !== user.id) unexpected('login: token for another user', reply)
      write({
        op: 'login',
        user_id: user.id,
        session_id: session.id,
        refresh_token: session.refresh,
        access_token: session.access,
      })
      user.sessions.push(session)
      return session
    }

    async function refresh(user: ClientUser, session: ClientSession): Promise<void> {
      const reply = await send(
        'POST',
        '/auth/token-refresh',
        { json: { refresh_token: session.refresh } },
        true,
      )
      if (!reply) {
        write({ op: 'uncertain', kind: 'refresh', user_id: user.id, session_id: session.id })
        user.sessions = user.sessions.filter((s) => s !== session)
        return
      }
      if (reply.status === 200) {
        session.refresh = reply.body.refresh_token
        session.access = reply.body.access_token
        write({
          op: 'refresh',
          session_id: session.id,
          refresh_token: session.refresh,
          access_token: session.access,
        })
      } else if (reply.status === 401 && reply.maybeApplied) {
        // The lost attempt rotated the token; presenting it again revoked the session (reuse).
        session.live = false
        write({ op: 'reuse_revoked', session_id: session.id })
      } else {
        unexpected('refresh', reply)
        user.sessions = user.sessions.filter((s) => s !== session)
      }
    }

    async function revoke(user: ClientUser, session: ClientSession): Promise<void> {
      // Revoked from another session of the same user, so a retry is answered 200 (idempotent).
      const other = user.sessions.find((s) => s.live && s !== session) ?? (await login(user))
      if (!other || other === session) return
      const reply = await send('DELETE', `/auth/sessions/${session.id}`, { token: other.access }, true)
      if (reply?.status !== 200) {
        user.sessions = user.sessions.filter((s) => s !== session)
        if (!reply)
          return write({ op: 'uncertain', kind: 'revoke', user_id: user.id, session_id: session.id })
        return unexpected('revoke', reply)
      }
      session.live = false
      write({ op: 'revoke', session_id: session.id })
    }

    async function setLock(user: ClientUser, locked: boolean): Promise<void> {
      const reply = locked
        ? await asAdmin('/admin/lock', { user_id: user.id, reason: 'crash harness' })
        : await asAdmin('/admin/unlock', { user_id: user.id })
      if (!reply) {
        write({ op: 'uncertain', kind: locked ? 'lock' : 'unlock', user_id: user.id })
        users.splice(users.indexOf(user), 1)
        return
      }
      if (reply.status !== 200) return unexpected(locked ? 'lock' : 'unlock', reply)
      user.locked = locked
      if (locked) for (const s of user.sessions) s.live = false
      write({ op: locked ? 'lock' : 'unlock', user_id: user.id })
    }

    while (!stopping) {
      const unlocked = users.filter((u) => !u.locked)
      const live = unlocked.flatMap((u) => u.sessions.filter((s) => s.live).map((s) => ({ u, s })))
      const r = random()
      if (users.length < 2 || r < 0.2) await register()
      else if (r < 0.4 || live.length === 0) {
        const user = pick(unlocked)
        if (user) await login(user)
        else await register()
      } else if (r < 0.65) {
        const { u, s } = pick(live)!
        await refresh(u, s)
      } else if (r < 0.78) {
        const { u, s } = pick(live)!
        await revoke(u, s)
      } else if (r < 0.9) {
        const user = pick(unlocked)
        if (user) await setLock(user, true)
      } else {
        const user = pick(users.filter((u) => u.locked))
        if (user) await setLock(user, false)
        else await register()
      }
      // Keep per-user state small: forget sessions that are revoked (their acks are on file).
      for (const u of users) u.sessions = u.sessions.filter((s) => s.live).slice(-4)
    }
  }

  await Promise.all(Array.from({ length: options.workers }, (_, i) => worker(i)))
  write({ op: 'done', client: options.tag, answered, refused, lost_answers: lostAnswers })
  process.exit(0)
}

if (process.argv[2] === '--client' && process.argv[1] && resolve(process.argv[1]) === CLIENT_SCRIPT) {
  runClient(JSON.parse(process.argv[3] ?? '{}') as ClientOptions).catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
