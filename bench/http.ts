/**
 * HTTP benchmark of the real service; every figure comes from one run, so the ratios compare like with like:
 *   1. a bare node:http hello world: what this machine and this load generator can do at all,
 *   2. GET /protected with valid bearer tokens rotating over many sessions, as a share of (1),
 *   3. POST /token logins/s next to the cost of one native argon2id hash measured in between,
 *   4. POST /auth/token-refresh, each request presenting the token the previous one returned,
 *   5. GET /healthz latency while logins hash at full concurrency, against idle.
 * The servers are child processes (the service is `src/main.ts` with a temporary DATA_DIR); this process
 * only generates load: raw keep-alive HTTP/1.1 over node:net, one request in flight per connection, a
 * fixed concurrency and duration. Scenarios that are compared run in alternating rounds (A B B A …), so
 * load from other processes on the machine weighs on both sides alike; the CPU column shows how much
 * of the machine the server, this process and everything else used meanwhile.
 * Usage: npx node bench/http.ts [--duration 5] [--warmup 1] [--rounds 10] [--concurrency 32] [--tokens 50]
 *   [--login-concurrency 2×cores] [--refresh-concurrency 16] [--hashes 10] [--probe-interval 5]
 *   [--only protected,login,refresh] [--path /protected (or /trpc/system.protected)]
 *   [--cpu-prof DIR (profiles the service)]
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createPasswordHasher } from '../src/security/passwords.ts'
import { Connection, HOST, type Reply, requestBytes } from './keep-alive-client.ts'

/** What one measured slice of load saw: raw latencies and CPU seconds, merged across slices later. */
export type Sample = {
  latencies: number[]
  errors: number
  firstError?: string
  seconds: number
  /** CPU seconds of the server process (all its threads), of this process, and of everything else. */
  cpu: Cpu
}

export type Cpu = { server: number; client: number; others: number }

export type Stats = {
  requests: number
  errors: number
  firstError?: string
  seconds: number
  perSecond: number
  p50: number
  p90: number
  p99: number
  max: number
  /** Average CPU use over the measured time, in cores (CPU seconds per second). */
  serverCores: number
  clientCores: number
  /** Other processes on the machine compete for the same cores; a high figure makes a run noisy. */
  otherCores: number
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

export function merge(samples: Sample[]): Stats {
  const sorted = Float64Array.from(samples.flatMap((s) => s.latencies)).sort()
  const seconds = samples.reduce((sum, s) => sum + s.seconds, 0)
  const cpu = (key: keyof Cpu): number => samples.reduce((sum, s) => sum + s.cpu[key], 0) / seconds
  return {
    requests: sorted.length,
    errors: samples.reduce((sum, s) => sum + s.errors, 0),
    firstError: samples.find((s) => s.firstError)?.firstError,
    seconds,
    perSecond: sorted.length / seconds,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : Number.NaN,
    serverCores: cpu('server'),
    clientCores: cpu('client'),
    otherCores: cpu('others'),
  }
}

/** User + system CPU seconds of a process and all its threads, from /proc (NaN where there is none). */
export function processCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
  } catch {
    return Number.NaN
  }
}
const CLOCK_TICKS = 100 // USER_HZ, 100 on Linux

/** Busy CPU seconds of the whole machine (all processes), from /proc/stat. */
function machineCpuSeconds(): number {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal …: busy is all but idle and iowait.
    return (fields.slice(0, 8).reduce((a, b) => a + b, 0) - fields[3] - fields[4]) / CLOCK_TICKS
  } catch {
    return Number.NaN
  }
}

/**
 * Starts measuring; the returned function gives the CPU seconds used since then. `serverCpu` gives
 * the server side's CPU seconds so far (one process, or several and their database).
 */
function cpuMeter(serverCpu: () => number): () => Cpu {
  const server0 = serverCpu()
  const machine0 = machineCpuSeconds()
  const client0 = process.cpuUsage()
  return () => {
    const used = process.cpuUsage(client0)
    const server = serverCpu() - server0
    const client = (used.user + used.system) / 1e6
    const machine = machineCpuSeconds() - machine0
    return { server, client, others: Math.max(0, machine - server - client) }
  }
}

const NO_CPU: Cpu = { server: Number.NaN, client: Number.NaN, others: Number.NaN }

export type Load = {
  port: number
  /**
   * Several servers (instances behind one address): each worker keeps a connection to every one and
   * sends its requests to them in turn, round-robin. Overrides `port`.
   */
  ports?: number[]
  concurrency: number
  /** Load that runs before the measured window and is not counted. */
  warmupMs: number
  durationMs: number
  /** The bytes of the next request of one worker (each worker has one request in flight) to `ports[target]`. */
  next(worker: number, target: number): Buffer
  /** Sees every reply, 200 or not. */
  check?(worker: number, reply: Reply): void
  /** The server's process id, to measure its CPU time over the measured window. */
  serverPid?: number
  /** CPU seconds used so far by the server side, if not one process (overrides `serverPid`). */
  serverCpu?: () => number
}

const MAX_ERRORS = 1_000

/** Closed loop: `concurrency` connections, each sending its next request as soon as a reply arrives. */
export async function runLoad(load: Load): Promise<Sample> {
  const started = performance.now()
  const measureFrom = started + load.warmupMs
  const stopAt = measureFrom + load.durationMs
  const latencies: number[] = []
  let errors = 0
  let firstError: string | undefined
  const fail = (message: string): void => {
    errors++
    firstError ??= message
  }

  const ports = load.ports ?? [load.port]
  async function worker(index: number): Promise<void> {
    const connections = ports.map((port) => new Connection(port))
    let turn = index // workers start on different servers
    try {
      while (performance.now() < stopAt && errors < MAX_ERRORS) {
        const target = turn++ % ports.length
        const connection = connections[target]
        const t0 = performance.now()
        try {
          const reply = await connection.request(load.next(index, target))
          const t1 = performance.now()
          load.check?.(index, reply)
          if (reply.status !== 200) fail(`HTTP ${reply.status}: ${reply.body.toString('utf8', 0, 200)}`)
          else if (t1 >= measureFrom && t1 <= stopAt) latencies.push(t1 - t0) // completed in the window
        } catch (error) {
          fail((error as Error).message)
          connection.destroy()
          await sleep(10)
        }
      }
    } finally {
      for (const connection of connections) connection.destroy()
    }
  }

  let meter: (() => Cpu) | undefined
  let cpu = NO_CPU
  const startMeter = setTimeout(() => {
    meter = cpuMeter(load.serverCpu ?? (() => processCpuSeconds(load.serverPid)))
  }, load.warmupMs)
  const stopMeter = setTimeout(() => {
    if (meter) cpu = meter()
  }, load.warmupMs + load.durationMs)
  await Promise.all(Array.from({ length: load.concurrency }, (_, i) => worker(i)))
  clearTimeout(startMeter)
  clearTimeout(stopMeter)
  // The workers may finish a moment before the timer fires.
  if (meter && cpu === NO_CPU) cpu = meter()
  return { latencies, errors, firstError, seconds: load.durationMs / 1000, cpu }
}

/** One connection, one request every `intervalMs` (paced, so the probe itself adds little load). */
async function probe(
  port: number,
  path: string,
  durationMs: number,
  intervalMs: number,
  serverPid?: number,
): Promise<Sample> {
  const connection = new Connection(port)
  const request = requestBytes(port, 'GET', path)
  const latencies: number[] = []
  let errors = 0
  try {
    await connection.request(request) // connect outside the measurement
    const meter = cpuMeter(() => processCpuSeconds(serverPid))
    const started = performance.now()
    const stopAt = started + durationMs
    // A closed loop of one: latency runs from send to reply. (Counting from when each request was due
    // would instead measure this one connection's backlog once replies take longer than the interval.)
    for (let i = 1; performance.now() < stopAt && errors < MAX_ERRORS; i++) {
      const t0 = performance.now()
      try {
        const reply = await connection.request(request)
        if (reply.status === 200) latencies.push(performance.now() - t0)
        else errors++
      } catch {
        errors++
        connection.destroy()
      }
      const wait = started + i * intervalMs - performance.now()
      if (wait > 0) await sleep(wait)
    }
    return { latencies, errors, seconds: (performance.now() - started) / 1000, cpu: meter() }
  } finally {
    connection.destroy()
  }
}

/** Sends one request on a fresh connection and parses a JSON reply. */
export async function call(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const connection = new Connection(port)
  try {
    const reply = await connection.request(requestBytes(port, method, path, headers, body))
    return { status: reply.status, json: JSON.parse(reply.body.toString('utf8')) }
  } finally {
    connection.destroy()
  }
}

/** Runs `count` tasks, at most `limit` at a time. */
export async function pooled<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count)
  let nextIndex = 0
  await Promise.all(
    Array.from({ length: Math.min(limit, count) }, async () => {
      while (nextIndex < count) {
        const i = nextIndex++
        results[i] = await task(i)
      }
    }),
  )
  return results
}

// ---------------------------------------------------------------------------------------------
// Child processes.

type Child = { process: ChildProcess; port: number; stop(): Promise<void> }

async function startChild(args: string[], env: Record<string, string>, cwd: string): Promise<Child> {
  const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: 'pipe' })
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(`[child] ${chunk}`))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not start within 30 s`)), 30_000)
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited early (${code})`)))
    const lines = createInterface({ input: child.stdout! })
    lines.on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as { message?: string; url?: string }
        if (parsed.message === 'listening' && parsed.url) {
          clearTimeout(timer)
          resolvePort(Number(new URL(parsed.url).port))
        }
      } catch {}
    })
  })
  return {
    process: child,
    port,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(killer)
    },
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const cores = availableParallelism()
  const { values: args } = parseArgs({
    options: {
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      rounds: { type: 'string', default: '10' },
      concurrency: { type: 'string', default: '32' },
      tokens: { type: 'string', default: '50' },
      // The route the token-check scenario calls; `/trpc/system.protected` is the same procedure over tRPC.
      path: { type: 'string', default: '/protected' },
      'login-concurrency': { type: 'string', default: String(2 * cores) },
      'refresh-concurrency': { type: 'string', default: '16' },
      hashes: { type: 'string', default: '10' },
      'probe-interval': { type: 'string', default: '5' },
      'cpu-prof': { type: 'string' },
      only: { type: 'string' },
    },
  })
  const number = (name: keyof typeof args, min: number): number => {
    const raw = String(args[name])
    const n = Number(raw)
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, got ${raw}`)
    return n
  }
  const durationMs = number('duration', 0.1) * 1000
  const warmupMs = number('warmup', 0) * 1000
  const rounds = Math.floor(number('rounds', 1))
  const concurrency = Math.floor(number('concurrency', 1))
  const tokenCount = Math.floor(number('tokens', 1))
  const loginConcurrency = Math.floor(number('login-concurrency', 1))
  const refreshConcurrency = Math.floor(number('refresh-concurrency', 1))
  const hashes = Math.floor(number('hashes', 1))
  const probeInterval = number('probe-interval', 1)
  const GROUPS = ['protected', 'login', 'refresh'] as const
  const only = args.only?.split(',').map((name) => name.trim())
  for (const name of only ?? []) {
    if (!(GROUPS as readonly string[]).includes(name))
      throw new Error(`--only takes a comma-separated list of ${GROUPS.join(', ')}; got ${name}`)
  }
  const want = (name: (typeof GROUPS)[number]): boolean => !only || only.includes(name)
  const sliceMs = durationMs / rounds

  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
  const dataDir = mkdtempSync(join(tmpdir(), 'auth-bench-http-'))
  const log = (message: string): void => {
    process.stderr.write(`${message}\n`)
  }
  const children: Child[] = []
  process.once('SIGINT', () => {
    for (const child of children) child.process.kill('SIGKILL')
    rmSync(dataDir, { recursive: true, force: true })
    process.exit(130)
  })

  try {
    log(
      `cores=${cores}, load average ${loadavg()
        .map((n) => n.toFixed(2))
        .join(' ')}; starting the servers…`,
    )
    const bare = want('protected')
      ? await startChild([fileURLToPath(import.meta.url), '--bare-server'], {}, root)
      : null
    if (bare) children.push(bare)
    // The service as `npm start` runs it, with its own DATA_DIR and no rate limit.
    const serviceArgs = args['cpu-prof']
      ? ['--cpu-prof', `--cpu-prof-dir=${resolve(args['cpu-prof'])}`, 'src/main.ts']
      : ['src/main.ts']
    const service = await startChild(
      serviceArgs,
      { DATA_DIR: dataDir, RATE_LIMIT_PER_MINUTE: '0', PORT: '0', HOST, LOG_LEVEL: 'info' },
      root,
    )
    children.push(service)
    const { port } = service
    const servicePid = service.process.pid

    log(`service: registering and logging in ${tokenCount} users…`)
    const users = Array.from({ length: tokenCount }, (_, i) => ({
      username: `bench_user_${i}`,
      password: `Bench-pass-${i}-q7Zr!x`,
    }))
    await pooled(users.length, 2 * cores, async (i) => {
      const body = JSON.stringify({ ...users[i], email: `bench_user_${i}@example.com`, full_name: null })
      const r = await call(port, 'POST', '/auth/register', { 'content-type': 'application/json' }, body)
      if (r.status !== 200) throw new Error(`register ${i}: HTTP ${r.status} ${JSON.stringify(r.json)}`)
    })
    const formHeaders = { 'content-type': 'application/x-www-form-urlencoded' }
    const loginBody = (i: number): string =>
      new URLSearchParams({ grant_type: 'password', ...users[i % users.length] }).toString()
    const sessions = await pooled(users.length, 2 * cores, async (i) => {
      const r = await call(port, 'POST', '/token', formHeaders, loginBody(i))
      if (r.status !== 200) throw new Error(`login ${i}: HTTP ${r.status} ${JSON.stringify(r.json)}`)
      return { access: String(r.json.access_token), refresh: String(r.json.refresh_token) }
    })

    // 1 + 2. Bare server and GET /protected in alternating slices (ABBA), so that whatever else the
    // machine does at the time weighs on both alike.
    const bareSamples: Sample[] = []
    const protectedSamples: Sample[] = []
    if (bare) {
      const bareRequest = requestBytes(bare.port, 'GET', '/')
      const bareLoad: Load = {
        port: bare.port,
        concurrency,
        warmupMs: SLICE_WARMUP_MS,
        durationMs: sliceMs,
        next: () => bareRequest,
        serverPid: bare.process.pid,
      }
      const protectedRequests = sessions.map((s) =>
        requestBytes(port, 'GET', args.path, { authorization: `Bearer ${s.access}` }),
      )
      let turn = 0
      const protectedLoad: Load = {
        port,
        concurrency,
        warmupMs: SLICE_WARMUP_MS,
        durationMs: sliceMs,
        next: () => protectedRequests[turn++ % protectedRequests.length],
        serverPid: servicePid,
      }
      log(`bare node:http and GET /protected: ${rounds} rounds of ${sliceMs / 1000} s each…`)
      await runLoad({ ...bareLoad, warmupMs, durationMs: 0 })
      await runLoad({ ...protectedLoad, warmupMs, durationMs: 0 })
      for (let r = 0; r < rounds; r++) {
        const pair = [
          async () => bareSamples.push(await runLoad(bareLoad)),
          async () => protectedSamples.push(await runLoad(protectedLoad)),
        ]
        if (r % 2 === 1) pair.reverse()
        for (const run of pair) await run()
      }
      await bare.stop()
    }

    // 3 + 5. Rounds of: argon2id hashes here (the service idle), logins, /healthz idle, /healthz while
    // logins run at full concurrency.
    const issued: string[] = []
    let sequentialSeconds = 0
    let sequentialHashes = 0
    let parallelSeconds = 0
    let parallelHashes = 0
    const loginSamples: Sample[] = []
    const idleSamples: Sample[] = []
    const busySamples: Sample[] = []
    const alongsideSamples: Sample[] = []
    if (want('login')) {
      let loginTurn = 0
      const loginLoad: Load = {
        port,
        concurrency: loginConcurrency,
        warmupMs: LOGIN_WARMUP_MS,
        durationMs: sliceMs,
        next: () => requestBytes(port, 'POST', '/token', formHeaders, loginBody(loginTurn++)),
        check: (_worker, reply) => {
          if (reply.status === 200) issued.push(String(JSON.parse(reply.body.toString()).refresh_token))
        },
        serverPid: servicePid,
      }
      const hasher = createPasswordHasher({ backend: 'native' })
      await hasher.dummyVerify('warm-up') // the hasher's own start-up hash and one verification
      log(`argon2id, POST /token, GET /healthz: ${rounds} rounds…`)
      await runLoad({ ...loginLoad, warmupMs, durationMs: 0 })
      const perRound = Math.ceil(hashes / rounds)
      for (let r = 0; r < rounds; r++) {
        let t = performance.now()
        for (let i = 0; i < perRound; i++) await hasher.hash(`sequential-${r}-${i}`)
        sequentialSeconds += (performance.now() - t) / 1000
        sequentialHashes += perRound
        t = performance.now()
        await Promise.all(
          Array.from({ length: loginConcurrency }, (_, i) => hasher.hash(`parallel-${r}-${i}`)),
        )
        parallelSeconds += (performance.now() - t) / 1000
        parallelHashes += loginConcurrency

        loginSamples.push(await runLoad(loginLoad))
        idleSamples.push(await probe(port, '/healthz', sliceMs, probeInterval, servicePid))
        const [busy, alongside] = await Promise.all([
          sleep(LOGIN_WARMUP_MS).then(() => probe(port, '/healthz', sliceMs, probeInterval, servicePid)),
          runLoad(loginLoad),
        ])
        busySamples.push(busy)
        alongsideSamples.push(alongside)
      }
      await hasher.close()
    }

    // 4. Refresh rotation: each worker owns a set of sessions and always presents the newest token.
    const chains = [...sessions.map((s) => s.refresh), ...issued]
    const refreshWorkers = Math.min(refreshConcurrency, chains.length)
    const refreshSamples: Sample[] = []
    if (want('refresh')) {
      log(`POST /auth/token-refresh over ${chains.length} sessions at concurrency ${refreshWorkers}…`)
      const cursor = new Array<number>(refreshWorkers).fill(0)
      const inFlight = new Array<number>(refreshWorkers).fill(0)
      const jsonHeaders = { 'content-type': 'application/json' }
      refreshSamples.push(
        await runLoad({
          port,
          concurrency: refreshWorkers,
          warmupMs,
          durationMs,
          next: (w) => {
            // Worker w owns chains w, w + workers, w + 2·workers, …
            const owned = Math.ceil((chains.length - w) / refreshWorkers)
            inFlight[w] = w + (cursor[w]++ % owned) * refreshWorkers
            const body = JSON.stringify({ refresh_token: chains[inFlight[w]] })
            return requestBytes(port, 'POST', '/auth/token-refresh', jsonHeaders, body)
          },
          check: (w, reply) => {
            if (reply.status === 200)
              chains[inFlight[w]] = String(JSON.parse(reply.body.toString()).refresh_token)
          },
          serverPid: servicePid,
        }),
      )
    }
    await service.stop()

    report({
      cores,
      warmupMs,
      durationMs,
      rounds,
      concurrency,
      tokens: sessions.length,
      path: args.path,
      loginConcurrency,
      refreshWorkers,
      sessions: chains.length,
      probeInterval,
      bare: bareSamples.length ? merge(bareSamples) : null,
      protected: protectedSamples.length ? merge(protectedSamples) : null,
      argon2: sequentialHashes
        ? {
            sequentialHashes,
            secondsPerHash: sequentialSeconds / sequentialHashes,
            parallelHashes,
            parallelPerSecond: parallelHashes / parallelSeconds,
          }
        : null,
      login: loginSamples.length ? merge(loginSamples) : null,
      refresh: refreshSamples.length ? merge(refreshSamples) : null,
      healthIdle: idleSamples.length ? merge(idleSamples) : null,
      healthBusy: busySamples.length ? merge(busySamples) : null,
      loginAlongside: alongsideSamples.length ? merge(alongsideSamples) : null,
    })
  } finally {
    for (const child of children) await child.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

/** Each slice opens its connections afresh; this much load before its window is not counted. */
export const SLICE_WARMUP_MS = 100
/** Longer for logins: a login takes hundreds of milliseconds, and the window must start in steady state. */
export const LOGIN_WARMUP_MS = 500

type Results = {
  cores: number
  warmupMs: number
  durationMs: number
  rounds: number
  concurrency: number
  tokens: number
  path: string
  loginConcurrency: number
  refreshWorkers: number
  sessions: number
  probeInterval: number
  bare: Stats | null
  protected: Stats | null
  argon2: {
    sequentialHashes: number
    secondsPerHash: number
    parallelHashes: number
    parallelPerSecond: number
  } | null
  login: Stats | null
  refresh: Stats | null
  healthIdle: Stats | null
  healthBusy: Stats | null
  loginAlongside: Stats | null
}

function report(r: Results): void {
  const f = (n: number, digits = 0): string =>
    Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits }) : '–'
  const ms = (n: number): string => f(n, n < 10 ? 2 : 1)
  const pct = (n: number): string => `${f(n * 100, 1)}%`
  const verdict = (ok: boolean): string => (ok ? 'pass' : 'FAIL')
  const cpu = (s: Stats): string => `${f(s.serverCores, 2)} / ${f(s.clientCores, 2)} / ${f(s.otherCores, 2)}`
  const row = (
    name: string,
    conc: number | string,
    s: Stats,
    throughput: string,
    ratio = '',
    target = '',
    cpuOf: Stats = s,
  ): string[] => [
    name,
    String(conc),
    f(s.requests),
    throughput,
    ms(s.p50),
    ms(s.p99),
    f(s.errors),
    cpu(cpuOf),
    ratio,
    target,
  ]
  const rows: string[][] = []
  const json: Record<string, unknown> = {
    bench: 'http',
    node: process.version,
    cores: r.cores,
    rounds: r.rounds,
    duration_s: r.durationMs / 1000,
  }
  const brief = (s: Stats) => ({
    requests: s.requests,
    errors: s.errors,
    per_second: Math.round(s.perSecond * 10) / 10,
    p50_ms: Math.round(s.p50 * 1000) / 1000,
    p99_ms: Math.round(s.p99 * 1000) / 1000,
    cpu_cores: {
      server: Math.round(s.serverCores * 100) / 100,
      client: Math.round(s.clientCores * 100) / 100,
      others: Math.round(s.otherCores * 100) / 100,
    },
  })

  if (r.bare && r.protected) {
    const ratio = r.protected.perSecond / r.bare.perSecond
    const cpuPerRequest = (s: Stats): number => (s.serverCores / s.perSecond) * 1e6
    rows.push(
      row(
        'bare node:http hello world (baseline)',
        r.concurrency,
        r.bare,
        `${f(r.bare.perSecond)} req/s`,
        '100%',
      ),
      row(
        `GET ${r.path} (${r.tokens} tokens of ${r.tokens} sessions)`,
        r.concurrency,
        r.protected,
        `${f(r.protected.perSecond)} req/s`,
        `${pct(ratio)} of bare; server CPU ${f(cpuPerRequest(r.protected))} vs ${f(cpuPerRequest(r.bare))} µs/req`,
        `≥ 50%: ${verdict(ratio >= 0.5)}`,
      ),
    )
    json.bare = {
      concurrency: r.concurrency,
      ...brief(r.bare),
      server_cpu_us_per_request: cpuPerRequest(r.bare),
    }
    json.protected = {
      path: r.path,
      concurrency: r.concurrency,
      tokens: r.tokens,
      ...brief(r.protected),
      server_cpu_us_per_request: cpuPerRequest(r.protected),
      ratio_to_bare: ratio,
    }
  }
  if (r.argon2 && r.login) {
    const a = r.argon2
    const ceiling = r.cores / a.secondsPerHash
    const ratio = r.login.perSecond / ceiling
    rows.push(
      [
        'argon2id native m=19456 t=2 p=1, sequential',
        '1',
        String(a.sequentialHashes),
        `${f(1 / a.secondsPerHash, 1)} hash/s`,
        ms(a.secondsPerHash * 1000),
        '',
        '0',
        '',
        `ceiling ${r.cores} cores ÷ ${ms(a.secondsPerHash * 1000)} ms = ${f(ceiling, 1)}/s`,
        '',
      ],
      [
        `argon2id native, batches of ${r.loginConcurrency} in parallel`,
        String(r.loginConcurrency),
        String(a.parallelHashes),
        `${f(a.parallelPerSecond, 1)} hash/s`,
        '',
        '',
        '0',
        '',
        `${pct(a.parallelPerSecond / ceiling)} of ceiling`,
        '',
      ],
      row(
        'POST /token (form login, one argon2id verify each)',
        r.loginConcurrency,
        r.login,
        `${f(r.login.perSecond, 1)} logins/s`,
        `${pct(ratio)} of ceiling (${pct(r.login.perSecond / a.parallelPerSecond)} of parallel hash/s)`,
        `≥ 80%: ${verdict(ratio >= 0.8)}`,
      ),
    )
    json.argon2 = {
      seconds_per_hash: a.secondsPerHash,
      parallel_hashes_per_second: a.parallelPerSecond,
      ceiling_per_second: ceiling,
    }
    json.login = { concurrency: r.loginConcurrency, ...brief(r.login), ratio_to_ceiling: ratio }
  }
  if (r.refresh) {
    rows.push(
      row(
        `POST /auth/token-refresh (${r.sessions} sessions, rotating)`,
        r.refreshWorkers,
        r.refresh,
        `${f(r.refresh.perSecond)} refresh/s`,
      ),
    )
    json.refresh = { concurrency: r.refreshWorkers, sessions: r.sessions, ...brief(r.refresh) }
  }
  if (r.healthIdle && r.healthBusy && r.loginAlongside) {
    const p50 = r.healthBusy.p50 / r.healthIdle.p50
    const p99 = r.healthBusy.p99 / r.healthIdle.p99
    rows.push(
      row(`GET /healthz idle (1 request / ${r.probeInterval} ms)`, 1, r.healthIdle, '', '1×'),
      row(
        `GET /healthz during logins (${f(r.loginAlongside.perSecond, 1)} logins/s alongside)`,
        1,
        r.healthBusy,
        '',
        `p50 ${f(p50, 2)}×, p99 ${f(p99, 2)}× idle`,
        '',
        r.loginAlongside,
      ),
    )
    json.healthz = {
      idle: brief(r.healthIdle),
      during_logins: brief(r.healthBusy),
      logins_per_second_alongside: r.loginAlongside.perSecond,
      p50_ratio: p50,
      p99_ratio: p99,
    }
  }

  const header = [
    'scenario',
    'conc.',
    'requests',
    'throughput',
    'p50 ms',
    'p99 ms',
    'errors',
    'CPU cores: server / client / others',
    'ratio',
    'target',
  ]
  const table = [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`)
  const load = loadavg()
    .map((n) => n.toFixed(2))
    .join(' ')
  console.log(
    `\n${r.cores} cores, ${process.version}; ${r.rounds} alternating rounds, ${r.durationMs / 1000} s measured ` +
      `per scenario after ${r.warmupMs / 1000} s warm-up; load average at the end ${load}\n`,
  )
  console.log(table.join('\n'))
  const named: [string, Stats | null][] = [
    ['bare', r.bare],
    ['protected', r.protected],
    ['login', r.login],
    ['refresh', r.refresh],
    ['healthz idle', r.healthIdle],
    ['healthz during logins', r.healthBusy],
  ]
  for (const [name, stats] of named) {
    if (stats?.firstError) console.log(`\n${name}: first of ${stats.errors} errors: ${stats.firstError}`)
  }
  console.log(`\n${JSON.stringify(json)}`)
}

// ---------------------------------------------------------------------------------------------
// Child mode: the bare baseline server, with the same server options as src/api/node-server.ts.
function serveBare(): void {
  const body = Buffer.from('hello world')
  const server = createServer({ keepAliveTimeout: 5_000, requestTimeout: 30_000 }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length })
    res.end(body)
  })
  server.listen(0, HOST, () => {
    const address = server.address()
    const port = typeof address === 'object' && address ? address.port : 0
    console.log(JSON.stringify({ message: 'listening', url: `http://${HOST}:${port}` }))
  })
  process.on('SIGTERM', () => process.exit(0))
}

// bench/cluster.ts imports the load generator from here: only run when started as a script.
if (process.argv.includes('--bare-server')) serveBare()
else if (import.meta.main) await main()
