/**
 * The cluster proof (issue 12): N real service processes (`node src/main.ts`, each with its own
 * DATA_DIR) on one PostgreSQL database, sharing MASTER_KEY, UNIQUENESS_SECRET and the signing key.
 * In-process clients spread registrations, logins, token checks and refreshes over the instances
 * at random while one instance is killed with SIGKILL and restarted on its DATA_DIR and port
 * (requests to it during the outage fail: they are counted, not held against the run). Afterwards:
 *
 *   - every acknowledged registration exists exactly once on every instance, no username or email twice;
 *   - a token issued by any instance works on every other;
 *   - a session revoked, or an account locked, deactivated or deleted, on one instance is refused
 *     by every other within a bound (the delay until each answers 401 is measured, polling every
 *     5 ms: p50/p99 per kind); its refresh token and (but for a revocation) its password are
 *     refused there too;
 *   - a 2FA challenge works once: sent at the same moment to every instance, each time with
 *     another valid recovery code, exactly one answers 200 and the others 401;
 *   - a TOTP code works once: sent at the same moment to every instance (each with a challenge
 *     of its own) exactly one answers 200; used on one instance, the others refuse it (401) while
 *     their challenge still works with a recovery code;
 *   - 50 parallel wrong passwords spread over the instances give exactly 5 × 401, then 423;
 *   - two admins on two instances deactivating each other at once leave at least one admin;
 *   - an erased account's history shows "[erased]" on every instance;
 *   - `/admin/audit/verify?full=true` is ok on every instance;
 *   - every instance's read models equal a fresh rebuild from the store
 *     (harness/cluster-rebuild.ts): what it serves (the full user listing, and the sessions and activity of
 *     sampled users) while running, and every table of its read-models.db once stopped.
 *
 *   runClusterProof({ instances, seconds, seed }) → ClusterFindings (`checks` all ok = passed)
 *
 * Used by scripts/cluster.ts (`npm run cluster`) and test/e2e/cluster.test.ts. Imports no vitest.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { setTimeout as sleep } from 'node:timers/promises'
import { MAX_CONSECUTIVE_FAILURES } from '../domain/lockout.ts'
import { toSessionResponse, toUserResponse } from '../src/api/presenters.ts'
import { prng, requestParts } from './client.ts'
import { openRebuild } from './cluster-rebuild.ts'
import { compareReadModels } from './oracle.ts'
import { sharedInstanceSettings, startTestPostgres, stopTestPostgres } from './postgres.ts'
import {
  BOOTSTRAP_TOKEN,
  freePort,
  type ServerProcess,
  spawnServer,
  stopServer,
  waitReady,
} from './server.ts'
import { TOTP_PERIOD_MS, totp } from './totp.ts'

export type ClusterOptions = {
  instances: number
  /** Length of the load phase (the kill and restart happen inside it). */
  seconds: number
  seed: number
  /** Concurrent client loops during the load phase. */
  workers?: number
  /** Trials per kind (revoke, lock, deactivate, delete) for the propagation delays. */
  delayTrials?: number
  /** How long another instance may take to refuse a revoked session or stopped account (ms). */
  propagationBoundMs?: number
  /** Trials of each single-use 2FA check (challenge, concurrent TOTP code, TOTP code replayed). */
  twoFactorTrials?: number
  /** Users whose sessions and activity are compared with the rebuild on every instance. */
  sampledUsers?: number
  /** Stop the embedded PostgreSQL at the end (scripts: it keeps the process alive). */
  stopPostgres?: boolean
  log?: (line: string) => void
}

export type Check = { name: string; ok: boolean; detail: string }

export const DELAY_KINDS = ['revoke', 'lock', 'deactivate', 'delete'] as const
export type DelayKind = (typeof DELAY_KINDS)[number]
const DELAY_CHECK: Record<DelayKind, string> = {
  revoke: 'revoked session refused everywhere',
  lock: 'locked account refused everywhere',
  deactivate: 'deactivated account refused everywhere',
  delete: 'deleted account refused everywhere',
}
/** What a password login answers on another instance once the account is stopped. */
const LOGIN_REFUSED: Record<Exclude<DelayKind, 'revoke'>, number> = {
  lock: 423,
  deactivate: 403,
  delete: 401,
}

export type ClusterFindings = {
  instances: number
  seconds: number
  seed: number
  checks: Check[]
  load: {
    requests: number
    byOp: Record<string, number>
    outageFailures: number
    /** Answered 503 (not ready, or read-your-writes wait ran out): counted, not failed. */
    unavailable: number
    registrations: number
    killedInstance: number
    restartMs: number
  }
  /** ms from the write's answer until another instance answered 401. */
  delays: Record<DelayKind, number[]>
  /** The reference rebuild: events replayed and the position reached. */
  rebuild: { events: number; position: string }
  durationMs: number
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies are read loosely
type Reply = { status: number; body: any; position: string | null }
type Failed = { error: string }

async function request(
  base: string,
  method: string,
  path: string,
  options: {
    json?: unknown
    form?: Record<string, string>
    token?: string
    position?: string | null
    timeoutMs?: number
  } = {},
): Promise<Reply | Failed> {
  const { headers, body } = requestParts(options)
  if (options.position) headers['x-consistency-position'] = options.position
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
    return { status: response.status, body: parsed, position: response.headers.get('x-consistency-position') }
  } catch (error) {
    return { error: String((error as Error).message) }
  }
}

const answered = (reply: Reply | Failed): reply is Reply => 'status' in reply
const sessionIdOf = (refreshToken: string): number => Number(refreshToken.slice(0, refreshToken.indexOf('.')))

/** The audit's record of the last tree head it verified in a read-model file, if any. */
function lastVerifiedHead(path: string): { tree_size: number; root_hash: string } | null {
  const db = new DatabaseSync(path, { readOnly: true })
  try {
    const row = db.prepare('SELECT tree_size, root_hash FROM merkle_verified WHERE id = 1').get()
    return (row as { tree_size: number; root_hash: string } | undefined) ?? null
  } finally {
    db.close()
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number
}

type Instance = { index: number; port: number; dataDir: string; server: ServerProcess; url: string }
type User = { id: number; username: string; email: string; password: string }
type Session = { user: User; access: string; refresh: string; issuedBy: number }

export async function runClusterProof(options: ClusterOptions): Promise<ClusterFindings> {
  const started = performance.now()
  const log = options.log ?? (() => {})
  const random = prng(options.seed)
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)] as T
  const checks: Check[] = []
  const check = (name: string, ok: boolean, detail: string): void => {
    checks.push({ name, ok, detail })
    log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`)
  }
  const root = mkdtempSync(join(tmpdir(), 'auth-cluster-'))
  const pg = await startTestPostgres()
  const env = {
    ...sharedInstanceSettings(pg.url),
    CHECKPOINT_INTERVAL_MINUTES: '0',
    LOG_LEVEL: 'warn',
  }
  const nodes: Instance[] = []
  const findings: ClusterFindings = {
    instances: options.instances,
    seconds: options.seconds,
    seed: options.seed,
    checks,
    load: {
      requests: 0,
      byOp: {},
      outageFailures: 0,
      unavailable: 0,
      registrations: 0,
      killedInstance: -1,
      restartMs: 0,
    },
    delays: { revoke: [], lock: [], deactivate: [], delete: [] },
    rebuild: { events: 0, position: '0' },
    durationMs: 0,
  }
  /** The greatest position any write answered with: read-your-writes on every instance. */
  let position: string | null = null
  const noteWrite = (reply: Reply): void => {
    if (reply.position && (position === null || BigInt(reply.position) > BigInt(position))) {
      position = reply.position
    }
  }

  try {
    for (let i = 0; i < options.instances; i++) {
      const port = await freePort()
      const dataDir = join(root, `instance-${i}`)
      const server = spawnServer({ dataDir, port, env, logFile: join(root, `instance-${i}.log`) })
      nodes.push({ index: i, port, dataDir, server, url: server.url })
    }
    await Promise.all(nodes.map((node) => waitReady(node.server, 60_000)))
    log(`${nodes.length} instances ready on ${nodes.map((n) => n.port).join(', ')}`)
    const on = (i: number) => nodes[i % nodes.length] as Instance
    const call = async (
      i: number,
      method: string,
      path: string,
      opts: Parameters<typeof request>[3] = {},
    ): Promise<Reply> => {
      const reply = await request(on(i).url, method, path, { position, ...opts })
      if (!answered(reply))
        throw new Error(`${method} ${path} on instance ${i % nodes.length}: ${reply.error}`)
      if (reply.status < 300 && method !== 'GET') noteWrite(reply)
      return reply
    }

    // --- admins -------------------------------------------------------------------------------
    let adminCounter = 0
    const newAdmin = async (viaToken: string, i: number): Promise<User> => {
      adminCounter++
      const username = `cadmin${adminCounter}_${options.seed.toString(36)}`
      const admin = {
        username,
        email: `${username}@example.com`,
        password: `Adm1n-${randomBytes(6).toString('hex')}`,
      }
      const reply = await call(i, 'POST', '/admin/register', { json: admin, token: viaToken })
      if (reply.status !== 200)
        throw new Error(`admin register: ${reply.status} ${JSON.stringify(reply.body)}`)
      return { id: reply.body.id, ...admin }
    }
    const bootstrap = async (): Promise<User> => {
      adminCounter++
      const username = `cadmin${adminCounter}_${options.seed.toString(36)}`
      const admin = {
        username,
        email: `${username}@example.com`,
        password: `Adm1n-${randomBytes(6).toString('hex')}`,
      }
      const response = await fetch(`${on(0).url}/admin/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-bootstrap-token': BOOTSTRAP_TOKEN },
        body: JSON.stringify(admin),
      })
      const body = await response.json()
      if (response.status !== 200)
        throw new Error(`bootstrap admin: ${response.status} ${JSON.stringify(body)}`)
      noteWrite({ status: 200, body, position: response.headers.get('x-consistency-position') })
      return { id: body.id, ...admin }
    }
    const adminLogin = async (admin: User, i: number): Promise<string> => {
      const reply = await call(i, 'POST', '/admin/login', {
        json: { username: admin.username, password: admin.password },
      })
      if (reply.status !== 200) throw new Error(`admin login: ${reply.status} ${JSON.stringify(reply.body)}`)
      return reply.body.access_token
    }
    let admin = await bootstrap()
    let adminToken = await adminLogin(admin, 0)

    // --- load, with one SIGKILL and restart -----------------------------------------------------
    const acknowledged: User[] = []
    const sessions: Session[] = []
    const unexpected: string[] = []
    const count = (op: string): void => {
      findings.load.byOp[op] = (findings.load.byOp[op] ?? 0) + 1
      findings.load.requests++
    }
    let userCounter = 0
    const loadMs = options.seconds * 1000
    const loadEnd = performance.now() + loadMs
    const workerLoop = async (w: number): Promise<void> => {
      const mine: User[] = []
      const mySessions: Session[] = []
      while (performance.now() < loadEnd) {
        const i = Math.floor(random() * nodes.length)
        const roll = random()
        let op: string
        let reply: Reply | Failed
        if (mine.length === 0 || roll < 0.25) {
          op = 'register'
          userCounter++
          const username = `cu${w}n${userCounter}${options.seed.toString(36)}`
          const user = {
            username,
            email: `${username}@example.com`,
            password: `Cl4ster-${randomBytes(5).toString('hex')}-pw`,
          }
          reply = await request(on(i).url, 'POST', '/auth/register', { json: user, position })
          if (answered(reply)) {
            if (reply.status === 200) {
              noteWrite(reply)
              const created = { id: reply.body.id, ...user }
              mine.push(created)
              acknowledged.push(created)
            } else unexpected.push(`register ${reply.status} ${JSON.stringify(reply.body).slice(0, 200)}`)
          }
        } else if (mySessions.length === 0 || roll < 0.45) {
          op = 'login'
          const user = pick(mine)
          reply = await request(on(i).url, 'POST', '/auth/login', {
            form: { username: user.username, password: user.password },
            position,
          })
          if (answered(reply)) {
            if (reply.status === 200) {
              noteWrite(reply)
              const session = {
                user,
                access: reply.body.access_token,
                refresh: reply.body.refresh_token,
                issuedBy: i,
              }
              mySessions.push(session)
              sessions.push(session)
            } else unexpected.push(`login ${reply.status} ${JSON.stringify(reply.body).slice(0, 200)}`)
          }
        } else if (roll < 0.85) {
          op = 'protected'
          const session = pick(mySessions)
          reply = await request(on(i).url, 'GET', '/protected', { token: session.access, position })
          if (answered(reply) && (reply.status !== 200 || reply.body?.user_id !== session.user.id)) {
            unexpected.push(
              `protected on ${i} with a token of instance ${session.issuedBy}: ${reply.status} ${JSON.stringify(reply.body).slice(0, 200)}`,
            )
          }
        } else {
          op = 'refresh'
          const session = pick(mySessions)
          reply = await request(on(i).url, 'POST', '/auth/token-refresh', {
            json: { refresh_token: session.refresh },
            position,
          })
          if (answered(reply)) {
            if (reply.status === 200) {
              noteWrite(reply)
              session.access = reply.body.access_token
              session.refresh = reply.body.refresh_token
              session.issuedBy = i
            } else unexpected.push(`refresh ${reply.status} ${JSON.stringify(reply.body).slice(0, 200)}`)
          } else {
            // The rotation may have happened without us seeing the new token: leave this session.
            mySessions.splice(mySessions.indexOf(session), 1)
            sessions.splice(sessions.indexOf(session), 1)
          }
        }
        count(op)
        if (answered(reply) && reply.status === 503) {
          // Not ready yet (the restarted instance catching up, or a consistency wait that ran out):
          // a legitimate "try again", counted with the outage.
          unexpected.pop()
          findings.load.unavailable++
          await sleep(10)
        }
        if (!answered(reply)) {
          findings.load.outageFailures++
          await sleep(10)
        }
      }
    }
    const killer = async (): Promise<void> => {
      await sleep(loadMs * 0.35)
      const victim = on(1 + Math.floor(random() * (nodes.length - 1)))
      findings.load.killedInstance = victim.index
      log(`SIGKILL instance ${victim.index} (pid ${victim.server.pid})`)
      await stopServer(victim.server, 'SIGKILL')
      await sleep(Math.min(1500, loadMs * 0.1))
      const restartAt = performance.now()
      victim.server = spawnServer({
        dataDir: victim.dataDir,
        port: victim.port,
        env,
        logFile: join(root, `instance-${victim.index}.log`),
      })
      await waitReady(victim.server, 60_000)
      findings.load.restartMs = Math.round(performance.now() - restartAt)
      log(`instance ${victim.index} restarted and ready in ${findings.load.restartMs} ms`)
    }
    log(`load for ${options.seconds} s with ${options.workers ?? 6} workers`)
    await Promise.all([killer(), ...Array.from({ length: options.workers ?? 6 }, (_, w) => workerLoop(w))])
    findings.load.registrations = acknowledged.length
    log(
      `load done: ${findings.load.requests} requests (${JSON.stringify(findings.load.byOp)}), ${findings.load.outageFailures} failed during the outage`,
    )
    check(
      'load: every answered request as expected',
      unexpected.length === 0,
      unexpected.length === 0
        ? `${findings.load.requests - findings.load.outageFailures} answered (${findings.load.unavailable} × 503), ${findings.load.outageFailures} failed (outage)`
        : `${unexpected.length} unexpected: ${unexpected.slice(0, 3).join(' | ')}`,
    )
    // The restarted instance's admin token still works (one key), but log in afresh anyway.
    adminToken = await adminLogin(admin, 0)

    // --- every acknowledged registration exactly once, no username or email twice --------------
    for (const node of nodes) {
      const users: { id: number; username: string; email: string }[] = []
      let after = 0
      for (;;) {
        const page = await call(node.index, 'GET', `/admin/users?limit=1000&after_id=${after}`, {
          token: adminToken,
        })
        if (page.status !== 200)
          throw new Error(`GET /admin/users: ${page.status} ${JSON.stringify(page.body)}`)
        users.push(...page.body)
        if (page.body.length < 1000) break
        after = page.body.at(-1).id
      }
      const byName = new Map<string, number>()
      const byEmail = new Map<string, number>()
      for (const u of users) {
        byName.set(u.username.toLowerCase(), (byName.get(u.username.toLowerCase()) ?? 0) + 1)
        byEmail.set(u.email.toLowerCase(), (byEmail.get(u.email.toLowerCase()) ?? 0) + 1)
      }
      const twice = [...byName, ...byEmail].filter(([, n]) => n > 1).map(([v]) => v)
      const missing = acknowledged.filter(
        (a) =>
          users.filter((u) => u.id === a.id && u.username === a.username && u.email === a.email).length !== 1,
      )
      check(
        `registrations on instance ${node.index}`,
        missing.length === 0 && twice.length === 0,
        `${acknowledged.length} acknowledged, ${users.length} listed; ${missing.length} missing or wrong, ${twice.length} held twice${missing.length ? `: ${missing.slice(0, 3).map((m) => m.username)}` : ''}${twice.length ? `: ${twice.slice(0, 3)}` : ''}`,
      )
    }

    // --- tokens from every instance work on every other ----------------------------------------
    {
      const failures: string[] = []
      const probe = [...sessions]
      for (let i = 0; i < nodes.length; i++) {
        const user = acknowledged[i % acknowledged.length] as User
        const reply = await call(i, 'POST', '/auth/login', {
          form: { username: user.username, password: user.password },
        })
        if (reply.status !== 200) failures.push(`login on ${i}: ${reply.status}`)
        else
          probe.push({
            user,
            access: reply.body.access_token,
            refresh: reply.body.refresh_token,
            issuedBy: i,
          })
      }
      let checked = 0
      for (const session of probe) {
        for (const node of nodes) {
          const reply = await call(node.index, 'GET', '/protected', { token: session.access })
          checked++
          if (reply.status !== 200 || reply.body?.user_id !== session.user.id) {
            failures.push(`token of ${session.issuedBy} on ${node.index}: ${reply.status}`)
          }
        }
      }
      const issuers = new Set(probe.map((s) => s.issuedBy))
      check(
        'tokens work on every instance',
        failures.length === 0 && issuers.size === nodes.length,
        `${probe.length} tokens from instances ${[...issuers].sort().join(',')} × ${nodes.length} instances = ${checked} checks, ${failures.length} refused${failures.length ? `: ${failures.slice(0, 3).join(' | ')}` : ''}`,
      )
    }

    // --- revocation, lock, deactivation and deletion propagate: measured delays ----------------
    const trials = options.delayTrials ?? 10
    const boundMs = options.propagationBoundMs ?? 5_000
    const untilRefused = async (token: string, others: number[], from: number): Promise<number[]> =>
      Promise.all(
        others.map(async (j) => {
          for (;;) {
            const reply = await request(on(j).url, 'GET', '/protected', { token })
            if (answered(reply) && reply.status === 401) return performance.now() - from
            if (performance.now() - from > boundMs) return Number.POSITIVE_INFINITY
            await sleep(5)
          }
        }),
      )
    const newUser = async (tag: string, i: number): Promise<User> => {
      userCounter++
      const username = `c${tag}${userCounter}${options.seed.toString(36)}`
      const user = {
        username,
        email: `${username}@example.com`,
        password: `Cl4ster-${randomBytes(5).toString('hex')}-pw`,
      }
      const reg = await call(i, 'POST', '/auth/register', { json: user })
      if (reg.status !== 200) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.body)}`)
      return { id: reg.body.id, ...user }
    }
    const loginOn = async (user: User, i: number): Promise<Reply> =>
      call(i, 'POST', '/auth/login', { form: { username: user.username, password: user.password } })
    const freshSession = async (tag: string, i: number): Promise<Session> => {
      const user = await newUser(tag, i)
      const reply = await loginOn(user, i)
      if (reply.status !== 200) throw new Error(`login: ${reply.status} ${JSON.stringify(reply.body)}`)
      // Every instance knows the session before the revocation: the measured delay is the
      // revocation's own, not the session's arrival.
      for (const node of nodes)
        await call(node.index, 'GET', '/protected', { token: reply.body.access_token })
      return { user, access: reply.body.access_token, refresh: reply.body.refresh_token, issuedBy: i }
    }
    const stop = (kind: DelayKind, i: number, session: Session): Promise<Reply> => {
      const id = session.user.id
      switch (kind) {
        case 'revoke':
          return call(i, 'DELETE', `/auth/sessions/${sessionIdOf(session.refresh)}`, {
            token: session.access,
          })
        case 'lock':
          return call(i, 'POST', '/admin/lock', { token: adminToken, json: { user_id: id } })
        case 'deactivate':
          return call(i, 'PUT', `/admin/deactivate-user/${id}`, { token: adminToken })
        case 'delete':
          return call(i, 'DELETE', `/admin/user/${id}`, { token: adminToken })
      }
    }
    for (const kind of DELAY_KINDS) {
      const neverRefused: string[] = []
      const notRefusedOtherwise: string[] = []
      let refusedOtherwise = 0
      for (let t = 0; t < trials; t++) {
        const i = t % nodes.length
        const session = await freshSession(kind, i)
        const others = nodes.map((n) => n.index).filter((j) => j !== i)
        const reply = await stop(kind, i, session)
        if (reply.status !== 200) throw new Error(`${kind}: ${reply.status} ${JSON.stringify(reply.body)}`)
        const delays = await untilRefused(session.access, others, performance.now())
        for (const [k, d] of delays.entries()) {
          if (Number.isFinite(d)) findings.delays[kind].push(d)
          else neverRefused.push(`trial ${t}: instance ${others[k]}`)
        }
        // The refresh token and the password are decided on the store: refused at once elsewhere.
        const j = others[t % others.length] as number
        const problemsBefore = notRefusedOtherwise.length
        const refreshed = await call(j, 'POST', '/auth/token-refresh', {
          json: { refresh_token: session.refresh },
        })
        if (refreshed.status !== 401)
          notRefusedOtherwise.push(`trial ${t}: refresh on ${j} answered ${refreshed.status}`)
        if (kind !== 'revoke') {
          const login = await loginOn(session.user, j)
          if (login.status !== LOGIN_REFUSED[kind])
            notRefusedOtherwise.push(
              `trial ${t}: login on ${j} answered ${login.status}, not ${LOGIN_REFUSED[kind]}`,
            )
        }
        if (notRefusedOtherwise.length === problemsBefore) refusedOtherwise++
      }
      const d = findings.delays[kind]
      const also = kind === 'revoke' ? 'refresh → 401' : `refresh → 401, login → ${LOGIN_REFUSED[kind]}`
      check(
        DELAY_CHECK[kind],
        neverRefused.length === 0 &&
          notRefusedOtherwise.length === 0 &&
          d.length === trials * (nodes.length - 1),
        `${d.length} measurements, p50 ${percentile(d, 50).toFixed(1)} ms, p99 ${percentile(d, 99).toFixed(1)} ms, max ${Math.max(...d).toFixed(1)} ms (bound ${boundMs} ms); ${also} on another instance: ${refusedOtherwise} of ${trials}${neverRefused.length ? `; never refused: ${neverRefused.slice(0, 3).join(', ')}` : ''}${notRefusedOtherwise.length ? `; ${notRefusedOtherwise.slice(0, 3).join(', ')}` : ''}`,
      )
    }

    // --- single use of 2FA challenges and TOTP codes, cluster-wide ----------------------------
    {
      const tfaTrials = options.twoFactorTrials ?? 3
      const currentStep = (): number => Math.floor(Date.now() / TOTP_PERIOD_MS)
      /** A user with 2FA on: enrolment started on instance i, confirmed on the next one. */
      const enrol = async (tag: string, i: number) => {
        const user = await newUser(tag, i)
        const login = await loginOn(user, i)
        if (login.status !== 200) throw new Error(`login: ${login.status} ${JSON.stringify(login.body)}`)
        const token = login.body.access_token as string
        const setup = await call(i, 'GET', '/auth/generate-2fa-code', { token })
        if (setup.status !== 200)
          throw new Error(`generate-2fa-code: ${setup.status} ${JSON.stringify(setup.body)}`)
        const secret = setup.body.secret as string
        // The code of the current step: it becomes the last used step, so the next step's code
        // (valid for the next 30 s or more, the service accepting ±1 step) is fresh.
        const step = currentStep()
        const enabled = await call(i + 1, 'POST', '/auth/enable-2fa', {
          token,
          json: { code: totp(secret, step) },
        })
        if (enabled.status !== 200)
          throw new Error(`enable-2fa: ${enabled.status} ${JSON.stringify(enabled.body)}`)
        return {
          user,
          secret,
          recovery: enabled.body.recovery_codes as string[],
          nextCode: totp(secret, step + 1),
        }
      }
      const challengeOn = async (user: User, i: number): Promise<string> => {
        const reply = await loginOn(user, i)
        if (reply.status !== 200 || reply.body?.requires_2fa !== true)
          throw new Error(`2FA login on ${i}: ${reply.status} ${JSON.stringify(reply.body)}`)
        return reply.body.access_token
      }
      const verify = (i: number, challenge: string, code: string): Promise<Reply> =>
        call(i, 'POST', '/auth/verify-2fa', { token: challenge, json: { code } })
      const tally = (statuses: number[]): string => {
        const counts = new Map<number, number>()
        for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1)
        return [...counts]
          .sort((a, b) => a[0] - b[0])
          .map(([s, n]) => `${n} × ${s}`)
          .join(', ')
      }
      const oneWinner =
        (refusals: number[]) =>
        (statuses: number[]): boolean =>
          statuses.filter((s) => s === 200).length === 1 &&
          statuses.every((s) => s === 200 || refusals.includes(s))

      // One challenge, sent at once to every instance with a different valid recovery code each:
      // only the challenge's single use can refuse all but one.
      const challengeRounds: number[][] = []
      for (let t = 0; t < tfaTrials; t++) {
        const u = await enrol('tfa', t)
        const challenge = await challengeOn(u.user, t)
        const replies = await Promise.all(
          nodes.map((node) => verify(node.index, challenge, u.recovery[node.index] as string)),
        )
        challengeRounds.push(replies.map((r) => r.status))
      }
      check(
        '2FA challenge works once across instances',
        challengeRounds.every(oneWinner([401])),
        `one challenge sent to all ${nodes.length} instances at once, each with another valid recovery code, ${tfaTrials} trials: ${challengeRounds.filter(oneWinner([401])).length} with exactly one 200 (${tally(challengeRounds.flat())})${challengeRounds.every(oneWinner([401])) ? '' : `; per trial: ${challengeRounds.map((r) => r.join('/')).join(', ')}`}`,
      )

      // One TOTP code, sent at once to every instance, each with a challenge of its own.
      const codeRounds: number[][] = []
      for (let t = 0; t < tfaTrials; t++) {
        const u = await enrol('tfb', t + 1)
        const challenges: string[] = []
        for (const node of nodes) challenges.push(await challengeOn(u.user, node.index))
        const replies = await Promise.all(
          nodes.map((node) => verify(node.index, challenges[node.index] as string, u.nextCode)),
        )
        codeRounds.push(replies.map((r) => r.status))
      }
      const codeOnce = oneWinner([401])
      check(
        'TOTP code works once across instances (sent at once)',
        codeRounds.every(codeOnce),
        `one code sent to all ${nodes.length} instances at once, each with a challenge of its own, ${tfaTrials} trials: ${codeRounds.filter(codeOnce).length} with exactly one 200 (${tally(codeRounds.flat())})${codeRounds.every(codeOnce) ? '' : `; per trial: ${codeRounds.map((r) => r.join('/')).join(', ')}`}`,
      )

      // A TOTP code used on one instance, then presented to every other with an unused challenge:
      // refused there, while that challenge still works with a recovery code (so it was the code).
      const replayProblems: string[] = []
      let replays = 0
      for (let t = 0; t < tfaTrials; t++) {
        const u = await enrol('tfc', t + 2)
        const challenges: string[] = []
        for (const node of nodes) challenges.push(await challengeOn(u.user, node.index))
        const first = t % nodes.length
        const used = await verify(first, challenges[first] as string, u.nextCode)
        if (used.status !== 200) {
          replayProblems.push(`trial ${t}: first use on ${first} answered ${used.status}`)
          continue
        }
        const others = nodes.map((n) => n.index).filter((j) => j !== first)
        for (const j of others) {
          const replay = await verify(j, challenges[j] as string, u.nextCode)
          replays++
          if (replay.status !== 401)
            replayProblems.push(`trial ${t}: replay on ${j} answered ${replay.status}`)
        }
        const control = others[t % others.length] as number
        const recovered = await verify(control, challenges[control] as string, u.recovery[0] as string)
        if (recovered.status !== 200)
          replayProblems.push(
            `trial ${t}: the challenge refused with the code on ${control} answered ${recovered.status} to a recovery code`,
          )
      }
      check(
        'TOTP code used on one instance refused on the others',
        replayProblems.length === 0,
        `${tfaTrials} codes used once each, then replayed on the ${nodes.length - 1} other instances: ${replays} replays${replayProblems.length ? `; ${replayProblems.slice(0, 4).join(', ')}` : ', all 401; the same challenges then accepted a recovery code'}`,
      )
    }

    // --- 50 parallel wrong passwords, one client, spread over the instances --------------------
    {
      const session = await freshSession('throttle', 0)
      const replies = await Promise.all(
        Array.from({ length: 50 }, (_, k) =>
          call(k, 'POST', '/auth/login', {
            form: { username: session.user.username, password: `wrong-${k}-pw` },
          }),
        ),
      )
      const statuses = replies.map((r) => r.status)
      const n401 = statuses.filter((s) => s === 401).length
      const n423 = statuses.filter((s) => s === 423).length
      check(
        '50 parallel wrong passwords: 5 × 401 then 423',
        n401 === MAX_CONSECUTIVE_FAILURES && n423 === 50 - MAX_CONSECUTIVE_FAILURES,
        `${n401} × 401, ${n423} × 423${n401 + n423 < 50 ? `, others: ${statuses.filter((s) => s !== 401 && s !== 423)}` : ''}`,
      )
    }

    // --- erasure visible on every instance ----------------------------------------------------
    {
      const session = await freshSession('erase', 1)
      const deleted = await call(1, 'DELETE', `/admin/user/${session.user.id}`, { token: adminToken })
      if (deleted.status !== 200) throw new Error(`delete: ${deleted.status} ${JSON.stringify(deleted.body)}`)
      const problems: string[] = []
      for (const node of nodes) {
        const history = await call(node.index, 'GET', `/admin/users/${session.user.id}/history`, {
          token: adminToken,
        })
        const text = JSON.stringify(history.body)
        // biome-ignore lint/suspicious/noExplicitAny: audit events read loosely
        const registered = (history.body as any[])?.find?.((e) => e.type === 'AccountRegistered')?.data
        if (
          history.status !== 200 ||
          text.includes(session.user.username) ||
          text.includes(session.user.email) ||
          registered?.username !== '[erased]' ||
          registered?.email !== '[erased]'
        ) {
          problems.push(`instance ${node.index}: ${history.status} ${text.slice(0, 200)}`)
        }
      }
      check(
        'erased personal data on every instance',
        problems.length === 0,
        problems.length === 0
          ? `history of user ${session.user.id} shows "[erased]" on all ${nodes.length}`
          : problems.join(' | '),
      )
    }

    // --- two admins on two instances deactivate each other at once ----------------------------
    {
      const rounds = 3
      const outcomes: string[] = []
      let allOk = true
      for (let r = 0; r < rounds; r++) {
        const other = await newAdmin(adminToken, 0)
        const [tokenA, tokenB] = await Promise.all([adminLogin(admin, 0), adminLogin(other, 1)])
        const [a, b] = await Promise.all([
          call(0, 'PUT', `/admin/deactivate-user/${other.id}`, { token: tokenA }),
          call(1, 'PUT', `/admin/deactivate-user/${admin.id}`, { token: tokenB }),
        ])
        let survivors: User[] = []
        for (const node of nodes) {
          const candidate = a.status === 200 ? admin : other
          const token = await adminLogin(candidate, node.index).catch(() => null)
          const listed = token
            ? await call(node.index, 'GET', '/admin/users?role=admin&limit=1000', { token })
            : null
          const active = (
            listed?.status === 200 ? (listed.body as { id: number; is_active: boolean }[]) : []
          ).filter((u) => u.is_active)
          survivors = [admin, other].filter((x) => active.some((u) => u.id === x.id))
          if (active.length < 1 || survivors.length < 1) allOk = false
        }
        outcomes.push(`${a.status}/${b.status}→${survivors.length} left`)
        if (survivors.length === 0) break
        admin = survivors[0] as User
        adminToken = await adminLogin(admin, 0)
      }
      check(
        'two admins removing each other leave an admin',
        allOk,
        `${outcomes.length} rounds (status A/B → admins of the pair left): ${outcomes.join(', ')}`,
      )
    }

    // --- every instance verifies the whole log ------------------------------------------------
    {
      const results: string[] = []
      let ok = true
      for (const node of nodes) {
        const reply = await call(node.index, 'GET', '/admin/audit/verify?full=true', { token: adminToken })
        if (reply.status !== 200 || reply.body?.ok !== true) ok = false
        results.push(
          reply.status === 200
            ? `${reply.body.ok ? 'ok' : 'BROKEN'} ${reply.body.events_checked} events`
            : `${reply.status}`,
        )
      }
      check('audit verify full=true on every instance', ok, results.join('; '))
    }

    // --- every instance's read models equal a fresh rebuild from the store ---------------------
    {
      const rebuild = await openRebuild(env, join(root, 'rebuild'))
      try {
        await rebuild.settle()
        const head = rebuild.position.toString()
        findings.rebuild = { events: rebuild.events, position: head }
        log(`rebuild from the store: ${rebuild.events} events, position ${head}`)
        const canonical = (value: unknown): string =>
          JSON.stringify(value, (_key, v) =>
            v && typeof v === 'object' && !Array.isArray(v)
              ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
              : v,
          )
        /** The first difference of two lists of answers (the fields that differ), or null. */
        const firstDifference = (served: unknown[], rebuilt: unknown[]): string | null => {
          const a = served.map(canonical)
          const b = rebuilt.map(canonical)
          if (a.length === b.length && a.every((x, k) => x === b[k])) return null
          const k = a.findIndex((x, n) => x !== b[n])
          const at = k < 0 ? Math.min(a.length, b.length) : k
          const x = served[at] as Record<string, unknown> | undefined
          const y = rebuilt[at] as Record<string, unknown> | undefined
          const fields =
            x && y && typeof x === 'object' && typeof y === 'object'
              ? Object.keys({ ...x, ...y })
                  .filter((f) => canonical(x[f]) !== canonical(y[f]))
                  .map((f) => `${f} ${canonical(x[f])} vs ${canonical(y[f])}`)
                  .join(', ')
              : `${(a[at] ?? '-').slice(0, 150)} vs ${(b[at] ?? '-').slice(0, 150)}`
          return `${a.length} served, ${b.length} rebuilt; first difference at #${at}${x && typeof x === 'object' && 'id' in x ? ` (id ${x.id})` : ''}: ${fields}`
        }
        // Users with a session whose token still works, one session each, spread over the load.
        const sampled: Session[] = []
        const seen = new Set<number>()
        for (const session of sessions) {
          if (sampled.length >= (options.sampledUsers ?? 25) || seen.has(session.user.id)) continue
          seen.add(session.user.id)
          sampled.push(session)
        }
        const served = new Map<number, string[]>()
        let sessionsCompared = 0
        let activityCompared = 0
        for (const node of nodes) {
          const problems: string[] = []
          // What it serves, once its read models have passed the rebuild's position.
          const users: unknown[] = []
          let after = 0
          for (;;) {
            const page = await call(node.index, 'GET', `/admin/users?limit=1000&after_id=${after}`, {
              token: adminToken,
              position: head,
            })
            if (page.status !== 200) {
              problems.push(`GET /admin/users: ${page.status} ${JSON.stringify(page.body).slice(0, 200)}`)
              break
            }
            users.push(...page.body)
            if (page.body.length < 1000) break
            after = page.body.at(-1).id
          }
          const now = new Date()
          const expectedUsers = rebuild.queries
            .listUsers({ skip: 0, limit: 1_000_000 })
            .map((u) => toUserResponse(u, now))
          const usersDiffer = firstDifference(users, expectedUsers)
          if (usersDiffer) problems.push(`users: ${usersDiffer}`)
          for (const session of sampled) {
            const sid = Number(
              JSON.parse(Buffer.from(session.access.split('.')[1] as string, 'base64url').toString()).sid,
            )
            const mine = await call(node.index, 'GET', '/auth/sessions', {
              token: session.access,
              position: head,
            })
            if (mine.status !== 200) {
              problems.push(`GET /auth/sessions of user ${session.user.id}: ${mine.status}`)
              continue
            }
            const sessionsDiffer = firstDifference(
              mine.body,
              rebuild.queries
                .activeSessions(session.user.id, new Date())
                .map((s) => toSessionResponse(s, sid)),
            )
            if (sessionsDiffer) problems.push(`sessions of user ${session.user.id}: ${sessionsDiffer}`)
            else sessionsCompared += mine.body.length
            const activity = await call(node.index, 'GET', '/auth/activity?limit=500', {
              token: session.access,
              position: head,
            })
            const activityDiffer =
              activity.status !== 200
                ? `${activity.status}`
                : firstDifference(activity.body, rebuild.queries.activity(session.user.id, 500))
            if (activityDiffer) problems.push(`activity of user ${session.user.id}: ${activityDiffer}`)
            else activityCompared += activity.body.length
          }
          served.set(node.index, problems)
          if (node === nodes[0])
            log(
              `instance 0 serves ${users.length} users; sessions and activity of ${sampled.length} users compared`,
            )
        }
        // What it stores, every table row by row, once stopped (a graceful stop writes nothing).
        await Promise.all(nodes.map((node) => stopServer(node.server, 'SIGTERM')))
        await rebuild.settle(100)
        for (const node of nodes) {
          const problems = served.get(node.index) ?? []
          const live = join(node.dataDir, 'read-models.db')
          const { differences, rows } = compareReadModels(live, rebuild.path)
          // merkle_verified is no projection of the log but the audit's record of the last tree
          // head it verified (a rebuild keeps it): it must be a head of the rebuilt tree.
          problems.push(...differences.filter((d) => !d.startsWith('merkle_verified')))
          const verified = lastVerifiedHead(live)
          if (verified && rebuild.rootAt(verified.tree_size) !== verified.root_hash)
            problems.push(
              `the verified tree head (size ${verified.tree_size}, root ${verified.root_hash.slice(0, 16)}…) is not one of the rebuilt tree (${rebuild.rootAt(verified.tree_size)?.slice(0, 16) ?? 'too small'}…)`,
            )
          check(
            `read models of instance ${node.index} equal a rebuild`,
            problems.length === 0,
            problems.length === 0
              ? `served: ${rebuild.queries.listUsers({ skip: 0, limit: 1_000_000 }).length} users, sessions and activity of ${sampled.length} users equal; stored: ${rows} rows equal at position ${rebuild.position}${verified ? `, verified tree head ${verified.tree_size} a head of the rebuilt tree` : ''}`
              : `${problems.length} differences: ${problems.slice(0, 4).join(' | ')}`,
          )
        }
        findings.rebuild = { events: rebuild.events, position: rebuild.position.toString() }
        log(`compared ${sessionsCompared} sessions and ${activityCompared} activity entries in all`)
      } finally {
        await rebuild.close()
      }
    }
  } catch (error) {
    check('run completed', false, (error as Error).stack ?? String(error))
    for (const node of nodes) log(`instance ${node.index} output:\n${node.server.output().slice(-2000)}`)
  } finally {
    await Promise.all(nodes.map((node) => stopServer(node.server, 'SIGTERM')))
    await pg.stop().catch(() => {})
    if (options.stopPostgres) await stopTestPostgres().catch(() => {})
    rmSync(root, { recursive: true, force: true })
  }
  findings.durationMs = Math.round(performance.now() - started)
  return findings
}

export function formatClusterFindings(f: ClusterFindings): string {
  const width = Math.max(...f.checks.map((c) => c.name.length))
  const lines = [
    `cluster proof: ${f.instances} instances on one PostgreSQL, ${f.seconds} s of load, seed ${f.seed}, ${(f.durationMs / 1000).toFixed(1)} s in all`,
    `load: ${f.load.requests} requests ${JSON.stringify(f.load.byOp)}, ${f.load.registrations} registrations acknowledged; instance ${f.load.killedInstance} SIGKILLed and ready again in ${f.load.restartMs} ms; ${f.load.outageFailures} requests failed during the outage, ${f.load.unavailable} answered 503`,
    `propagation to the other instances (ms): ${DELAY_KINDS.map((k) => `${k} p50 ${percentile(f.delays[k], 50).toFixed(1)} p99 ${percentile(f.delays[k], 99).toFixed(1)} (n=${f.delays[k].length})`).join('; ')}`,
    `rebuild from the store: ${f.rebuild.events} events to position ${f.rebuild.position}`,
    '',
    `${'check'.padEnd(width)}  result  detail`,
    `${'-'.repeat(width)}  ------  ------`,
    ...f.checks.map((c) => `${c.name.padEnd(width)}  ${c.ok ? 'PASS  ' : 'FAIL  '}  ${c.detail}`),
  ]
  return lines.join('\n')
}
