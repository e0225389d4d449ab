/**
 * Do response times tell whether an account exists? Starts the service (`src/main.ts`, a temporary
 * DATA_DIR, rate limits off, a free loopback port), registers accounts, then measures two timing
 * oracles, one after the other, each alternating the two kinds of request (which goes first
 * alternates too, so drift in the machine's load weighs on both alike):
 *   login   POST /token failed logins: an unknown username (fresh each attempt) vs a known username
 *           with a wrong password (a fresh known account every --per-account attempts, at most 4:
 *           the lockout is at 5);
 *   reset   POST /auth/password-reset-request: an unregistered email (fresh each attempt) vs a
 *           registered one (a fresh account each attempt); both answer 200.
 * For each it prints the median time of both kinds and how well the response time classifies a
 * single request: the best single threshold (either direction) found on the first half of the
 * pairs, applied to the second half (held-out accuracy; 50 % is a coin flip; target ≤ 55 %), next
 * to the best threshold's accuracy on all pairs (in-sample, optimistic). It also checks that the
 * two kinds get the same answer apart from timing: status, body and headers other than Date.
 * Each timed request waits --gap-ms first, so background work of the previous one (the reset
 * mail) does not land on it: the figures are what a patient prober sees.
 * It is a report: the exit code is 0 whatever the accuracy, unless --fail-above is given, then 1
 * if a held-out accuracy exceeds that many percent (a failed setup or an unexpected status: 1).
 * Usage: npx node bench/enumeration.ts [--attempts 200] [--per-account 4] [--warmup 8] [--gap-ms 10]
 *   [--only login,reset] [--fail-above <percent>] [--max-seconds 300]
 *   (or npm run bench:enumeration -- --attempts 100 --fail-above 55)
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({
  options: {
    attempts: { type: 'string', default: '200' },
    'per-account': { type: 'string', default: '4' },
    warmup: { type: 'string', default: '8' },
    'gap-ms': { type: 'string', default: '10' },
    only: { type: 'string', default: 'login,reset' },
    'fail-above': { type: 'string' },
    'max-seconds': { type: 'string', default: '300' },
  },
})

function usage(message: string): never {
  console.error(`${message}\nUsage: npx node bench/enumeration.ts [--attempts 200] [--per-account 4] [--warmup 8] \
[--gap-ms 10] [--only login,reset] [--fail-above <percent>] [--max-seconds 300]`)
  process.exit(2)
}
const count = (name: keyof typeof args, min: number): number => {
  const value = Number(args[name])
  if (!Number.isInteger(value) || value < min) usage(`--${name} must be an integer ≥ ${min}`)
  return value
}
const ATTEMPTS = count('attempts', 1)
const PER_ACCOUNT = Math.min(4, count('per-account', 1))
const WARMUP = count('warmup', 0)
const GAP_MS = count('gap-ms', 0)
const MAX_SECONDS = count('max-seconds', 1)
const FAIL_ABOVE = args['fail-above'] === undefined ? null : Number(args['fail-above'])
if (FAIL_ABOVE !== null && !(FAIL_ABOVE >= 0 && FAIL_ABOVE <= 100))
  usage('--fail-above must be a percentage 0–100')
const ROUTES = ['login', 'reset'] as const
type RouteName = (typeof ROUTES)[number]
const ONLY = args.only.split(',').map((name) => name.trim())
for (const name of ONLY) if (!(ROUTES as readonly string[]).includes(name)) usage(`unknown --only "${name}"`)
const chosen = ROUTES.filter((name) => ONLY.includes(name))
const STARTED = performance.now()
const LOAD_AT_START = loadavg()[0]

const FORM = 'application/x-www-form-urlencoded'
const JSON_TYPE = 'application/json'
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const dataDir = mkdtempSync(join(tmpdir(), 'auth-bench-enum-'))

/**
 * Starts the service on a port the OS picks, and resolves with its URL once it listens. Its log
 * goes to a file, not a pipe: a log line that only known accounts cause (a mail written to the
 * log) would otherwise wake this process while it times the answer.
 */
function startService(): Promise<{ child: ChildProcess; url: string }> {
  const logFile = join(dataDir, 'service.log')
  const out = openSync(logFile, 'w')
  const child = spawn(process.execPath, [join(root, 'src/main.ts')], {
    cwd: root,
    env: {
      ...process.env,
      DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      PORT: '0',
      RATE_LIMIT_PER_MINUTE: '0',
      ADMIN_BOOTSTRAP_TOKEN: 'enumeration-bench',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', out, 'inherit'],
  })
  closeSync(out)
  return new Promise((resolvePromise, reject) => {
    const deadline = Date.now() + 30_000
    child.once('exit', (code) => reject(new Error(`the service exited with ${code}`)))
    const poll = (): void => {
      for (const line of readFileSync(logFile, 'utf8').split('\n')) {
        try {
          const entry = JSON.parse(line) as { message?: string; url?: string }
          if (entry.message === 'listening' && entry.url) {
            resolvePromise({ child, url: entry.url })
            return
          }
        } catch {}
      }
      if (Date.now() > deadline) {
        reject(new Error('the service did not start within 30 s'))
        return
      }
      setTimeout(poll, 50)
    }
    poll()
  })
}

type Timed = { status: number; ms: number; answer: string }

/** One timed request; `answer` is what a client sees apart from timing (status, body, headers but Date). */
async function post(url: string, path: string, body: string, type: string): Promise<Timed> {
  const started = performance.now()
  const response = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': type }, body })
  const text = await response.text()
  const ms = performance.now() - started
  const headers: string[] = []
  response.headers.forEach((value, name) => {
    if (name !== 'date') headers.push(`${name}: ${value}`)
  })
  return { status: response.status, ms, answer: JSON.stringify([response.status, text, headers]) }
}

const form = (username: string, password: string): string =>
  new URLSearchParams({ username, password }).toString()

function quantile(sorted: number[], q: number): number {
  const position = (sorted.length - 1) * q
  const low = Math.floor(position)
  const high = Math.ceil(position)
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low)
}

const median = (samples: number[]): number =>
  quantile(
    [...samples].sort((a, b) => a - b),
    0.5,
  )

/** Says "known" when the time is above `threshold` (`knownAbove`), or below it. */
type Rule = { threshold: number; knownAbove: boolean }

/**
 * The single-threshold classifier that labels the most samples right: every cut between two
 * distinct sorted times (and below all of them), in both directions.
 */
function bestRule(known: number[], unknown: number[]): { rule: Rule; accuracy: number } {
  const all = [
    ...known.map((ms) => ({ ms, known: true })),
    ...unknown.map((ms) => ({ ms, known: false })),
  ].sort((a, b) => a.ms - b.ms)
  const total = all.length
  // Below every sample: "known" for all (or for none).
  let best = {
    rule: { threshold: Number.NEGATIVE_INFINITY, knownAbove: true },
    accuracy: known.length / total,
  }
  if (unknown.length > known.length)
    best = {
      rule: { threshold: Number.NEGATIVE_INFINITY, knownAbove: false },
      accuracy: unknown.length / total,
    }
  let knownBelow = 0
  let unknownBelow = 0
  for (let i = 0; i < total - 1; i++) {
    if (all[i].known) knownBelow++
    else unknownBelow++
    if (all[i + 1].ms === all[i].ms) continue
    const threshold = (all[i].ms + all[i + 1].ms) / 2
    const above = (known.length - knownBelow + unknownBelow) / total
    if (above > best.accuracy) best = { rule: { threshold, knownAbove: true }, accuracy: above }
    if (1 - above > best.accuracy) best = { rule: { threshold, knownAbove: false }, accuracy: 1 - above }
  }
  return best
}

function accuracyOf(rule: Rule, known: number[], unknown: number[]): number {
  let correct = 0
  for (const ms of known) if (ms > rule.threshold === rule.knownAbove) correct++
  for (const ms of unknown) if (ms > rule.threshold !== rule.knownAbove) correct++
  return correct / (known.length + unknown.length)
}

type Oracle = {
  route: string
  /** Times in pairs: known[i] and unknown[i] were measured one after the other. */
  known: number[]
  unknown: number[]
  /** Whether every answer of both kinds was the same apart from timing. */
  sameAnswer: boolean
}

type Report = {
  route: string
  n: number
  medianKnown: number
  medianUnknown: number
  heldOut: number | null
  heldOutRule: Rule | null
  inSample: number
  sameAnswer: boolean
}

function report(oracle: Oracle): Report {
  const { known, unknown } = oracle
  const n = known.length
  const half = Math.floor(n / 2)
  let heldOut: number | null = null
  let heldOutRule: Rule | null = null
  if (half >= 1) {
    heldOutRule = bestRule(known.slice(0, half), unknown.slice(0, half)).rule
    heldOut = accuracyOf(heldOutRule, known.slice(half), unknown.slice(half))
  }
  return {
    route: oracle.route,
    n,
    medianKnown: median(known),
    medianUnknown: median(unknown),
    heldOut,
    heldOutRule,
    inSample: bestRule(known, unknown).accuracy,
    sameAnswer: oracle.sameAnswer,
  }
}

/** Runs `attempts` pairs, alternating which kind goes first; stops early at `deadline`. */
async function measure(
  route: string,
  attempts: number,
  deadline: number,
  expectedStatus: number,
  knownRequest: (i: number) => Promise<Timed>,
  unknownRequest: (i: number) => Promise<Timed>,
): Promise<Oracle> {
  const oracle: Oracle = { route, known: [], unknown: [], sameAnswer: true }
  let firstAnswer: string | null = null
  const timed = async (request: (i: number) => Promise<Timed>, i: number): Promise<Timed> => {
    if (GAP_MS > 0) await sleep(GAP_MS)
    const result = await request(i)
    if (result.status !== expectedStatus)
      throw new Error(`${route}: expected HTTP ${expectedStatus}, got ${result.status}: ${result.answer}`)
    firstAnswer ??= result.answer
    if (result.answer !== firstAnswer) {
      if (oracle.sameAnswer) console.error(`${route}: answers differ:\n  ${firstAnswer}\n  ${result.answer}`)
      oracle.sameAnswer = false
    }
    return result
  }
  for (let i = 0; i < attempts && performance.now() < deadline; i++) {
    let k: Timed
    let u: Timed
    if (i % 2 === 0) {
      u = await timed(unknownRequest, i)
      k = await timed(knownRequest, i)
    } else {
      k = await timed(knownRequest, i)
      u = await timed(unknownRequest, i)
    }
    oracle.known.push(k.ms)
    oracle.unknown.push(u.ms)
  }
  return oracle
}

/** Registers `count` accounts, a few at a time (each costs an argon2 hash); their usernames. */
async function registerAccounts(url: string, prefix: string, count: number): Promise<string[]> {
  const usernames: string[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++
      const username = `${prefix}_${i}`
      const registered = await post(
        url,
        '/auth/register',
        JSON.stringify({
          username,
          email: `${username}@example.com`,
          password: `Correct-H0rse-${prefix}-${i}`,
        }),
        JSON_TYPE,
      )
      if (registered.status !== 200) throw new Error(`register ${username}: ${registered.answer}`)
      usernames[i] = username
    }
  }
  await Promise.all(Array.from({ length: 4 }, worker))
  return usernames
}

async function measureLogin(url: string, run: string, deadline: number): Promise<Oracle> {
  const accounts = await registerAccounts(url, `enum_${run}_l`, Math.ceil(ATTEMPTS / PER_ACCOUNT) + 1)
  const warmupAccount = accounts.pop()!
  const wrong = 'Wrong-passw0rd!'
  const unknownLogin = (i: number) => post(url, '/token', form(`ghost_${run}_${i}`, wrong), FORM)
  const knownLogin = (username: string) => post(url, '/token', form(username, wrong), FORM)
  // Warm-up: JIT, the argon2 workers, the read model's caches.
  for (let i = 0; i < WARMUP; i++) {
    await unknownLogin(-1 - i)
    if (i < PER_ACCOUNT) await knownLogin(warmupAccount)
  }
  return measure(
    'POST /token (failed login)',
    ATTEMPTS,
    deadline,
    401,
    (i) => knownLogin(accounts[Math.floor(i / PER_ACCOUNT)]),
    unknownLogin,
  )
}

async function measureReset(url: string, run: string, deadline: number): Promise<Oracle> {
  const accounts = await registerAccounts(url, `enum_${run}_r`, ATTEMPTS + 1)
  const warmupAccount = accounts.pop()!
  const resetRequest = (email: string) =>
    post(url, '/auth/password-reset-request', JSON.stringify({ email }), JSON_TYPE)
  const unknownReset = (i: number) => resetRequest(`ghost_${run}_r${i}@example.com`)
  for (let i = 0; i < WARMUP; i++) {
    await unknownReset(-1 - i)
    await resetRequest(`${warmupAccount}@example.com`)
  }
  return measure(
    'POST /auth/password-reset-request',
    ATTEMPTS,
    deadline,
    200,
    (i) => resetRequest(`${accounts[i]}@example.com`),
    unknownReset,
  )
}

const percent = (x: number | null): string => (x === null ? 'n/a' : `${(x * 100).toFixed(1)} %`)
const ms = (x: number): string => `${x.toFixed(2)} ms`

function printReports(reports: Report[]): void {
  console.log(
    `\nTiming oracles, alternating pairs, ${GAP_MS} ms before each request; accuracy of the best single` +
      ` threshold on one request's time (50 % = coin flip): found on the first half of the pairs, measured` +
      ` on the second half (held-out), and on all pairs (in-sample, optimistic).\n`,
  )
  console.log(
    '| route | n per kind | median known | median unknown | accuracy (held-out) | in-sample best | same answer |',
  )
  console.log('|---|---:|---:|---:|---:|---:|---|')
  for (const r of reports) {
    console.log(
      `| ${r.route} | ${r.n} | ${ms(r.medianKnown)} | ${ms(r.medianUnknown)} | ${percent(r.heldOut)} | ` +
        `${percent(r.inSample)} | ${r.sameAnswer ? 'yes' : '**no**'} |`,
    )
  }
  console.log('\ntarget: accuracy ≤ 55 %')
  console.log(
    `load average (1 min) ${LOAD_AT_START.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end: ` +
      'other work on the machine blurs the times (and can make held-out beat in-sample: different pairs)',
  )
  for (const r of reports) {
    if (r.n < ATTEMPTS) console.log(`(${r.route}: stopped after ${r.n} of ${ATTEMPTS} pairs, --max-seconds)`)
  }
  console.log(
    JSON.stringify(
      reports.map((r) => ({
        route: r.route,
        n: r.n,
        median_known_ms: Number(r.medianKnown.toFixed(3)),
        median_unknown_ms: Number(r.medianUnknown.toFixed(3)),
        accuracy_held_out: r.heldOut,
        threshold_ms: r.heldOutRule ? Number(r.heldOutRule.threshold.toFixed(3)) : null,
        known_if: r.heldOutRule ? (r.heldOutRule.knownAbove ? 'slower' : 'faster') : null,
        accuracy_in_sample: r.inSample,
        same_answer: r.sameAnswer,
      })),
    ),
  )
}

async function main(): Promise<void> {
  const { child, url } = await startService()
  const stop = (): void => {
    if (child.exitCode === null) child.kill('SIGTERM')
  }
  process.on('SIGINT', () => {
    stop()
    process.exit(130)
  })
  const reports: Report[] = []
  try {
    const run = Date.now().toString(36)
    const measureRoute: Record<RouteName, (url: string, run: string, deadline: number) => Promise<Oracle>> = {
      login: measureLogin,
      reset: measureReset,
    }
    for (const [index, name] of chosen.entries()) {
      // Each route gets an equal share of the time that is left.
      const left = STARTED + MAX_SECONDS * 1000 - performance.now()
      const deadline = performance.now() + left / (chosen.length - index)
      reports.push(report(await measureRoute[name](url, run, deadline)))
    }
  } finally {
    stop()
    await new Promise((resolveExit) =>
      child.exitCode === null ? child.once('exit', resolveExit) : resolveExit(null),
    )
    rmSync(dataDir, { recursive: true, force: true })
  }
  printReports(reports)
  if (FAIL_ABOVE !== null) {
    const over = reports.filter((r) => r.heldOut !== null && r.heldOut * 100 > FAIL_ABOVE)
    for (const r of over)
      console.log(`FAIL: ${r.route} held-out accuracy ${percent(r.heldOut)} > ${FAIL_ABOVE} %`)
    if (over.length > 0) process.exitCode = 1
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
