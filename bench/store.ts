/**
 * Event store benchmark on the embedded SQLite adapter, all in one run:
 *   1. durable appends per second, one event per transaction as commands do: raw `store.append` of a
 *      small event to a new stream each time, at synchronous=NORMAL (the default) and FULL; then
 *      `runtime.commands.handle` (load → decide → encode/encrypt → append, projections following live)
 *      with failed/successful logins on registered accounts, with the Merkle tree maintained and
 *      without (alternating rounds of 500; the tree's share of the append rate is printed),
 *   2. replay: a generated history of `--events` events (printed mix), then a raw `readAll` scan, a
 *      scan + decode (decryption), and `runtime.runner.rebuild()` (drop the read models, replay all).
 * Everything lives in a temporary directory under os.tmpdir(), removed at the end. The CPU column is
 * this process's CPU time over wall time: well under 100% means other processes held the cores.
 * Usage: npx node bench/store.ts [--events 1000000] [--appends 20000] [--full-appends 20000] [--accounts 1000]
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { accountDecider } from '../domain/account.decider.ts'
import { openRuntime, type Runtime } from '../src/app/runtime.ts'
import { accountStream, sessionStream } from '../src/app/streams.ts'
import { loadConfig } from '../src/config.ts'
import type { EventStore, NewEvent } from '../src/eventstore/event-store.ts'
import { openSqliteEventStore } from '../src/eventstore/sqlite-event-store.ts'

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    appends: { type: 'string', default: '20000' },
    'full-appends': { type: 'string' },
    accounts: { type: 'string', default: '1000' },
  },
})
const positiveInt = (name: string, raw: string): number => {
  const n = Number(raw.replaceAll('_', ''))
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got ${raw}`)
  return n
}
const EVENTS = positiveInt('events', args.events)
const APPENDS = positiveInt('appends', args.appends)
const FULL_APPENDS = positiveInt('full-appends', args['full-appends'] ?? args.appends)
const ACCOUNTS = positiveInt('accounts', args.accounts)

const root = mkdtempSync(join(tmpdir(), 'auth-bench-store-'))
const log = (line: string): void => console.error(line)
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
const seconds = (ms: number): string => (ms / 1000).toFixed(2)

// A deterministic PRNG, so every run writes the same mix.
let seed = 0x2545f491
function random(): number {
  seed ^= seed << 13
  seed ^= seed >>> 17
  seed ^= seed << 5
  return (seed >>> 0) / 0x1_0000_0000
}
const between = (min: number, max: number): number => min + Math.floor(random() * (max - min + 1))
const chance = (p: number): boolean => random() < p
// Random hex from a pool: token hashes and keys need only look random, and randomBytes per call is slow.
let pool = randomBytes(1 << 16)
let poolAt = 0
function hex(bytes: number): string {
  if (poolAt + bytes > pool.length) {
    pool = randomBytes(1 << 16)
    poolAt = 0
  }
  poolAt += bytes
  return pool.toString('hex', poolAt - bytes, poolAt)
}
const PENDING_METADATA: NewEvent['metadata'] = {
  event_id: '',
  schema_version: 1,
  occurred_at: '',
  actor_id: null,
  correlation_id: null,
  causation_id: null,
}

type Elapsed = { ms: number; cpuMs: number }
/** Starts a stopwatch for wall time and this process's CPU time (all threads). */
function stopwatch(): () => Elapsed {
  const wall = performance.now()
  const cpu = process.cpuUsage()
  return () => {
    const used = process.cpuUsage(cpu)
    return { ms: performance.now() - wall, cpuMs: (used.user + used.system) / 1000 }
  }
}

type Row = { name: string; count: number; note: string } & Elapsed
const rows: Row[] = []
const perSecond = (r: Row): number => (r.count / r.ms) * 1000
const cpuShare = (r: Row): string => `${Math.round((r.cpuMs / r.ms) * 100)}%`
function record(name: string, count: number, elapsed: Elapsed, note: string): void {
  const row = { name, count, note, ...elapsed }
  rows.push(row)
  log(
    `  ${name}: ${fmt(count)} events in ${seconds(row.ms)} s = ${fmt(perSecond(row))}/s, CPU ${cpuShare(row)}`,
  )
}

let clock = Date.parse('2024-01-01T00:00:00.000Z')
function metadata(actor: number | null): NewEvent['metadata'] {
  clock += between(1, 5000)
  return {
    event_id: randomUUID(),
    schema_version: 1,
    occurred_at: new Date(clock).toISOString(),
    actor_id: actor === null ? null : String(actor),
    correlation_id: null,
    causation_id: null,
  }
}

const runtimeAt = (dir: string, env: Record<string, string> = {}): Promise<Runtime> =>
  openRuntime(loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'error', ...env }))

// ---------------------------------------------------------------------------------------------
// 1a. Raw appends: one small event per transaction, each to a new stream.

async function rawAppends(synchronous: 'NORMAL' | 'FULL', count: number): Promise<void> {
  const config = loadConfig({ DATA_DIR: root, SQLITE_SYNCHRONOUS: synchronous })
  const store: EventStore = openSqliteEventStore(join(root, `append-${synchronous}.db`), {
    synchronous: config.sqliteSynchronous,
  })
  try {
    const elapsed = stopwatch()
    for (let i = 0; i < count; i++) {
      await store.append(
        `bench-${i}`,
        [{ type: 'IdReserved', data: { n: i }, metadata: metadata(null) }],
        'no_stream',
      )
    }
    record(
      `append, raw store, synchronous=${synchronous}`,
      count,
      elapsed(),
      '1 small event per tx, a new stream each',
    )
  } finally {
    await store.close()
  }
}

// 1b. The command path: load → decide → encode/encrypt → append, projections following live.
// Twice side by side, with the Merkle tree maintained and without (its append made a no-op in
// that runtime only): alternating rounds, so both see the same machine.

const ROUND = 500

async function commandAppends(count: number): Promise<void> {
  const variants = [
    { name: 'append, command handler, synchronous=NORMAL', runtime: await runtimeAt(join(root, 'commands')) },
    {
      name: 'append, command handler, without the Merkle tree',
      runtime: await runtimeAt(join(root, 'commands-no-tree')),
    },
  ].map((v) => ({ ...v, done: 0, ms: 0, cpuMs: 0 }))
  variants[1].runtime.readStore.tree.append = () => {}
  try {
    for (const { runtime } of variants) {
      for (let id = 1; id <= ACCOUNTS; id++) {
        await runtime.commands.handle(
          accountStream(id),
          accountDecider,
          { type: 'Register', data: registration(id) },
          { actorId: null, owner: id },
        )
      }
    }
    for (let round = 0; round * ROUND < count; round++) {
      for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) {
        const elapsed = stopwatch()
        let last: bigint | null = null
        for (let n = 0; n < ROUND; n++, variant.done++) last = await loginEvent(variant.runtime, variant.done)
        await variant.runtime.runner.waitFor(last)
        const { ms, cpuMs } = elapsed()
        variant.ms += ms
        variant.cpuMs += cpuMs
      }
    }
    const [withTree, withoutTree] = variants
    for (const v of variants) {
      record(
        v.name,
        v.done,
        v,
        `1 event per command on ${fmt(ACCOUNTS)} accounts, read models following live`,
      )
    }
    const loss = 1 - withoutTree.ms / withTree.ms
    log(`  the tree costs the command path ${(loss * 100).toFixed(1)} % of its appends per second`)
  } finally {
    for (const { runtime } of variants) await runtime.close()
  }
}

/** Alternates per account a failed login (encrypted ip/user agent), then the successful one that
 * clears it; each command writes exactly one event. Returns its position. */
async function loginEvent(runtime: Runtime, i: number): Promise<bigint | null> {
  const id = (i % ACCOUNTS) + 1
  const failing = Math.floor(i / ACCOUNTS) % 2 === 0
  const result = await runtime.commands.handle(
    accountStream(id),
    accountDecider,
    failing
      ? {
          type: 'RecordFailedLogin',
          data: { reason: 'password', now: Date.now(), ip_address: ip(), user_agent: userAgent() },
        }
      : {
          type: 'RecordSuccessfulLogin',
          data: { now: Date.now(), verified_at_revision: Number.MAX_SAFE_INTEGER },
        },
    { actorId: id, owner: id },
  )
  if (result.events.length !== 1) throw new Error(`expected one event, got ${result.events.length}`)
  return result.position
}

// ---------------------------------------------------------------------------------------------
// 2. A realistic history, then a rebuild of every read model from it.

const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'okhttp/4.12.0',
]
const userAgent = (): string => USER_AGENTS[between(0, USER_AGENTS.length - 1)]
const ip = (): string => `${between(1, 223)}.${between(0, 255)}.${between(0, 255)}.${between(1, 254)}`
const passwordHash = (): string =>
  `$argon2id$v=19$m=19456,t=2,p=1$${Buffer.from(hex(16), 'hex').toString('base64url')}$${Buffer.from(hex(32), 'hex').toString('base64url')}`

function registration(id: number) {
  return {
    user_id: id,
    username: `user${id}`,
    email: `user${id}@example.com`,
    full_name: chance(0.7) ? `Person Number ${id}` : null,
    company_name: chance(0.2) ? `Company ${id % 97}` : null,
    role: chance(0.02) ? ('admin' as const) : ('user' as const),
    password_hash: passwordHash(),
    username_key: hex(32),
    email_key: hex(32),
  }
}

/** One append: some events to one stream, in one transaction. */
type Step = { stream: string; events: NewEvent[] }

/** A user's life in chronological steps (event ids and times are set when appended). */
function userHistory(runtime: Runtime, userId: number, nextSession: () => number): Step[] {
  const steps: Step[] = []
  let accountRevision = -1
  const event = (type: string, data: Record<string, unknown>): NewEvent => ({
    type,
    data: runtime.codec.encode(userId, type, data),
    metadata: PENDING_METADATA,
  })
  const account = (...events: NewEvent[]): void => {
    accountRevision += events.length
    steps.push({ stream: accountStream(userId), events })
  }
  const failedLogins = (n: number): NewEvent[] =>
    Array.from({ length: n }, () =>
      event('LoginFailed', { reason: 'password', ip_address: ip(), user_agent: userAgent() }),
    )
  const expires = (): string => new Date(clock + 30 * 86_400_000).toISOString()

  account(event('AccountRegistered', registration(userId)))
  if (chance(0.1)) {
    account(event('TotpEnrollmentStarted', { secret: hex(20) }))
    account(
      event('TotpEnabled', { recovery_code_hashes: Array.from({ length: 10 }, () => hex(32)), step: 1 }),
    )
  }
  const sessions = between(1, 8)
  for (let s = 0; s < sessions; s++) {
    if (chance(0.03)) {
      // Someone guessing: five failures lock the account for a while.
      account(
        ...failedLogins(5),
        event('AccountLocked', { reason: 'too_many_failures', note: null, until: expires() }),
      )
    }
    if (chance(0.25)) account(...failedLogins(between(1, 3)), event('FailedLoginsCleared', {}))
    if (chance(0.02)) account(event('FullNameChanged', { full_name: `Renamed Person ${userId}.${s}` }))
    if (chance(0.02)) {
      account(
        event('EmailChanged', {
          email: `user${userId}.${s}@example.org`,
          email_key: hex(32),
          previous_email_key: hex(32),
        }),
      )
    }
    const sessionId = nextSession()
    const stream = sessionStream(sessionId)
    let chunk: NewEvent[] = [
      event('SessionStarted', {
        session_id: sessionId,
        user_id: userId,
        account_revision: accountRevision,
        amr: chance(0.1) ? ['pwd', 'otp'] : ['pwd'],
        refresh_token_hash: hex(32),
        expires_at: expires(),
        ip_address: ip(),
        user_agent: userAgent(),
      }),
    ]
    // A refresh every ~15 minutes while the client is in use; heavy-tailed.
    const refreshes = chance(0.08) ? between(80, 250) : between(2, 40)
    for (let r = 0; r < refreshes; r++) {
      chunk.push(
        event('SessionRefreshed', { user_id: userId, refresh_token_hash: hex(32), expires_at: expires() }),
      )
      if (chunk.length >= 20) {
        steps.push({ stream, events: chunk })
        chunk = []
      }
    }
    if (chance(0.2)) chunk.push(event('SessionRevoked', { user_id: userId, reason: 'user' }))
    if (chunk.length > 0) steps.push({ stream, events: chunk })
  }
  if (chance(0.12)) {
    account(
      event('PasswordChanged', { password_hash: passwordHash(), reason: 'user' }),
      event('SessionsRevoked', { reason: 'password_changed', except_session_id: null }),
    )
  }
  if (chance(0.01)) {
    account(
      event('RoleChanged', { role: 'vendor', previous_role: 'user' }),
      event('SessionsRevoked', { reason: 'role_changed', except_session_id: null }),
    )
  }
  return steps
}

/**
 * Event ids for the generated history are time-ordered (UUIDv7 layout) rather than random v4:
 * random ids scatter one index page write per event over the whole event_id index, which made
 * writing the setup history several times slower. Reading and replaying never touch that index.
 */
let idCounter = 0
function orderedUuid(): string {
  const n = (idCounter++).toString(16).padStart(12, '0')
  const r = hex(10)
  return `${n.slice(0, 8)}-${n.slice(8, 12)}-7${r.slice(0, 3)}-${((Number.parseInt(r[3], 16) & 3) | 8).toString(16)}${r.slice(4, 7)}-${r.slice(7, 19)}`
}

async function generateHistory(runtime: Runtime, target: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>()
  let written = 0
  let users = 0
  let sessions = 0
  const started = performance.now()
  // Groups of users live at the same time: their steps interleave round-robin in the log.
  const GROUP = 50
  while (written < target) {
    const queues: Step[][] = []
    for (let g = 0; g < GROUP; g++) queues.push(userHistory(runtime, ++users, () => ++sessions))
    for (let round = 0; queues.some((q) => round < q.length); round++) {
      for (const [g, queue] of queues.entries()) {
        const step = queue[round]
        if (!step || written >= target) continue
        const actor = users - GROUP + 1 + g
        const events = step.events.slice(0, target - written).map((e) => ({
          ...e,
          metadata: { ...metadata(actor), event_id: orderedUuid() },
        }))
        await runtime.store.append(step.stream, events, 'any')
        written += events.length
        for (const e of events) counts.set(e.type, (counts.get(e.type) ?? 0) + 1)
      }
    }
    if (users % 2000 === 0)
      log(`  … ${fmt(written)} events, ${fmt(users)} users, ${seconds(performance.now() - started)} s`)
  }
  const ms = performance.now() - started
  log(
    `  generated ${fmt(written)} events for ${fmt(users)} users, ${fmt(sessions)} sessions in ${seconds(ms)} s`,
  )
  return counts
}

async function replay(target: number): Promise<{ mix: Map<string, number> }> {
  const runtime = await runtimeAt(join(root, 'replay'))
  try {
    // Projections off while the history is written; rebuild() replays it all afterwards.
    await runtime.runner.stop()
    log(`generating ${fmt(target)} events …`)
    const mix = await generateHistory(runtime, target)

    log('raw readAll scan …')
    let elapsed = stopwatch()
    let scanned = 0
    for (let from = 0n; ; ) {
      const batch = await runtime.store.readAll({ fromPosition: from, limit: 2000 })
      if (batch.length === 0) break
      scanned += batch.length
      from = batch[batch.length - 1].position
    }
    record('replay: readAll scan only', scanned, elapsed(), 'store.readAll, 2,000 per call')

    log('readAll + decode …')
    elapsed = stopwatch()
    let decoded = 0
    for (let from = 0n; ; ) {
      const batch = await runtime.store.readAll({ fromPosition: from, limit: 2000 })
      if (batch.length === 0) break
      for (const event of batch) runtime.codec.decode(event)
      decoded += batch.length
      from = batch[batch.length - 1].position
    }
    record('replay: readAll + decode', decoded, elapsed(), 'codec.decode: decrypts personal fields')

    log('rebuild …')
    elapsed = stopwatch()
    const applied = await runtime.runner.rebuild()
    record('replay: runner.rebuild()', applied, elapsed(), 'drop read models, decode + all projections')

    const count = (table: string): number =>
      (runtime.readStore.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n
    log(
      `  read models: ${fmt(count('users'))} users, ${fmt(count('sessions'))} sessions, ` +
        `${fmt(count('activity'))} activity rows`,
    )
    return { mix }
  } finally {
    await runtime.close()
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now()
  const loadBefore = loadavg()
  log(`bench/store.ts in ${root}`)
  log(`raw appends (${fmt(APPENDS)} NORMAL, ${fmt(FULL_APPENDS)} FULL) …`)
  await rawAppends('NORMAL', APPENDS)
  await rawAppends('FULL', FULL_APPENDS)
  log(`command appends (${fmt(APPENDS)}) …`)
  await commandAppends(APPENDS)
  const { mix } = await replay(EVENTS)

  const total = [...mix.values()].reduce((a, b) => a + b, 0)
  console.log(`\nHistory mix (${fmt(total)} events):\n`)
  console.log('| event type | count | share |')
  console.log('|---|---:|---:|')
  for (const [type, n] of [...mix].sort((a, b) => b[1] - a[1])) {
    console.log(`| ${type} | ${fmt(n)} | ${((n / total) * 100).toFixed(1)}% |`)
  }
  const loadAfter = loadavg()
  const load = (l: number[]): string => l.map((x) => x.toFixed(1)).join(' ')
  console.log(
    `\nEmbedded SQLite store, Node ${process.version}, ${cpus().length} CPUs, ` +
      `load average ${load(loadBefore)} before, ${load(loadAfter)} after:\n`,
  )
  console.log('| measurement | events | seconds | events/s | CPU | notes |')
  console.log('|---|---:|---:|---:|---:|---|')
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${fmt(r.count)} | ${seconds(r.ms)} | ${fmt(perSecond(r))} | ${cpuShare(r)} | ${r.note} |`,
    )
  }
  console.log(`\nTotal ${seconds(performance.now() - started)} s.`)
  console.log(
    `\n${JSON.stringify({
      bench: 'store',
      node: process.version,
      events: EVENTS,
      cpus: cpus().length,
      loadavg: { before: loadBefore, after: loadAfter },
      totalSeconds: Number(seconds(performance.now() - started)),
      results: rows.map((r) => ({
        name: r.name,
        events: r.count,
        seconds: Number(seconds(r.ms)),
        cpuSeconds: Number(seconds(r.cpuMs)),
        perSecond: Math.round(perSecond(r)),
      })),
      mix: Object.fromEntries(mix),
    })}`,
  )
}

try {
  await main()
} finally {
  rmSync(root, { recursive: true, force: true })
}
