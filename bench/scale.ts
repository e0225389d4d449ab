/**
 * How the service behaves as the store grows (issue #11): one DATA_DIR grown in steps (seed to
 * the first size, measure, grow to the next, measure, …), each step measured over real HTTP
 * against the real service (`src/main.ts` as a child process, started afresh on the grown store).
 *
 * Per size:
 *   - seeding (bench/seed.ts: the events the service writes for a registration and a login with
 *     one or two refreshes, per user; users/s);
 *   - catch-up: from spawning the service to `/readyz` answering 200, while it projects the events
 *     seeded since its last start (the first start also builds the Merkle tree from the start);
 *   - `GET /admin/audit/checkpoint` (median of --runs, and the JWS size in bytes), with `/healthz`
 *     probed every --probe-ms from this process meanwhile (p99, max, count);
 *   - inclusion proofs of random positions and consistency proofs from a random size to the
 *     current tree (median of --proof-runs each);
 *   - `GET /admin/audit/verify?full=true` once (total time), `/healthz` probed meanwhile;
 *   - `GET /metrics`; `GET /admin/users` with `skip=N-100`, `after_id=<max id - 100>` (n/a where
 *     the service answers 422), a `q` that matches nothing and a `q` matching ~1 % of the users
 *     (first page of 100): median of --runs each;
 *   - `POST /auth/login` of random seeded users (argon2 verification included) and
 *     `GET /protected`: median of --runs each;
 *   - the server's RSS after all that (VmRSS from /proc).
 * Once per run, in this process: the Merkle tree's share of the projection cost, measured on the
 * first --merkle-events events of the seeded store (see `merkleCost`).
 *
 * Every call is made once as a warm-up (not counted) before its timed runs. Requests go over
 * keep-alive connections, one request in flight. The service writes its log to a file that this
 * process polls (its stdout is not piped into this event loop, which times the probes).
 *
 * Usage: npx node bench/scale.ts [--sizes 10000,100000,1000000] [--data-dir DIR (kept; reused,
 *   grown if smaller)] [--keep] [--runs 20] [--proof-runs 50] [--probe-ms 5]
 *   [--merkle-events 200000] [--batch 5000]
 * Output: progress on stderr; a Markdown table and one JSON line on stdout.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { DatabaseSync } from 'node:sqlite'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { projections } from '../projections/index.ts'
import { createEventCodec } from '../src/app/event-codec.ts'
import { openEventStore } from '../src/app/runtime.ts'
import { loadConfig } from '../src/config.ts'
import type { RecordedEvent } from '../src/eventstore/event-store.ts'
import { MERKLE_SCHEMA, MerkleTree } from '../src/readstore/merkle-tree.ts'
import { ReadStore } from '../src/readstore/read-store.ts'
import { openDataKeyStore } from '../src/security/data-keys.ts'
import { Connection, HOST, type Reply } from './keep-alive-client.ts'
import { SEED_PASSWORD, type SeedResult, seed, seededProfile, userCount } from './seed.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const ADMIN = {
  username: 'scale-admin',
  email: 'scale-admin@example.com',
  password: 'scale-admin-passphrase-7',
}

// ---------------------------------------------------------------------------------------------
// Statistics.

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

type ProbeStats = { count: number; errors: number; p50: number; p99: number; max: number }

/**
 * `/healthz` every `intervalMs` on its own connection while `during` runs: a closed loop of one
 * (latency from send to reply), paced to the interval.
 */
async function withHealthProbe<T>(
  port: number,
  intervalMs: number,
  during: () => Promise<T>,
): Promise<{ result: T; probe: ProbeStats }> {
  const connection = new Connection(port)
  await connection.send('GET', '/healthz') // connect outside the measurement
  const latencies: number[] = []
  let errors = 0
  let running = true
  const probing = (async () => {
    const started = performance.now()
    for (let i = 1; running; i++) {
      const t0 = performance.now()
      try {
        const reply = await connection.send('GET', '/healthz')
        if (reply.status === 200) latencies.push(performance.now() - t0)
        else errors++
      } catch {
        errors++
        connection.destroy()
      }
      const wait = started + i * intervalMs - performance.now()
      if (wait > 0) await sleep(wait)
    }
  })()
  try {
    const result = await during()
    return {
      result,
      probe: {
        count: latencies.length,
        errors,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: latencies.length ? latencies.reduce((a, b) => Math.max(a, b)) : Number.NaN, // no spread: a long probe has 100k+ entries
      },
    }
  } finally {
    running = false
    await probing
    connection.destroy()
  }
}

// ---------------------------------------------------------------------------------------------
// The service as a child process.

type Service = { child: ChildProcess; port: number; pid: number; logPath: string; stop(): Promise<void> }

let current: ChildProcess | null = null

async function startService(dataDir: string, logPath: string, bootstrapToken: string): Promise<Service> {
  const out = openSync(logPath, 'w')
  const child = spawn(process.execPath, ['src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATA_DIR: dataDir,
      PORT: '0',
      HOST,
      RATE_LIMIT_PER_MINUTE: '0',
      ADMIN_BOOTSTRAP_TOKEN: bootstrapToken,
      LOG_LEVEL: 'info',
      EVENT_STORE_URL: '',
    },
    stdio: ['ignore', out, out],
  })
  closeSync(out)
  current = child
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()))
  let exitCode: number | null = null
  child.once('exit', (code) => {
    exitCode = code ?? -1
  })
  // Poll the log file for the "listening" line; catch-up may take minutes on a large store.
  let port = 0
  for (;;) {
    if (exitCode !== null) {
      throw new Error(
        `the service exited (${exitCode}) before listening:\n${readFileSync(logPath, 'utf8').slice(-2000)}`,
      )
    }
    const text = readFileSync(logPath, 'utf8')
    for (const line of text.split('\n')) {
      if (!line.includes('"listening"')) continue
      try {
        const parsed = JSON.parse(line) as { message?: string; url?: string }
        if (parsed.message === 'listening' && parsed.url) port = Number(new URL(parsed.url).port)
      } catch {}
    }
    if (port) break
    await sleep(50)
  }
  return {
    child,
    port,
    pid: child.pid!,
    logPath,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
      await exited
      clearTimeout(killer)
      current = null
    },
  }
}

/** User + system CPU seconds of a process (all its threads) so far, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100 // USER_HZ
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = /VmRSS:\s+(\d+)\s+kB/.exec(status)
  return kib ? Number(kib[1]) / 1024 : Number.NaN
}

/** The store's head position (its event count on SQLite), read without disturbing anything. */
function headPosition(dataDir: string): number {
  const path = join(dataDir, 'events.db')
  if (!existsSync(path)) return 0
  const db = new DatabaseSync(path, { readOnly: true })
  try {
    return (db.prepare('SELECT coalesce(max(position), 0) AS n FROM events').get() as { n: number }).n
  } finally {
    db.close()
  }
}

// ---------------------------------------------------------------------------------------------
// The Merkle tree's share of the projection cost.

type MerkleCost = {
  events: number
  batch: number
  /** Milliseconds over all events: decoding (decryption), ReadStore.applyBatch (projections and
   * tree in one transaction per batch), and MerkleTree.append alone (own db, one transaction per batch). */
  decodeMs: number
  applyBatchMs: number
  treeOnlyMs: number
  /** treeOnly / applyBatch, and treeOnly / (decode + applyBatch): the tree's share of the projection. */
  shareOfApplyBatch: number
  shareOfProjection: number
  /** How much slower the projection is with the tree than it would be without (treeOnly / (applyBatch − treeOnly)). */
  slowdown: number
}

/**
 * On temporary databases, for the first `events` events of the store in batches of `batch`
 * (the projection runner's catch-up batch): decode each batch (untimed against the others),
 * then time `ReadStore.applyBatch` on a fresh read store (users, sessions and activity
 * projections plus the tree, one transaction) and, on a separate database holding only
 * MERKLE_SCHEMA, `MerkleTree.append` of the same events in a transaction of its own. The two
 * alternate which goes first, batch by batch, so the machine's load weighs on both alike.
 */
async function merkleCost(dataDir: string, events: number, batch: number): Promise<MerkleCost> {
  const tmp = mkdtempSync(join(tmpdir(), 'auth-bench-scale-merkle-'))
  const config = loadConfig({ DATA_DIR: dataDir, MASTER_KEY: process.env.MASTER_KEY })
  const store = await openEventStore(config)
  const dataKeys = openDataKeyStore({ dataDir: config.dataDir, masterKey: config.masterKey ?? undefined })
  const codec = createEventCodec(dataKeys)
  const readStore = new ReadStore(join(tmp, 'read-models.db'), projections)
  const treeDb = new DatabaseSync(join(tmp, 'merkle.db'))
  // As the read store sets up its own file.
  treeDb.exec('PRAGMA journal_mode = WAL; PRAGMA secure_delete = ON; PRAGMA synchronous = NORMAL')
  treeDb.exec(MERKLE_SCHEMA)
  const tree = new MerkleTree(treeDb)
  const appendToTree = (decoded: RecordedEvent[]): void => {
    treeDb.exec('BEGIN')
    for (const e of decoded) tree.append(e.position, e.stream_id, e.revision, e.metadata.hash)
    treeDb.exec('COMMIT')
  }
  let decodeMs = 0
  let applyBatchMs = 0
  let treeOnlyMs = 0
  let done = 0
  try {
    let from = 0n
    for (let round = 0; done < events; round++) {
      const raw = await store.readAll({ fromPosition: from, limit: Math.min(batch, events - done) })
      if (raw.length === 0) break
      let t = performance.now()
      const decoded = raw.map((e) => codec.decode(e))
      decodeMs += performance.now() - t
      const runApply = (): void => {
        const t0 = performance.now()
        readStore.applyBatch(decoded)
        applyBatchMs += performance.now() - t0
      }
      const runTree = (): void => {
        const t0 = performance.now()
        appendToTree(decoded)
        treeOnlyMs += performance.now() - t0
      }
      if (round % 2 === 0) {
        runApply()
        runTree()
      } else {
        runTree()
        runApply()
      }
      t = performance.now()
      done += raw.length
      from = raw[raw.length - 1].position
    }
    if (tree.size !== done || readStore.tree.size !== done) throw new Error('merkle cost: tree sizes differ')
    if (!tree.root().equals(readStore.tree.root())) throw new Error('merkle cost: the two trees differ')
  } finally {
    readStore.close()
    treeDb.close()
    dataKeys.close()
    await store.close()
    rmSync(tmp, { recursive: true, force: true })
  }
  return {
    events: done,
    batch,
    decodeMs,
    applyBatchMs,
    treeOnlyMs,
    shareOfApplyBatch: treeOnlyMs / applyBatchMs,
    shareOfProjection: treeOnlyMs / (decodeMs + applyBatchMs),
    slowdown: treeOnlyMs / (applyBatchMs - treeOnlyMs),
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring one size.

type SizeResult = {
  users: number
  events: number
  seed: SeedResult
  startToListeningS: number
  catchUpS: number
  /** CPU seconds the service used from its start to ready (startup included). */
  catchUpCpuS: number
  eventsProjected: number
  checkpointMs: number
  checkpointBytes: number
  healthDuringCheckpoints: ProbeStats
  inclusionMs: number
  consistencyMs: number
  treeSize: number
  verifyS: number
  verifyEventsChecked: number
  verifyOk: boolean
  healthDuringVerify: ProbeStats
  metricsMs: number
  usersSkipMs: number
  usersAfterIdMs: number | null
  usersQNoneMs: number
  usersQMatchMs: number
  usersQMatchRows: number
  loginMs: number
  protectedMs: number
  rssMiB: number
  loadAverage: number
}

type Options = { runs: number; proofRuns: number; probeMs: number }

async function measureSize(
  service: Service,
  users: number,
  options: Options,
  adminFirst: boolean,
  bootstrapToken: string,
): Promise<
  Omit<SizeResult, 'seed' | 'startToListeningS' | 'catchUpS' | 'catchUpCpuS' | 'eventsProjected' | 'events'>
> {
  const http = new Connection(service.port)
  const json = async (
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: unknown,
  ): Promise<{ status: number; body: unknown }> => {
    const reply = await http.send(
      method,
      path,
      body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      body === undefined ? undefined : JSON.stringify(body),
    )
    const text = reply.body.toString('utf8')
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {}
    return { status: reply.status, body: parsed }
  }
  const expectOk = (what: string, reply: { status: number; body: unknown }): void => {
    if (reply.status !== 200)
      throw new Error(`${what}: HTTP ${reply.status} ${JSON.stringify(reply.body).slice(0, 300)}`)
  }

  // An admin: registered with the bootstrap token the first time, logged in afterwards.
  if (adminFirst) {
    expectOk(
      'POST /admin/register',
      await json('POST', '/admin/register', { 'x-bootstrap-token': bootstrapToken }, ADMIN),
    )
  }
  const login = await json('POST', '/admin/login', {}, { username: ADMIN.username, password: ADMIN.password })
  expectOk('POST /admin/login', login)
  const adminToken = (login.body as { access_token: string }).access_token
  const auth = { authorization: `Bearer ${adminToken}` }
  // The admin's id is its token's subject; every other id up to `users` is a seeded user.
  const adminId = Number(
    (JSON.parse(Buffer.from(adminToken.split('.')[1], 'base64url').toString('utf8')) as { sub: string }).sub,
  )

  /** Median milliseconds of `runs` calls after one warm-up; each reply must be 200. */
  const timed = async (what: string, runs: number, call: (i: number) => Promise<Reply>): Promise<number> => {
    const once = async (i: number): Promise<number> => {
      const t0 = performance.now()
      const reply = await call(i)
      const ms = performance.now() - t0
      if (reply.status !== 200)
        throw new Error(`${what}: HTTP ${reply.status} ${reply.body.toString('utf8', 0, 300)}`)
      return ms
    }
    await once(-1)
    const times: number[] = []
    for (let i = 0; i < runs; i++) times.push(await once(i))
    return median(times)
  }
  const get = (path: string, headers: Record<string, string> = auth) => http.send('GET', path, headers)

  // Checkpoints (a signed tree head), with /healthz probed meanwhile.
  const checkpoint = await json('GET', '/admin/audit/checkpoint', auth)
  expectOk('GET /admin/audit/checkpoint', checkpoint)
  const jws = (checkpoint.body as { checkpoint: string }).checkpoint
  const head = JSON.parse(Buffer.from(jws.split('.')[1], 'base64url').toString('utf8')) as {
    tree_size: number
  }
  const treeSize = head.tree_size
  const { result: checkpointMs, probe: healthDuringCheckpoints } = await withHealthProbe(
    service.port,
    options.probeMs,
    () => timed('checkpoint', options.runs, () => get('/admin/audit/checkpoint')),
  )
  progress(
    `  checkpoint ${checkpointMs.toFixed(2)} ms, ${Buffer.byteLength(jws)} bytes (tree ${treeSize}); ` +
      `/healthz meanwhile p99 ${healthDuringCheckpoints.p99.toFixed(1)} ms, max ${healthDuringCheckpoints.max.toFixed(1)} ms ` +
      `(n ${healthDuringCheckpoints.count})`,
  )

  // Proofs at random positions / sizes of the current tree (positions are 1..tree size on SQLite).
  const randomIn = (low: number, high: number): number => low + Math.floor(Math.random() * (high - low + 1))
  const inclusionMs = await timed('inclusion proof', options.proofRuns, () =>
    get(`/admin/audit/proof/inclusion?position=${randomIn(1, treeSize)}`),
  )
  const consistencyMs = await timed('consistency proof', options.proofRuns, () =>
    get(`/admin/audit/proof/consistency?first=${randomIn(1, treeSize)}&second=${treeSize}`),
  )
  progress(`  inclusion ${inclusionMs.toFixed(2)} ms, consistency ${consistencyMs.toFixed(2)} ms`)

  // The full verify, once, with /healthz probed meanwhile.
  const { result: verify, probe: healthDuringVerify } = await withHealthProbe(
    service.port,
    options.probeMs,
    async () => {
      const t0 = performance.now()
      const reply = await json('GET', '/admin/audit/verify?full=true', auth)
      const seconds = (performance.now() - t0) / 1000
      expectOk('GET /admin/audit/verify?full=true', reply)
      return { seconds, body: reply.body as { ok: boolean; events_checked: number } }
    },
  )
  progress(
    `  verify full ${verify.seconds.toFixed(1)} s (${verify.body.events_checked} events, ok ${verify.body.ok}); ` +
      `/healthz p50 ${healthDuringVerify.p50.toFixed(1)}, p99 ${healthDuringVerify.p99.toFixed(1)}, ` +
      `max ${healthDuringVerify.max.toFixed(1)} ms (n ${healthDuringVerify.count})`,
  )

  const metricsMs = await timed('metrics', options.runs, () => get('/metrics', {}))
  const maxId = users
  const usersSkipMs = await timed('users skip', options.runs, () =>
    get(`/admin/users?skip=${Math.max(0, users - 100)}&limit=100`),
  )
  const afterId = await http.send('GET', `/admin/users?after_id=${Math.max(0, maxId - 100)}&limit=100`, auth)
  const usersAfterIdMs =
    afterId.status === 422
      ? null
      : await timed('users after_id', options.runs, () =>
          get(`/admin/users?after_id=${Math.max(0, maxId - 100)}&limit=100`),
        )
  const usersQNoneMs = await timed('users q none', options.runs, () => get('/admin/users?q=qxzvjk&limit=100'))
  const match = await json('GET', '/admin/users?q=zhou&limit=100', auth)
  expectOk('GET /admin/users?q=zhou', match)
  const usersQMatchMs = await timed('users q match', options.runs, () => get('/admin/users?q=zhou&limit=100'))
  progress(
    `  metrics ${metricsMs.toFixed(2)} ms; users skip ${usersSkipMs.toFixed(1)} ms, after_id ` +
      `${usersAfterIdMs === null ? 'n/a' : usersAfterIdMs.toFixed(2)} ms, q none ${usersQNoneMs.toFixed(2)} ms, ` +
      `q match ${usersQMatchMs.toFixed(2)} ms`,
  )

  // The request path: logins of random seeded users (not the admin), and the token check.
  const seededIds = (): number => {
    for (;;) {
      const id = randomIn(1, users)
      if (id !== adminId) return id
    }
  }
  const form = (id: number): string =>
    new URLSearchParams({ username: seededProfile(id).username, password: SEED_PASSWORD }).toString()
  const loginMs = await timed('login', options.runs, () =>
    http.send(
      'POST',
      '/auth/login',
      { 'content-type': 'application/x-www-form-urlencoded' },
      form(seededIds()),
    ),
  )
  const userLogin = await http.send(
    'POST',
    '/auth/login',
    { 'content-type': 'application/x-www-form-urlencoded' },
    form(seededIds()),
  )
  if (userLogin.status !== 200) throw new Error(`login of a seeded user: HTTP ${userLogin.status}`)
  const userToken = (JSON.parse(userLogin.body.toString('utf8')) as { access_token: string }).access_token
  const protectedMs = await timed('protected', options.runs, () =>
    get('/protected', { authorization: `Bearer ${userToken}` }),
  )
  const rss = rssMiB(service.pid)
  progress(
    `  login ${loginMs.toFixed(1)} ms, /protected ${protectedMs.toFixed(2)} ms; server RSS ${rss.toFixed(0)} MiB`,
  )
  http.destroy()

  return {
    users,
    checkpointMs,
    checkpointBytes: Buffer.byteLength(jws),
    healthDuringCheckpoints,
    inclusionMs,
    consistencyMs,
    treeSize,
    verifyS: verify.seconds,
    verifyEventsChecked: verify.body.events_checked,
    verifyOk: verify.body.ok,
    healthDuringVerify,
    metricsMs,
    usersSkipMs,
    usersAfterIdMs,
    usersQNoneMs,
    usersQMatchMs,
    usersQMatchRows: (match.body as unknown[]).length,
    loginMs,
    protectedMs,
    rssMiB: rss,
    loadAverage: loadavg()[0],
  }
}

// ---------------------------------------------------------------------------------------------

function progress(line: string): void {
  process.stderr.write(`${line}\n`)
}

const fmt = (n: number | null, digits = 1): string =>
  n === null
    ? 'n/a'
    : Number.isFinite(n)
      ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
      : '–'
const int = (n: number): string => Math.round(n).toLocaleString('en-US')
const probeCell = (p: ProbeStats): string =>
  `${fmt(p.p50, 1)} / ${fmt(p.p99, 1)} / ${fmt(p.max, 1)} ms (n ${int(p.count)}${p.errors ? `, ${p.errors} errors` : ''})`

function table(results: SizeResult[]): string {
  const rows: [string, (r: SizeResult) => string][] = [
    ['users (ids handed out) / events in the store', (r) => `${int(r.users)} / ${int(r.events)}`],
    [
      'seeding: users added, s, users/s',
      (r) => `${int(r.seed.added)} in ${fmt(r.seed.seconds, 0)} s = ${int(r.seed.usersPerSecond)}/s`,
    ],
    [
      'catch-up: start → /readyz, events projected (service CPU s)',
      (r) =>
        `${fmt(r.catchUpS, 1)} s, ${int(r.eventsProjected)} = ${int(r.eventsProjected / r.catchUpS)}/s ` +
        `(${fmt(r.catchUpCpuS, 1)} CPU s)`,
    ],
    [
      '`GET /admin/audit/checkpoint` median; JWS bytes',
      (r) => `${fmt(r.checkpointMs, 2)} ms; ${int(r.checkpointBytes)} B`,
    ],
    ['`/healthz` p50 / p99 / max during 20 checkpoints', (r) => probeCell(r.healthDuringCheckpoints)],
    ['inclusion proof (random position) median', (r) => `${fmt(r.inclusionMs, 2)} ms`],
    ['consistency proof (random first → tree size) median', (r) => `${fmt(r.consistencyMs, 2)} ms`],
    [
      '`GET /admin/audit/verify?full=true` (once)',
      (r) => `${fmt(r.verifyS, 1)} s, ${int(r.verifyEventsChecked)} events${r.verifyOk ? '' : ' **NOT OK**'}`,
    ],
    ['`/healthz` p50 / p99 / max during verify', (r) => probeCell(r.healthDuringVerify)],
    ['`GET /metrics` median', (r) => `${fmt(r.metricsMs, 2)} ms`],
    ['`/admin/users?skip=N-100&limit=100` median', (r) => `${fmt(r.usersSkipMs, 2)} ms`],
    [
      '`/admin/users?after_id=max-100&limit=100` median',
      (r) => (r.usersAfterIdMs === null ? 'n/a' : `${fmt(r.usersAfterIdMs, 2)} ms`),
    ],
    ['`/admin/users?q=<no match>` median', (r) => `${fmt(r.usersQNoneMs, 2)} ms`],
    ['`/admin/users?q=zhou` (~1 % match, first 100) median', (r) => `${fmt(r.usersQMatchMs, 2)} ms`],
    ['`POST /auth/login` (seeded user, argon2) median', (r) => `${fmt(r.loginMs, 1)} ms`],
    ['`GET /protected` median', (r) => `${fmt(r.protectedMs, 2)} ms`],
    ['server RSS after the measurements', (r) => `${fmt(r.rssMiB, 0)} MiB`],
    ['load average (1 min) at the end', (r) => fmt(r.loadAverage, 2)],
  ]
  const lines = [
    `| measure | ${results.map((r) => `${int(r.users)} users`).join(' | ')} |`,
    `|---|${results.map(() => '---:').join('|')}|`,
  ]
  for (const [name, cell] of rows) lines.push(`| ${name} | ${results.map(cell).join(' | ')} |`)
  return lines.join('\n')
}

async function main(): Promise<void> {
  const runStarted = performance.now()
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '10000,100000,1000000' },
      'data-dir': { type: 'string' },
      keep: { type: 'boolean', default: false },
      runs: { type: 'string', default: '20' },
      'proof-runs': { type: 'string', default: '50' },
      'probe-ms': { type: 'string', default: '5' },
      'merkle-events': { type: 'string', default: '200000' },
      batch: { type: 'string', default: '5000' },
    },
  })
  const positive = (raw: string, name: string): number => {
    const n = Number(raw.replaceAll('_', ''))
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${raw}`)
    return n
  }
  const sizes = values.sizes.split(',').map((s) => positive(s.trim(), '--sizes'))
  for (let i = 1; i < sizes.length; i++)
    if (sizes[i] <= sizes[i - 1]) throw new Error('--sizes must increase')
  const options: Options = {
    runs: positive(values.runs, '--runs'),
    proofRuns: positive(values['proof-runs'], '--proof-runs'),
    probeMs: positive(values['probe-ms'], '--probe-ms'),
  }
  const merkleEvents = positive(values['merkle-events'], '--merkle-events')
  const batch = positive(values.batch, '--batch')

  const ownDir = !values['data-dir']
  const dataDir = values['data-dir']
    ? resolve(values['data-dir'])
    : mkdtempSync(join(tmpdir(), 'auth-bench-scale-'))
  const logDir = mkdtempSync(join(tmpdir(), 'auth-bench-scale-logs-'))
  const cleanUp = (): void => {
    rmSync(logDir, { recursive: true, force: true })
    if (ownDir && !values.keep) rmSync(dataDir, { recursive: true, force: true })
  }
  const results: SizeResult[] = []
  let merkle: MerkleCost | null = null
  let interrupted = false
  process.on('SIGINT', () => {
    if (interrupted) return
    interrupted = true
    progress('SIGINT: stopping the service; the sizes measured so far follow')
    const finish = (): void => {
      cleanUp()
      report(sizes, results, merkle, (performance.now() - runStarted) / 1000, true)
      process.exit(130)
    }
    const child = current
    if (child && child.exitCode === null && child.signalCode === null) {
      child.once('exit', finish)
      child.kill('SIGKILL')
    } else finish()
  })

  const bootstrapToken = randomBytes(24).toString('base64url')
  progress(
    `data dir ${dataDir}${ownDir && !values.keep ? ' (removed at the end)' : ''}; service logs in ${logDir}`,
  )
  let adminExists = false
  let projectedUpTo = 0
  try {
    for (const size of sizes) {
      progress(`\n== ${size.toLocaleString('en-US')} users`)
      const seeded = await seed({ dataDir, users: size, batch, progress })
      progress(
        `seeded ${seeded.added} users (${seeded.events} events) in ${seeded.seconds.toFixed(1)} s: ` +
          `${seeded.usersPerSecond.toFixed(0)} users/s`,
      )
      const events = headPosition(dataDir)
      if (merkle === null && events >= merkleEvents) {
        progress(`merkle cost over ${merkleEvents} events …`)
        merkle = await merkleCost(dataDir, merkleEvents, 2000)
        progress(`  ${JSON.stringify(merkle)}`)
      }
      const t0 = performance.now()
      const service = await startService(dataDir, join(logDir, `service-${size}.log`), bootstrapToken)
      const startToListeningS = (performance.now() - t0) / 1000
      const ready = new Connection(service.port)
      for (;;) {
        const reply = await ready.send('GET', '/readyz').catch(() => null)
        if (reply?.status === 200) break
        await sleep(20)
      }
      ready.destroy()
      const catchUpS = (performance.now() - t0) / 1000
      // Below catchUpS by far: the service waited (for the disk, or for a core other processes held).
      const catchUpCpuS = cpuSeconds(service.pid)
      const eventsProjected = events - projectedUpTo
      projectedUpTo = events
      progress(
        `service ready in ${catchUpS.toFixed(1)} s (listening after ${startToListeningS.toFixed(1)} s; ` +
          `${catchUpCpuS.toFixed(1)} s of its CPU), ${eventsProjected} events projected`,
      )
      try {
        // A directory passed in may already have the admin; try logging in first.
        if (!adminExists) {
          const probe = new Connection(service.port)
          const reply = await probe.send(
            'POST',
            '/admin/login',
            { 'content-type': 'application/json' },
            JSON.stringify({ username: ADMIN.username, password: ADMIN.password }),
          )
          probe.destroy()
          adminExists = reply.status === 200
        }
        const measured = await measureSize(service, userCount(dataDir), options, !adminExists, bootstrapToken)
        adminExists = true
        // Events the admin's registration and logins added are projected live; count them next time.
        projectedUpTo = headPosition(dataDir)
        results.push({
          ...measured,
          events,
          seed: seeded,
          startToListeningS,
          catchUpS,
          catchUpCpuS,
          eventsProjected,
        })
      } finally {
        await service.stop()
      }
    }
    if (merkle === null) {
      const events = Math.min(merkleEvents, headPosition(dataDir))
      progress(`merkle cost over ${events} events …`)
      merkle = await merkleCost(dataDir, events, 2000)
      progress(`  ${JSON.stringify(merkle)}`)
    }
  } finally {
    cleanUp()
  }

  report(sizes, results, merkle, (performance.now() - runStarted) / 1000, false)
}

function report(
  sizes: number[],
  results: SizeResult[],
  merkle: MerkleCost | null,
  totalS: number,
  interrupted: boolean,
): void {
  const done = results.map((r) => r.users)
  console.log(
    `\n## Scale: ${sizes.map((s) => s.toLocaleString('en-US')).join(' → ')} users (one store, grown)` +
      `${interrupted ? `, interrupted: sizes measured ${done.length ? done.map(int).join(', ') : 'none'}` : ''}\n`,
  )
  if (results.length) console.log(table(results))
  if (merkle) {
    console.log(
      `\nMerkle tree cost, ${int(merkle.events)} seeded events in batches of ${merkle.batch}: ` +
        `ReadStore.applyBatch (3 projections + tree, one transaction) ${fmt((merkle.applyBatchMs * 1000) / merkle.events, 1)} µs/event; ` +
        `MerkleTree.append alone (own db, own transactions) ${fmt((merkle.treeOnlyMs * 1000) / merkle.events, 1)} µs/event; ` +
        `decoding ${fmt((merkle.decodeMs * 1000) / merkle.events, 1)} µs/event. ` +
        `Tree share: ${fmt(merkle.shareOfApplyBatch * 100, 1)} % of applyBatch, ${fmt(merkle.shareOfProjection * 100, 1)} % of decode + applyBatch; ` +
        `the projection is ${fmt(merkle.slowdown * 100, 1)} % slower than it would be without the tree.`,
    )
  }
  console.log(`\nTotal run time ${fmt(totalS / 60, 1)} min.`)
  console.log(JSON.stringify({ sizes, results, merkle, totalSeconds: totalS, interrupted }))
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error)
  current?.kill('SIGKILL')
  process.exit(1)
})
