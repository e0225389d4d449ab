/**
 * Does the login response time tell whether a username exists? Starts the service
 * (`src/main.ts`, a temporary DATA_DIR, rate limits off, a free loopback port), registers
 * accounts, then alternates failed logins with an unknown username and with a known username
 * plus a wrong password, timing each, and prints the median and p90 of both and their ratio
 * unknown/known (≈ 1.0 is the target: an unknown username costs a dummy argon2 verification).
 * Each known account gets at most 4 wrong passwords, staying below the lockout at 5.
 * Usage: npx node bench/enumeration.ts [--attempts 200] [--per-account 4] [--warmup 8] [--max-seconds 300]
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({
  options: {
    attempts: { type: 'string', default: '200' },
    'per-account': { type: 'string', default: '4' },
    warmup: { type: 'string', default: '8' },
    'max-seconds': { type: 'string', default: '300' },
  },
})
const ATTEMPTS = Number(args.attempts)
const PER_ACCOUNT = Math.min(4, Number(args['per-account']))
const WARMUP = Number(args.warmup)
const DEADLINE = performance.now() + Number(args['max-seconds']) * 1000

const FORM = 'application/x-www-form-urlencoded'
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const dataDir = mkdtempSync(join(tmpdir(), 'auth-bench-enum-'))

/** Starts the service on a port the OS picks, and resolves with its URL once it listens. */
function startService(): Promise<{ child: ChildProcess; url: string }> {
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
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error('the service did not start within 30 s')), 30_000)
    child.once('exit', (code) => reject(new Error(`the service exited with ${code}`)))
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { message?: string; url?: string }
        if (entry.message === 'listening' && entry.url) {
          clearTimeout(timer)
          resolvePromise({ child, url: entry.url })
        }
      } catch {}
    })
  })
}

async function post(
  url: string,
  path: string,
  body: string,
  type: string,
): Promise<{ status: number; ms: number }> {
  const started = performance.now()
  const response = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': type }, body })
  await response.arrayBuffer()
  return { status: response.status, ms: performance.now() - started }
}

const form = (username: string, password: string): string =>
  new URLSearchParams({ username, password }).toString()

function quantile(sorted: number[], q: number): number {
  const position = (sorted.length - 1) * q
  const low = Math.floor(position)
  const high = Math.ceil(position)
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low)
}

function summary(samples: number[]): { median: number; p90: number; n: number } {
  const sorted = [...samples].sort((a, b) => a - b)
  return { median: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), n: sorted.length }
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
  try {
    const accounts = Math.ceil(ATTEMPTS / PER_ACCOUNT) + 1 // one more for the warm-up
    const run = Date.now().toString(36)
    const usernames: string[] = []
    for (let i = 0; i < accounts && performance.now() < DEADLINE; i++) {
      const username = `enum_${run}_${i}`
      const registered = await post(
        url,
        '/auth/register',
        JSON.stringify({ username, email: `${username}@example.com`, password: `Correct-H0rse-${run}-${i}` }),
        'application/json',
      )
      if (registered.status !== 200) throw new Error(`register ${username}: HTTP ${registered.status}`)
      usernames.push(username)
    }
    const warmupAccount = usernames.pop()!

    const unknownLogin = (i: number) =>
      post(url, '/token', form(`ghost_${run}_${i}`, 'Wrong-passw0rd!'), FORM)
    const knownLogin = (username: string) => post(url, '/token', form(username, 'Wrong-passw0rd!'), FORM)

    // Warm-up: JIT, the argon2 workers, the read model's caches.
    for (let i = 0; i < WARMUP; i++) {
      await unknownLogin(-1 - i)
      if (i < PER_ACCOUNT) await knownLogin(warmupAccount)
    }

    const unknown: number[] = []
    const known: number[] = []
    for (let i = 0; i < ATTEMPTS && performance.now() < DEADLINE; i++) {
      const username = usernames[Math.floor(i / PER_ACCOUNT)]
      // Alternate which kind goes first, so drift in the machine's load weighs on both alike.
      let u: { status: number; ms: number }
      let k: { status: number; ms: number }
      if (i % 2 === 0) {
        u = await unknownLogin(i)
        k = await knownLogin(username)
      } else {
        k = await knownLogin(username)
        u = await unknownLogin(i)
      }
      if (u.status !== 401 || k.status !== 401)
        throw new Error(`expected 401 and 401, got ${u.status} and ${k.status}`)
      unknown.push(u.ms)
      known.push(k.ms)
    }

    const u = summary(unknown)
    const k = summary(known)
    const ms = (x: number): string => `${x.toFixed(1).padStart(7)} ms`
    console.log(
      `POST /token failed logins, ${u.n} of each kind, alternating (${accounts - 1} known accounts)`,
    )
    console.log(`                          median        p90`)
    console.log(`unknown username       ${ms(u.median)} ${ms(u.p90)}`)
    console.log(`known, wrong password  ${ms(k.median)} ${ms(k.p90)}`)
    console.log(
      `ratio unknown/known    ${(u.median / k.median).toFixed(3).padStart(10)} ${(u.p90 / k.p90).toFixed(3).padStart(10)}`,
    )
    if (u.n < ATTEMPTS) console.log(`(stopped after ${u.n} of ${ATTEMPTS} pairs: --max-seconds reached)`)
  } finally {
    stop()
    await new Promise((resolveExit) =>
      child.exitCode === null ? child.once('exit', resolveExit) : resolveExit(null),
    )
    rmSync(dataDir, { recursive: true, force: true })
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
