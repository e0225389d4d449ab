/**
 * The login throttle in the shared PostgreSQL database (issue 12): two throttle objects on one
 * database stand for two instances, and count the same failures exactly, in parallel.
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DomainError, isDomainError } from '../../domain/errors.ts'
import { automaticLockMinutes, MAX_CONSECUTIVE_FAILURES } from '../../domain/lockout.ts'
import { startTestPostgres, type TestPostgres } from '../../harness/postgres.ts'
import { throttleKey } from '../../src/app/login-throttle.ts'
import { createPostgresLoginThrottle, RESERVATION_TTL_MS } from '../../src/app/postgres-login-throttle.ts'

let database: TestPostgres
let pools: pg.Pool[] = []
let t = Date.parse('2026-12-05T12:00:00Z') // real epoch milliseconds: beyond a 32-bit integer
const nowMs = () => t
const never = () => 1 // no pruning in these tests

beforeAll(async () => {
  database = await startTestPostgres()
  pools = [new pg.Pool({ connectionString: database.url }), new pg.Pool({ connectionString: database.url })]
})
afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.end()))
  await database?.stop()
})

const instances = () => Promise.all(pools.map((pool) => createPostgresLoginThrottle(pool, nowMs, never)))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const wrong = async (): Promise<never> => {
  await sleep(Math.random() * 20)
  throw new DomainError('INVALID_CREDENTIALS', 'Incorrect username or password')
}
const right = async (): Promise<string> => 'ok'
const outcome = (error: unknown): string =>
  isDomainError(error, 'INVALID_CREDENTIALS') || isDomainError(error, 'ACCOUNT_LOCKED')
    ? error.code
    : String(error)

describe('postgres login throttle', () => {
  it('50 parallel wrong passwords over two instances: exactly 5 verdicts, then locked', async () => {
    const [a, b] = await instances()
    const key = throttleKey('203.0.113.1', 'Parallel')
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).guard(key, wrong, () => true)),
    )
    const codes = results.map((r) => (r.status === 'rejected' ? outcome(r.reason) : 'fulfilled'))
    expect(codes.filter((c) => c === 'INVALID_CREDENTIALS')).toHaveLength(MAX_CONSECUTIVE_FAILURES)
    expect(codes.filter((c) => c === 'ACCOUNT_LOCKED')).toHaveLength(50 - MAX_CONSECUTIVE_FAILURES)
    // Blocked for the first block length, on either instance, with the seconds left.
    const first = automaticLockMinutes(0) * 60
    expect(await a.enter(key)).toBe(first)
    t += 60_000
    expect(await b.enter(key)).toBe(first - 60)
    // After the block: five more tries, then twice as long.
    t += first * 1000
    for (let i = 0; i < MAX_CONSECUTIVE_FAILURES; i++) {
      await expect((i % 2 ? a : b).guard(key, wrong, () => true)).rejects.toMatchObject({
        code: 'INVALID_CREDENTIALS',
      })
    }
    expect(await a.enter(key)).toBe(automaticLockMinutes(1) * 60)
  })

  it('a success clears the failures; a reservation in flight counts until it ends', async () => {
    const [a, b] = await instances()
    const key = throttleKey('203.0.113.2', 'clears')
    for (let i = 0; i < MAX_CONSECUTIVE_FAILURES - 1; i++) {
      await expect(a.guard(key, wrong, () => true)).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' })
    }
    expect(await b.enter(key)).toBe(0) // the fifth place, reserved
    expect(await a.enter(key)).toBe(automaticLockMinutes(0) * 60)
    await b.released(key)
    expect(await b.guard(key, right, () => true)).toBe('ok')
    for (let i = 0; i < MAX_CONSECUTIVE_FAILURES - 1; i++) {
      await expect(b.guard(key, wrong, () => true)).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' })
    }
    // A result that completes nothing (a 2FA challenge) does not clear.
    expect(await a.guard(key, right, () => false)).toBe('ok')
    await expect(a.guard(key, wrong, () => true)).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' })
    await expect(a.guard(key, right, () => true)).rejects.toMatchObject({ code: 'ACCOUNT_LOCKED' })
  })

  it('forgetUsername lifts the block of every client for that username only', async () => {
    const [a, b] = await instances()
    const one = throttleKey('203.0.113.3', 'Forgotten')
    const two = throttleKey('session-42', 'forgotten')
    const other = throttleKey('203.0.113.3', 'kept')
    for (const key of [one, two, other]) {
      for (let i = 0; i < MAX_CONSECUTIVE_FAILURES; i++) {
        await expect(a.guard(key, wrong, () => true)).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' })
      }
      expect(await a.enter(key)).toBeGreaterThan(0)
    }
    await b.forgetUsername('FORGOTTEN')
    expect(await a.enter(one)).toBe(0)
    expect(await a.enter(two)).toBe(0)
    expect(await a.enter(other)).toBeGreaterThan(0)
  })

  it(`ignores reservations older than ${RESERVATION_TTL_MS / 1000} s (an instance that crashed)`, async () => {
    const [a, b] = await instances()
    const key = throttleKey('203.0.113.4', 'crashed')
    // An instance reserved every place and died before any verdict.
    for (let i = 0; i < MAX_CONSECUTIVE_FAILURES; i++) expect(await a.enter(key)).toBe(0)
    expect(await b.enter(key)).toBeGreaterThan(0)
    t += RESERVATION_TTL_MS + 1
    // The stale ones no longer count, and the failures still do.
    for (let i = 0; i < MAX_CONSECUTIVE_FAILURES; i++) {
      await expect(b.guard(key, wrong, () => true)).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' })
    }
    expect(await b.enter(key)).toBe(automaticLockMinutes(0) * 60)
    const { rows } = await pools[0]!.query('SELECT cardinality(reservations) AS n FROM login_throttle')
    expect(rows.every((row) => Number(row.n) <= MAX_CONSECUTIVE_FAILURES)).toBe(true)
  })

  it('stores no usernames', async () => {
    const { rows } = await pools[0]!.query(
      "SELECT count(*) AS n FROM login_throttle WHERE encode(username, 'escape') LIKE '%crashed%'",
    )
    expect(Number(rows[0]!.n)).toBe(0)
  })
})
