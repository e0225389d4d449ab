/**
 * Crash-safety harness: runs the real service as a child process (`node src/main.ts`) on its own
 * DATA_DIR, drives mixed load at it from separate client processes, kills it with SIGKILL at random
 * moments and restarts it on the same DATA_DIR, then proves that nothing acknowledged was lost.
 *
 *   runCrashTrial({ kills, durationMs, clients, seed })  → CrashFindings (`problems` empty = passed)
 *
 * Client processes are this file run with `--client <json options>`. Each owns its users (so the
 * order of everything done to one user is known) and appends one JSON line per request answered
 * 200 to its own file: what the server acknowledged and must therefore still hold after any crash.
 * A request that died with the server "may have been applied"; clients retry only where that is
 * safe (a refused connection never reached the server; lock, unlock and revoke are idempotent),
 * and a refresh retried after a lost answer is allowed to find its session revoked by reuse
 * detection (the first attempt did rotate the token, and the client never saw the new one).
 *
 * Only `node:` modules are imported, so the client processes start fast and this file also
 * serves scripts/crash.ts and bench/load.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import {
  appendFileSync,
  cpSync,
  createWriteStream,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const HARNESS = fileURLToPath(import.meta.url)
export const BOOTSTRAP_TOKEN = 'crash-harness-bootstrap-token-0123456789'
const ADMIN = { username: 'crash_admin', email: 'crash_admin@example.com', password: 'Adm1n-crash-harness!' }

// ---------------------------------------------------------------------------------------------
// The service as a child process.

export type ServerProcess = {
  child: ChildProcess
  pid: number
  url: string
  port: number
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Everything it wrote to stdout and stderr so far. */
  output(): string
}

/** A TCP port that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      const port = typeof address === 'object' && address ? address.port : 0
      probe.close(() => resolvePort(port))
    })
  })
}

export function spawnServer(options: {
  dataDir: string
  port: number
  env?: Record<string, string>
  /** Also append the output here (kept across restarts). */
  logFile?: string
}): ServerProcess {
  const child = spawn(process.execPath, ['src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATA_DIR: options.dataDir,
      PORT: String(options.port),
      HOST: '127.0.0.1',
      RATE_LIMIT_PER_MINUTE: '0',
      ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP_TOKEN,
      LOG_LEVEL: 'info',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const log = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : null
  const collect = (chunk: Buffer): void => {
    const text = chunk.toString('utf8')
    output = (output + text).slice(-200_000)
    log?.write(text)
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    child.once('exit', (code, signal) => {
      log?.end()
      done({ code, signal })
    })
  })
  return {
    child,
    pid: child.pid ?? -1,
    port: options.port,
    url: `http://127.0.0.1:${options.port}`,
    exited,
    output: () => output,
  }
}

/** Polls GET /readyz until it answers 200; throws with the server's output if it exits or times out. */
export async function waitReady(server: ServerProcess, timeoutMs = 30_000): Promise<number> {
  const started = performance.now()
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null
  void server.exited.then((e) => {
    exit = e
  })
  while (performance.now() - started < timeoutMs) {
    if (exit) {
      throw new Error(
        `server exited before it was ready (${JSON.stringify(exit)}):\n${server.output().slice(-3000)}`,
      )
    }
    try {
      const reply = await fetch(`${server.url}/readyz`, { signal: AbortSignal.timeout(2_000) })
      await reply.arrayBuffer()
      if (reply.status === 200) return performance.now() - started
    } catch {}
    await sleep(25)
  }
  throw new Error(`server not ready within ${timeoutMs} ms:\n${server.output().slice(-3000)}`)
}

/** Sends `signal` and waits for the exit (SIGKILL if it has not exited within `timeoutMs`). */
export async function stopServer(
  server: ServerProcess,
  signal: NodeJS.Signals,
  timeoutMs = 15_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) {
    return { code: server.child.exitCode, signal: server.child.signalCode, timedOut: false }
  }
  server.child.kill(signal)
  const timer = sleep(timeoutMs).then(() => null)
  const exit = await Promise.race([server.exited, timer])
  if (exit) return { ...exit, timedOut: false }
  server.child.kill('SIGKILL')
  return { ...(await server.exited), timedOut: true }
}

// ---------------------------------------------------------------------------------------------
// A small HTTP client (fetch), used by the clients and the checks.

// biome-ignore lint/suspicious/noExplicitAny: response bodies are read loosely
export type Answer = { status: number; body: any }
export type Failure = { error: string; reachedServer: boolean }

function errorCode(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: string; errors?: { code?: string }[] } })?.cause
  return cause?.code ?? cause?.errors?.[0]?.code
}

export async function httpCall(
  base: string,
  method: string,
  path: string,
  options: { json?: unknown; form?: Record<string, string>; token?: string; timeoutMs?: number } = {},
): Promise<Answer | Failure> {
  const headers: Record<string, string> = {}
  let body: string | undefined
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(options.json)
  } else if (options.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    body = new URLSearchParams(options.form).toString()
  }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  try {
    const response = await fetch(`${base}${path}`, {
      method,
      headers,
      body,
      signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
    })
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

type ClientOptions = {
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

// ---------------------------------------------------------------------------------------------
// The trial.

export type CrashTrialOptions = {
  kills: number
  durationMs: number
  clients: number
  seed: number
  /** Concurrent request loops per client process (default 3). */
  workersPerClient?: number
  /** Keep the trial directory (DATA_DIR, logs, acks) even when everything passed. */
  keepDir?: boolean
  log?: (line: string) => void
}

export type CrashFindings = {
  seed: number
  dir: string
  kills: number
  /** Extra kills during startup: one of the very first start, and some of restarted servers. */
  startupKills: number
  restartReadyMs: number[]
  acks: {
    registrations: number
    logins: number
    refreshes: number
    revocations: number
    reuseRevocations: number
    locks: number
    unlocks: number
    uncertain: number
  }
  /** Client requests answered (any status), refused while the server was down, and lost to a kill. */
  requests: { answered: number; refused: number; lostAnswers: number }
  checked: { users: number; liveSessions: number; revokedSessions: number; readModelRows: number }
  /** Per proof, what failed; every list empty means the trial passed. */
  failures: {
    startup: string[]
    unexpectedResponses: string[]
    missingUsers: string[]
    lockState: string[]
    logins: string[]
    revokedSessionsWork: string[]
    liveSessionsBroken: string[]
    duplicateIds: string[]
    readModels: string[]
    hashChains: string[]
    shutdown: string[]
    /** Errors the server logged in any of its lives (a projection that stopped, an unhandled error). */
    serverErrors: string[]
  }
  /** All failures, one line each. */
  problems: string[]
  seconds: number
  /** Where the time went: load with kills, checks over HTTP, stop + rebuild + compare + verify. */
  phases: { loadSeconds: number; checkSeconds: number; rebuildSeconds: number }
}

type ExpectedSession = {
  id: number
  userId: number
  refresh: string
  access: string
  revoked: boolean
  uncertain: boolean
}
type ExpectedUser = { id: number; username: string; password: string; locked: boolean; uncertain: boolean }

/** Folds the acknowledgements (each client's file in order) into what the server must hold. */
export function expectedState(lines: Ack[]): {
  users: Map<number, ExpectedUser>
  sessions: Map<number, ExpectedSession>
  duplicates: string[]
} {
  const users = new Map<number, ExpectedUser>()
  const sessions = new Map<number, ExpectedSession>()
  const duplicates: string[] = []
  for (const line of lines) {
    switch (line.op) {
      case 'register':
        if (users.has(line.user_id)) duplicates.push(`user id ${line.user_id} acknowledged twice`)
        users.set(line.user_id, {
          id: line.user_id,
          username: line.username,
          password: line.password,
          locked: false,
          uncertain: false,
        })
        break
      case 'login':
        if (sessions.has(line.session_id)) duplicates.push(`session id ${line.session_id} acknowledged twice`)
        sessions.set(line.session_id, {
          id: line.session_id,
          userId: line.user_id,
          refresh: line.refresh_token,
          access: line.access_token,
          revoked: false,
          uncertain: false,
        })
        break
      case 'refresh': {
        const s = sessions.get(line.session_id)
        if (s) {
          s.refresh = line.refresh_token
          s.access = line.access_token
        }
        break
      }
      case 'revoke':
      case 'reuse_revoked': {
        const s = sessions.get(line.session_id)
        if (s) s.revoked = true
        break
      }
      case 'lock':
      case 'unlock': {
        const u = users.get(line.user_id)
        if (u) u.locked = line.op === 'lock'
        if (line.op === 'lock')
          for (const s of sessions.values()) if (s.userId === line.user_id) s.revoked = true
        break
      }
      case 'uncertain': {
        if (line.session_id !== undefined) {
          const s = sessions.get(line.session_id)
          if (s) s.uncertain = true
        } else if (line.user_id !== undefined && (line.kind === 'lock' || line.kind === 'unlock')) {
          const u = users.get(line.user_id)
          if (u) u.uncertain = true
          for (const s of sessions.values()) if (s.userId === line.user_id) s.uncertain = true
        }
        break
      }
    }
  }
  return { users, sessions, duplicates }
}

/** Runs `node src/cli/audit.ts <args>` on a DATA_DIR. */
export async function runAuditCli(
  dataDir: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['src/cli/audit.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString('utf8')
  })
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString('utf8')
  })
  const code = await new Promise<number | null>((done) => child.once('exit', (c) => done(c)))
  return { code, stdout, stderr }
}

/**
 * Every table of two read-model files, row by row (the live one and a rebuild from the events).
 * Returns the differences (empty when equal) and how many rows were compared.
 */
export function compareReadModels(
  livePath: string,
  rebuiltPath: string,
): { differences: string[]; rows: number } {
  const live = new DatabaseSync(livePath, { readOnly: true })
  const rebuilt = new DatabaseSync(rebuiltPath, { readOnly: true })
  const differences: string[] = []
  let rows = 0
  try {
    // An FTS5 index's shadow tables hold it in a layout that depends on the order of writes
    // (segments, merges, a structure counter): its terms are compared instead, further down.
    const ftsOf = (db: DatabaseSync): string[] =>
      (
        db
          .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE % fts5%'",
          )
          .all() as { name: string }[]
      ).map((t) => t.name)
    const ftsTables = ftsOf(live)
    const shadows = new Set(
      ftsTables.flatMap((t) => ['data', 'idx', 'docsize', 'config', 'content'].map((s) => `${t}_${s}`)),
    )
    const tablesOf = (db: DatabaseSync): string[] =>
      (
        db
          .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
          )
          .all() as { name: string }[]
      )
        .map((t) => t.name)
        .filter((name) => !shadows.has(name))
    for (const table of ftsTables) {
      const terms = (db: DatabaseSync): string[] => {
        db.exec(`CREATE VIRTUAL TABLE temp.${table}_terms USING fts5vocab(main, '${table}', 'instance')`)
        return db
          .prepare(`SELECT term, doc, col, offset FROM temp.${table}_terms ORDER BY doc, col, offset`)
          .all()
          .map((r) => JSON.stringify(r))
      }
      const a = terms(live)
      const b = ftsOf(rebuilt).includes(table) ? terms(rebuilt) : []
      rows += a.length
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        const at = a.findIndex((r, i) => r !== b[i])
        differences.push(
          `${table} (full-text index): ${a.length} live terms, ${b.length} rebuilt; first difference: ${a[at] ?? '-'} vs ${b[at] ?? '-'}`,
        )
      }
    }
    const liveTables = tablesOf(live)
    const rebuiltTables = tablesOf(rebuilt)
    if (JSON.stringify(liveTables) !== JSON.stringify(rebuiltTables)) {
      differences.push(`tables differ: live ${liveTables.join(',')} vs rebuilt ${rebuiltTables.join(',')}`)
    }
    for (const table of ['users', 'sessions', 'activity']) {
      if (!liveTables.includes(table)) differences.push(`table ${table} missing from the live read models`)
    }
    for (const table of liveTables.filter((t) => rebuiltTables.includes(t))) {
      const columns = (live.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map(
        (c) => c.name,
      )
      const order = columns.map((_, i) => i + 1).join(', ')
      const a = live
        .prepare(`SELECT * FROM ${table} ORDER BY ${order}`)
        .all()
        .map((r) => JSON.stringify(r))
      const b = rebuilt
        .prepare(`SELECT * FROM ${table} ORDER BY ${order}`)
        .all()
        .map((r) => JSON.stringify(r))
      rows += a.length
      if (a.length !== b.length) differences.push(`${table}: ${a.length} live rows, ${b.length} rebuilt rows`)
      const inB = new Set(b)
      const inA = new Set(a)
      const onlyLive = a.filter((r) => !inB.has(r))
      const onlyRebuilt = b.filter((r) => !inA.has(r))
      for (const r of onlyLive.slice(0, 3)) differences.push(`${table}: only live: ${r}`)
      for (const r of onlyRebuilt.slice(0, 3)) differences.push(`${table}: only rebuilt: ${r}`)
      if (onlyLive.length + onlyRebuilt.length > 6)
        differences.push(`${table}: ${onlyLive.length} rows only live, ${onlyRebuilt.length} only rebuilt`)
    }
  } finally {
    live.close()
    rebuilt.close()
  }
  return { differences, rows }
}

async function inParallel<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await fn(items[next++])
    }),
  )
}

export async function runCrashTrial(options: CrashTrialOptions): Promise<CrashFindings> {
  const started = performance.now()
  const log = options.log ?? (() => {})
  const random = prng(options.seed)
  const dir = mkdtempSync(join(tmpdir(), 'auth-crash-'))
  const dataDir = join(dir, 'data')
  const logFile = join(dir, 'server.log')
  const port = await freePort()
  const failures: CrashFindings['failures'] = {
    startup: [],
    unexpectedResponses: [],
    missingUsers: [],
    lockState: [],
    logins: [],
    revokedSessionsWork: [],
    liveSessionsBroken: [],
    duplicateIds: [],
    readModels: [],
    hashChains: [],
    shutdown: [],
    serverErrors: [],
  }
  const restartReadyMs: number[] = []
  let kills = 0
  let startupKills = 0
  let server = spawnServer({ dataDir, port, logFile })
  const clients: { child: ChildProcess; out: string; exited: Promise<number | null> }[] = []
  const checked = { users: 0, liveSessions: 0, revokedSessions: 0, readModelRows: 0 }
  let lines: Ack[] = []
  const phases = { loadSeconds: 0, checkSeconds: 0, rebuildSeconds: 0 }
  let mark = performance.now()
  const lap = (): number => {
    const now = performance.now()
    const seconds = Math.round((now - mark) / 100) / 10
    mark = now
    return seconds
  }

  const finish = (): CrashFindings => {
    const count = (op: Ack['op']): number => lines.filter((l) => l.op === op).length
    const done = lines.filter((l): l is Extract<Ack, { op: 'done' }> => l.op === 'done')
    const problems = Object.entries(failures).flatMap(([proof, list]) => list.map((p) => `${proof}: ${p}`))
    if (problems.length === 0 && !options.keepDir) rmSync(dir, { recursive: true, force: true })
    return {
      seed: options.seed,
      dir,
      kills,
      startupKills,
      restartReadyMs: restartReadyMs.map(Math.round),
      acks: {
        registrations: count('register'),
        logins: count('login'),
        refreshes: count('refresh'),
        revocations: count('revoke'),
        reuseRevocations: count('reuse_revoked'),
        locks: count('lock'),
        unlocks: count('unlock'),
        uncertain: count('uncertain'),
      },
      requests: {
        answered: done.reduce((n, d) => n + d.answered, 0),
        refused: done.reduce((n, d) => n + d.refused, 0),
        lostAnswers: done.reduce((n, d) => n + d.lost_answers, 0),
      },
      checked,
      failures,
      problems,
      seconds: Math.round((performance.now() - started) / 100) / 10,
      phases,
    }
  }

  try {
    // The very first start (keys, secrets and databases being created) is killed at a random moment too.
    await sleep(Math.round(random() * 1500))
    server.child.kill('SIGKILL')
    await server.exited
    startupKills++
    server = spawnServer({ dataDir, port, logFile })
    await waitReady(server, 90_000)
    const boot = await fetch(`${server.url}/admin/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-bootstrap-token': BOOTSTRAP_TOKEN },
      body: JSON.stringify(ADMIN),
    })
    if (boot.status !== 200)
      throw new Error(`bootstrapping the admin failed: ${boot.status} ${await boot.text()}`)

    // Load from separate processes.
    for (let i = 0; i < options.clients; i++) {
      const out = join(dir, `acks-${i}.jsonl`)
      const clientOptions: ClientOptions = {
        url: server.url,
        out,
        tag: `c${i}`,
        seed: options.seed * 1000 + i,
        workers: options.workersPerClient ?? 3,
        maxMs: options.durationMs + 180_000,
      }
      const child = spawn(process.execPath, [HARNESS, '--client', JSON.stringify(clientOptions)], {
        cwd: ROOT,
        stdio: ['pipe', 'ignore', 'pipe'],
      })
      let stderr = ''
      child.stderr?.on('data', (c: Buffer) => {
        stderr = (stderr + c.toString('utf8')).slice(-4000)
      })
      const exited = new Promise<number | null>((done) =>
        child.once('exit', (code) => {
          if (code !== 0) failures.unexpectedResponses.push(`client ${i} exited with ${code}: ${stderr}`)
          done(code)
        }),
      )
      clients.push({ child, out, exited })
    }

    // Kills at random moments: on average one per slot, the last slot left for load after the last restart.
    const slot = options.durationMs / (options.kills + 1)
    for (let k = 0; k < options.kills; k++) {
      await sleep(Math.round(slot * (0.3 + 1.4 * random())))
      server.child.kill('SIGKILL')
      await server.exited
      kills++
      log(`kill ${kills}/${options.kills}`)
      server = spawnServer({ dataDir, port, logFile })
      // Now and then the next kill lands while the restarted server is still catching up.
      if (random() < 0.25) {
        await sleep(Math.round(random() * 250))
        if (server.child.exitCode === null) {
          server.child.kill('SIGKILL')
          await server.exited
          startupKills++
          server = spawnServer({ dataDir, port, logFile })
        }
      }
      try {
        restartReadyMs.push(await waitReady(server, 90_000))
      } catch (error) {
        failures.startup.push(`restart after kill ${kills}: ${(error as Error).message}`)
        throw error
      }
    }
    await sleep(Math.round(slot))

    // Stop the load; every client finishes the request it is in.
    for (const client of clients) client.child.stdin?.end('stop\n')
    const clientsDone = await Promise.race([
      Promise.all(clients.map((c) => c.exited)).then(() => true),
      sleep(120_000).then(() => false),
    ])
    if (!clientsDone) failures.unexpectedResponses.push('clients did not stop within 120 s')
    lines = clients.flatMap((c) =>
      existsSync(c.out)
        ? readFileSync(c.out, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Ack)
        : [],
    )
    for (const line of lines) {
      if (line.op === 'unexpected')
        failures.unexpectedResponses.push(
          `${line.kind} answered ${line.status}: ${JSON.stringify(line.body)}`,
        )
    }

    phases.loadSeconds = lap()

    // The proofs, against the server that survived every kill.
    const { users, sessions, duplicates } = expectedState(lines)
    failures.duplicateIds.push(...duplicates)
    const url = server.url
    const admin = await httpCall(url, 'POST', '/admin/login', { json: ADMIN })
    if (!isAnswer(admin) || admin.status !== 200)
      throw new Error(`admin login failed: ${JSON.stringify(admin)}`)
    const adminToken = admin.body.access_token as string
    const listed = new Map<number, { username: string; is_locked: boolean }>()
    for (let skip = 0; ; skip += 1000) {
      const page = await httpCall(url, 'GET', `/admin/users?skip=${skip}&limit=1000`, { token: adminToken })
      if (!isAnswer(page) || page.status !== 200)
        throw new Error(`GET /admin/users failed: ${JSON.stringify(page)}`)
      for (const u of page.body as { id: number; username: string; is_locked: boolean }[]) {
        if (listed.has(u.id)) failures.duplicateIds.push(`user id ${u.id} listed twice`)
        listed.set(u.id, u)
      }
      if (page.body.length < 1000) break
    }
    const usernames = new Map<string, number>()
    for (const [id, u] of listed) {
      const key = u.username.toLowerCase()
      if (usernames.has(key))
        failures.duplicateIds.push(`username ${u.username} held by ${usernames.get(key)} and ${id}`)
      usernames.set(key, id)
    }

    await inParallel([...users.values()], 4, async (user) => {
      checked.users++
      const row = listed.get(user.id)
      if (!row || row.username !== user.username) {
        failures.missingUsers.push(
          `user ${user.id} (${user.username}) acknowledged, listed as ${JSON.stringify(row)}`,
        )
        return
      }
      if (!user.uncertain && row.is_locked !== user.locked)
        failures.lockState.push(`user ${user.id}: is_locked ${row.is_locked}, acknowledged ${user.locked}`)
      const reply = await httpCall(url, 'POST', '/auth/login', {
        form: { username: user.username, password: user.password },
      })
      const expected = user.uncertain ? [200, 423] : [user.locked ? 423 : 200]
      if (!isAnswer(reply) || !expected.includes(reply.status))
        failures.logins.push(
          `user ${user.id}: login answered ${JSON.stringify(reply)}, expected ${expected.join(' or ')}`,
        )
    })

    await inParallel(
      [...sessions.values()].filter((s) => !s.uncertain),
      8,
      async (session) => {
        if (session.revoked) {
          checked.revokedSessions++
          const denied = await httpCall(url, 'GET', '/protected', { token: session.access })
          if (!isAnswer(denied) || denied.status !== 401)
            failures.revokedSessionsWork.push(
              `session ${session.id}: access token answered ${JSON.stringify(denied)}`,
            )
          const reply = await httpCall(url, 'POST', '/auth/token-refresh', {
            json: { refresh_token: session.refresh },
          })
          if (!isAnswer(reply) || reply.status !== 401)
            failures.revokedSessionsWork.push(
              `session ${session.id}: refresh answered ${JSON.stringify(reply)}`,
            )
        } else {
          checked.liveSessions++
          const reply = await httpCall(url, 'POST', '/auth/token-refresh', {
            json: { refresh_token: session.refresh },
          })
          if (!isAnswer(reply) || reply.status !== 200) {
            failures.liveSessionsBroken.push(
              `session ${session.id}: refresh answered ${JSON.stringify(reply)}`,
            )
            return
          }
          const hello = await httpCall(url, 'GET', '/protected', { token: reply.body.access_token })
          if (!isAnswer(hello) || hello.status !== 200 || hello.body.user_id !== session.userId)
            failures.liveSessionsBroken.push(
              `session ${session.id}: new access token answered ${JSON.stringify(hello)}`,
            )
        }
      },
    )

    phases.checkSeconds = lap()

    // A graceful stop, then the read models against a rebuild from the events.
    const exit = await stopServer(server, 'SIGTERM')
    if (exit.code !== 0 || exit.timedOut)
      failures.shutdown.push(
        `SIGTERM after the trial: ${JSON.stringify(exit)}\n${server.output().slice(-2000)}`,
      )
    const copy = join(dir, 'rebuilt')
    cpSync(dataDir, copy, { recursive: true })
    const rebuild = await runAuditCli(copy, ['rebuild'])
    if (rebuild.code !== 0)
      failures.readModels.push(`audit rebuild exited ${rebuild.code}: ${rebuild.stderr}`)
    else {
      const { differences, rows } = compareReadModels(
        join(dataDir, 'read-models.db'),
        join(copy, 'read-models.db'),
      )
      checked.readModelRows = rows
      failures.readModels.push(...differences)
    }
    const verify = await runAuditCli(dataDir, ['verify'])
    let verdict: { ok?: boolean; chains?: { events_checked?: number } } = {}
    try {
      verdict = JSON.parse(verify.stdout)
    } catch {}
    if (verify.code !== 0 || verdict.ok !== true)
      failures.hashChains.push(
        `audit verify exited ${verify.code}: ${verify.stdout.slice(0, 2000)} ${verify.stderr}`,
      )
    phases.rebuildSeconds = lap()
    for (const line of readFileSync(logFile, 'utf8').split('\n')) {
      if (line.includes('"level":"error"') || /unhandled|uncaught/i.test(line))
        failures.serverErrors.push(line.slice(0, 500))
    }
    return finish()
  } catch (error) {
    failures.startup.push(`trial aborted: ${(error as Error).stack ?? String(error)}`)
    return finish()
  } finally {
    for (const c of clients) if (c.child.exitCode === null) c.child.kill('SIGKILL')
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL')
  }
}

/** One line per figure, for the command line. */
export function formatFindings(f: CrashFindings): string {
  const lines = [
    `seed ${f.seed}: ${f.kills} kills under load (+${f.startupKills} during startup) in ${f.seconds} s ` +
      `(load ${f.phases.loadSeconds} s, checks ${f.phases.checkSeconds} s, stop/rebuild/verify ${f.phases.rebuildSeconds} s)`,
    `restarts ready after (ms): ${f.restartReadyMs.join(', ')}`,
    `client requests answered ${f.requests.answered}, refused while down ${f.requests.refused}, ` +
      `answers lost to kills ${f.requests.lostAnswers}`,
    `acknowledged: ${Object.entries(f.acks)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    `checked: ${f.checked.users} users (listed, lock state, login), ${f.checked.liveSessions} live sessions rotate, ` +
      `${f.checked.revokedSessions} revoked sessions refused, ${f.checked.readModelRows} read-model rows equal a rebuild`,
  ]
  for (const [proof, list] of Object.entries(f.failures))
    lines.push(`${list.length === 0 ? 'PASS' : 'FAIL'} ${proof}${list.length ? `: ${list.length}` : ''}`)
  for (const p of f.problems.slice(0, 40)) lines.push(`  ${p}`)
  if (f.problems.length > 0) lines.push(`trial directory kept: ${f.dir}`)
  return lines.join('\n')
}

if (process.argv[2] === '--client' && process.argv[1] && resolve(process.argv[1]) === HARNESS) {
  runClient(JSON.parse(process.argv[3] ?? '{}') as ClientOptions).catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
