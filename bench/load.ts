/**
 * Sustained mixed load against the real service (a child process on a fresh DATA_DIR, loopback only):
 * mostly GET /protected, plus session listings, token refreshes, logins (each followed by revoking
 * the session it made, so sessions stay bounded) and registrations. Reports errors (any answer but
 * 200, or a failed connection: target 0), throughput and p50/p99 latency per kind and in total, and
 * the server's memory: RSS read from /proc/<pid>/status (VmRSS) before the load, after the warm-up
 * and at the end, with the bound "RSS growth after warm-up < --rss-bound-mb" checked.
 *
 * The server runs with V8's young generation pinned at the size it starts with
 * (`--max-semi-space-size=16`, via NODE_OPTIONS): left alone, V8 doubles the nursery under this
 * allocation rate once or twice during a run (new space 32 → 64 → 128 MB, measured), a one-off
 * RSS step of 32–96 MB that says nothing about leaks and would swamp the bound. `--semi-space-mb 0`
 * runs with V8's defaults.
 *   npx node bench/load.ts [--seconds 60] [--warmup 10] [--concurrency 16] [--rss-bound-mb 50]
 *                          [--semi-space-mb 16]
 * Exit code 0 when both checks pass, 1 otherwise.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { httpCall, isAnswer, prng } from '../harness/client.ts'
import { BOOTSTRAP_TOKEN, freePort, spawnServer, stopServer, waitReady } from '../harness/server.ts'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '16' },
    'rss-bound-mb': { type: 'string', default: '50' },
    'semi-space-mb': { type: 'string', default: '16' },
    seed: { type: 'string', default: '1' },
  },
})
const number = (name: string, raw: string, min: number): number => {
  const value = Number(raw)
  if (!Number.isFinite(value) || value < min) {
    console.error(`--${name} must be a number ≥ ${min}, got "${raw}"`)
    process.exit(2)
  }
  return value
}
const seconds = number('seconds', values.seconds, 1)
const warmupSeconds = Math.min(number('warmup', values.warmup, 0), seconds / 2)
const concurrency = Math.floor(number('concurrency', values.concurrency, 1))
const rssBoundMb = number('rss-bound-mb', values['rss-bound-mb'], 1)
const semiSpaceMb = Math.floor(number('semi-space-mb', values['semi-space-mb'], 0))
const random = prng(number('seed', values.seed, 0))

type Kind = 'protected' | 'sessions' | 'refresh' | 'login' | 'revoke' | 'register'
const MIX: [Kind, number][] = [
  ['protected', 0.7],
  ['sessions', 0.1],
  ['refresh', 0.1],
  ['login', 0.06], // followed by 'revoke' of the session it made
  ['register', 0.04],
]

function pickKind(): Kind {
  let r = random()
  for (const [kind, weight] of MIX) {
    r -= weight
    if (r < 0) return kind
  }
  return 'protected'
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? Number.NaN)
  return Math.round((kb / 1024) * 10) / 10
}

const dataDir = mkdtempSync(join(tmpdir(), 'auth-load-'))
const port = await freePort()
const v8Options = semiSpaceMb > 0 ? `--max-semi-space-size=${semiSpaceMb}` : ''
const server = spawnServer({
  dataDir,
  port,
  env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${v8Options}`.trim() },
})
const url = server.url
let exitCode = 1
try {
  await waitReady(server)
  const pid = server.pid

  // Accounts: one per load loop, so no two loops change the same account at once.
  type Loop = { username: string; password: string; access: string; refresh: string }
  const loops: Loop[] = []
  let registered = 0
  const newAccount = (tag: string) => {
    registered++
    const username = `load_${tag}_${registered}_${Math.floor(random() * 1e9).toString(36)}`
    return { username, email: `${username}@example.com`, password: `L0ad-test-${username}` }
  }
  const admin = newAccount('admin')
  const boot = await fetch(`${url}/admin/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-bootstrap-token': BOOTSTRAP_TOKEN },
    body: JSON.stringify(admin),
  })
  if (boot.status !== 200) throw new Error(`admin bootstrap failed: ${boot.status}`)
  for (let i = 0; i < concurrency; i++) {
    const account = newAccount(`u${i}`)
    const created = await httpCall(url, 'POST', '/auth/register', { json: account })
    if (!isAnswer(created) || created.status !== 200)
      throw new Error(`register failed: ${JSON.stringify(created)}`)
    const login = await httpCall(url, 'POST', '/auth/login', { form: account })
    if (!isAnswer(login) || login.status !== 200) throw new Error(`login failed: ${JSON.stringify(login)}`)
    loops.push({ ...account, access: login.body.access_token, refresh: login.body.refresh_token })
  }
  const rssBefore = rssMb(pid)

  const latencies = new Map<Kind, number[]>()
  const errors = new Map<Kind, number>()
  const errorSamples: string[] = []
  let measuring = warmupSeconds === 0
  const started = performance.now()
  const warmupEnd = started + warmupSeconds * 1000
  const end = started + seconds * 1000
  let rssAfterWarmup = warmupSeconds === 0 ? rssBefore : Number.NaN
  let rssPeak = rssBefore

  async function timed(
    kind: Kind,
    run: () => ReturnType<typeof httpCall>,
  ): Promise<ReturnType<typeof httpCall>> {
    const t0 = performance.now()
    const reply = await run()
    const ms = performance.now() - t0
    if (!isAnswer(reply) || reply.status !== 200) {
      errors.set(kind, (errors.get(kind) ?? 0) + 1)
      if (errorSamples.length < 10) errorSamples.push(`${kind}: ${JSON.stringify(reply).slice(0, 300)}`)
    } else if (measuring) {
      const list = latencies.get(kind) ?? []
      if (list.length === 0) latencies.set(kind, list)
      list.push(ms)
    }
    return reply
  }

  async function loop(state: Loop): Promise<void> {
    // Every loop starts with a login, so the warm-up opens with as many argon2 hashes at once as
    // there are loops: every hashing thread has taken its ~19 MiB before RSS is sampled after it.
    let first = true
    while (performance.now() < end) {
      const kind = first ? 'login' : pickKind()
      first = false
      if (kind === 'protected') {
        await timed(kind, () => httpCall(url, 'GET', '/protected', { token: state.access }))
      } else if (kind === 'sessions') {
        await timed(kind, () => httpCall(url, 'GET', '/auth/sessions', { token: state.access }))
      } else if (kind === 'refresh') {
        const reply = await timed(kind, () =>
          httpCall(url, 'POST', '/auth/token-refresh', { json: { refresh_token: state.refresh } }),
        )
        if (isAnswer(reply) && reply.status === 200) {
          state.access = reply.body.access_token
          state.refresh = reply.body.refresh_token
        }
      } else if (kind === 'login') {
        const reply = await timed(kind, () =>
          httpCall(url, 'POST', '/auth/login', {
            form: { username: state.username, password: state.password },
          }),
        )
        if (isAnswer(reply) && reply.status === 200) {
          const sessionId = reply.body.refresh_token.split('.')[0]
          await timed('revoke', () =>
            httpCall(url, 'DELETE', `/auth/sessions/${sessionId}`, { token: reply.body.access_token }),
          )
        }
      } else {
        await timed(kind, () => httpCall(url, 'POST', '/auth/register', { json: newAccount('new') }))
      }
    }
  }

  const timeline: string[] = []
  const sampler = (async () => {
    while (performance.now() < end) {
      await sleep(Math.min(1000, Math.max(0, end - performance.now())))
      const rss = rssMb(pid)
      rssPeak = Math.max(rssPeak, rss)
      const second = Math.round((performance.now() - started) / 1000)
      if (second % 10 === 0 && timeline.length < second / 10) timeline.push(`${second}s ${rss}`)
      if (!measuring && performance.now() >= warmupEnd) {
        measuring = true
        rssAfterWarmup = rss
      }
    }
  })()
  console.log(
    `bench:load — ${seconds} s of mixed load (${warmupSeconds} s warm-up not measured), ${concurrency} concurrent ` +
      `request loops, server pid ${pid} on ${url} (${v8Options || 'V8 defaults'}); ` +
      `${availableParallelism()} CPUs, load average ${loadavg()[0].toFixed(1)}`,
  )
  await Promise.all([...loops.map(loop), sampler])
  const measuredSeconds = (performance.now() - Math.max(started, warmupEnd)) / 1000
  const rssEnd = rssMb(pid)
  rssPeak = Math.max(rssPeak, rssEnd)

  const percentile = (sorted: number[], p: number): number =>
    sorted.length === 0
      ? Number.NaN
      : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
  const row = (name: string, list: number[], errs: number): string => {
    const sorted = [...list].sort((a, b) => a - b)
    return [
      name.padEnd(10),
      String(sorted.length).padStart(8),
      (sorted.length / measuredSeconds).toFixed(1).padStart(9),
      percentile(sorted, 50).toFixed(2).padStart(9),
      percentile(sorted, 99).toFixed(2).padStart(9),
      String(errs).padStart(7),
    ].join(' ')
  }
  console.log(
    `${'kind'.padEnd(10)} ${'ok'.padStart(8)} ${'req/s'.padStart(9)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)} ${'errors'.padStart(7)}`,
  )
  const kinds: Kind[] = ['protected', 'sessions', 'refresh', 'login', 'revoke', 'register']
  for (const kind of kinds) console.log(row(kind, latencies.get(kind) ?? [], errors.get(kind) ?? 0))
  const totalErrors = [...errors.values()].reduce((a, b) => a + b, 0)
  console.log(
    row(
      'total',
      kinds.flatMap((k) => latencies.get(k) ?? []),
      totalErrors,
    ),
  )
  for (const sample of errorSamples) console.log(`  error: ${sample}`)

  const growth = Math.round((rssEnd - rssAfterWarmup) * 10) / 10
  const errorsPass = totalErrors === 0
  const memoryPass = growth < rssBoundMb
  console.log(`load average at the end: ${loadavg()[0].toFixed(1)} (other processes share these CPUs)`)
  console.log(`errors: ${totalErrors} (target 0): ${errorsPass ? 'PASS' : 'FAIL'}`)
  console.log(
    `server RSS (VmRSS from /proc/${pid}/status): before load ${rssBefore} MB, after warm-up ${rssAfterWarmup} MB, ` +
      `end ${rssEnd} MB, peak ${rssPeak} MB`,
  )
  console.log(`server RSS every 10 s (MB): ${timeline.join(', ')}`)
  console.log(
    `memory: growth after warm-up ${growth >= 0 ? '+' : ''}${growth} MB (bound < ${rssBoundMb} MB): ` +
      `${memoryPass ? 'PASS' : 'FAIL'}`,
  )
  const exit = await stopServer(server, 'SIGTERM')
  const stopPass = exit.code === 0 && !exit.timedOut
  console.log(`shutdown: SIGTERM → ${JSON.stringify(exit)}: ${stopPass ? 'PASS' : 'FAIL'}`)
  exitCode = errorsPass && memoryPass && stopPass ? 0 : 1
  console.log(`RESULT: ${exitCode === 0 ? 'PASS' : 'FAIL'}`)
} catch (error) {
  console.error(`bench:load failed: ${(error as Error).message}\n${server.output().slice(-2000)}`)
} finally {
  if (server.child.exitCode === null && server.child.signalCode === null) await stopServer(server, 'SIGKILL')
  rmSync(dataDir, { recursive: true, force: true })
}
process.exit(exitCode)
