/**
 * The cluster proof (issue 12): N real service processes (`node src/main.ts`, each with its own
 * DATA_DIR) on one PostgreSQL database, sharing MASTER_KEY, UNIQUENESS_SECRET and the signing key.
 * In-process clients spread registrations, logins, token checks and refreshes over the instances
 * at random while one instance is killed with SIGKILL and restarted on its DATA_DIR and port
 * (requests to it during the outage fail: they are counted, not held against the run). Afterwards:
 *
 *   - every acknowledged registration exists exactly once on every instance, no username or email twice;
 *   - a token issued by any instance works on every other;
 *   - a session revoked, or an account locked, on one instance is refused by every other
 *     (the delay until each answers 401 is measured, polling every 5 ms: p50/p99);
 *   - 50 parallel wrong passwords spread over the instances give exactly 5 × 401, then 423;
 *   - two admins on two instances deactivating each other at once leave at least one admin;
 *   - an erased account's history shows "[erased]" on every instance;
 *   - `/admin/audit/verify?full=true` is ok on every instance.
 *
 *   runClusterProof({ instances, seconds, seed }) → ClusterFindings (`checks` all ok = passed)
 *
 * Used by scripts/cluster.ts (`npm run cluster`) and test/e2e/cluster.test.ts. Imports no vitest.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { MAX_CONSECUTIVE_FAILURES } from '../../domain/lockout.ts'
import {
  BOOTSTRAP_TOKEN,
  freePort,
  prng,
  type ServerProcess,
  spawnServer,
  stopServer,
  waitReady,
} from './crash-harness.ts'
import { sharedInstanceSettings, startTestPostgres, stopTestPostgres } from './postgres.ts'

export type ClusterOptions = {
  instances: number
  /** Length of the load phase (the kill and restart happen inside it). */
  seconds: number
  seed: number
  /** Concurrent client loops during the load phase. */
  workers?: number
  /** Revocation and lock trials for the propagation delays. */
  delayTrials?: number
  /** Stop the embedded PostgreSQL at the end (scripts: it keeps the process alive). */
  stopPostgres?: boolean
  log?: (line: string) => void
}

export type Check = { name: string; ok: boolean; detail: string }

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
  delays: { revoke: number[]; lock: number[] }
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
    delays: { revoke: [], lock: [] },
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

    // --- revocation and lock propagate: measured delays ---------------------------------------
    const trials = options.delayTrials ?? 10
    const untilRefused = async (token: string, others: number[], from: number): Promise<number[]> =>
      Promise.all(
        others.map(async (j) => {
          for (;;) {
            const reply = await request(on(j).url, 'GET', '/protected', { token })
            if (answered(reply) && reply.status === 401) return performance.now() - from
            if (performance.now() - from > 10_000) return Number.POSITIVE_INFINITY
            await sleep(5)
          }
        }),
      )
    const freshSession = async (tag: string, i: number): Promise<Session> => {
      userCounter++
      const username = `c${tag}${userCounter}${options.seed.toString(36)}`
      const user = {
        username,
        email: `${username}@example.com`,
        password: `Cl4ster-${randomBytes(5).toString('hex')}-pw`,
      }
      const reg = await call(i, 'POST', '/auth/register', { json: user })
      if (reg.status !== 200) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.body)}`)
      const created = { id: reg.body.id, ...user }
      const reply = await call(i, 'POST', '/auth/login', { form: { username, password: user.password } })
      if (reply.status !== 200) throw new Error(`login: ${reply.status} ${JSON.stringify(reply.body)}`)
      // Every instance knows the session before the revocation: the measured delay is the
      // revocation's own, not the session's arrival.
      for (const node of nodes)
        await call(node.index, 'GET', '/protected', { token: reply.body.access_token })
      return {
        user: created,
        access: reply.body.access_token,
        refresh: reply.body.refresh_token,
        issuedBy: i,
      }
    }
    for (const kind of ['revoke', 'lock'] as const) {
      const neverRefused: string[] = []
      for (let t = 0; t < trials; t++) {
        const i = t % nodes.length
        const session = await freshSession(kind, i)
        const others = nodes.map((n) => n.index).filter((j) => j !== i)
        const reply =
          kind === 'revoke'
            ? await call(i, 'DELETE', `/auth/sessions/${sessionIdOf(session.refresh)}`, {
                token: session.access,
              })
            : await call(i, 'POST', '/admin/lock', { token: adminToken, json: { user_id: session.user.id } })
        if (reply.status !== 200) throw new Error(`${kind}: ${reply.status} ${JSON.stringify(reply.body)}`)
        const delays = await untilRefused(session.access, others, performance.now())
        for (const [k, d] of delays.entries()) {
          if (Number.isFinite(d)) findings.delays[kind].push(d)
          else neverRefused.push(`trial ${t}: instance ${others[k]}`)
        }
      }
      const d = findings.delays[kind]
      check(
        kind === 'revoke' ? 'revoked session refused everywhere' : 'locked account refused everywhere',
        neverRefused.length === 0,
        `${d.length} measurements, p50 ${percentile(d, 50).toFixed(1)} ms, p99 ${percentile(d, 99).toFixed(1)} ms, max ${Math.max(...d).toFixed(1)} ms${neverRefused.length ? `; never refused: ${neverRefused.slice(0, 3).join(', ')}` : ''}`,
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
    `propagation to the other instances (ms): revoke p50 ${percentile(f.delays.revoke, 50).toFixed(1)} p99 ${percentile(f.delays.revoke, 99).toFixed(1)} (n=${f.delays.revoke.length}); lock p50 ${percentile(f.delays.lock, 50).toFixed(1)} p99 ${percentile(f.delays.lock, 99).toFixed(1)} (n=${f.delays.lock.length})`,
    '',
    `${'check'.padEnd(width)}  result  detail`,
    `${'-'.repeat(width)}  ------  ------`,
    ...f.checks.map((c) => `${c.name.padEnd(width)}  ${c.ok ? 'PASS  ' : 'FAIL  '}  ${c.detail}`),
  ]
  return lines.join('\n')
}
