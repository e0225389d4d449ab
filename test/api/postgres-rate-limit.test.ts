/** The rate limiter in the shared PostgreSQL database (issue 12): instances share one budget. */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestPostgres, type TestPostgres } from '../../harness/postgres.ts'
import { createPostgresRateLimiter } from '../../src/api/postgres-rate-limit.ts'

const ROUTE = 'auth.login'
let database: TestPostgres
let pools: pg.Pool[] = []

beforeAll(async () => {
  database = await startTestPostgres()
  pools = [new pg.Pool({ connectionString: database.url }), new pg.Pool({ connectionString: database.url })]
})
afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.end()))
  await database?.stop()
})

describe('postgres rate limiter', () => {
  it('counts the hits of two instances in one window: the 6th of limit 5 is refused', async () => {
    let t = 1_000_000
    const [a, b] = await Promise.all(pools.map((pool) => createPostgresRateLimiter(pool, 5, () => t)))
    const waits = await Promise.all(Array.from({ length: 5 }, (_, i) => (i % 2 ? a : b).hit('a', ROUTE)))
    expect(waits).toEqual([0, 0, 0, 0, 0])
    expect(await a!.hit('a', ROUTE)).toBe(60)
    expect(await b!.hit('a', ROUTE)).toBe(60)
    expect(await b!.hit('a', 'auth.register')).toBe(0)
    expect(await b!.hit('b', ROUTE)).toBe(0)
    t += 45_500
    expect(await a!.hit('a', ROUTE)).toBe(15)
    t += 14_500
    expect(await b!.hit('a', ROUTE)).toBe(0)
  })

  it('is exact under 30 parallel hits over two instances', async () => {
    const t = 5_000_000
    const [a, b] = await Promise.all(pools.map((pool) => createPostgresRateLimiter(pool, 5, () => t)))
    const waits = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b)!.hit('c', ROUTE)))
    expect(waits.filter((w) => w === 0)).toHaveLength(5)
  })

  it('prunes windows that ended long ago', async () => {
    let t = 9_000_000
    const limiter = await createPostgresRateLimiter(
      pools[0]!,
      5,
      () => t,
      () => 0,
    )
    await limiter.hit('old', ROUTE)
    t += 3 * 60_000
    await limiter.hit('new', ROUTE)
    const { rows } = await pools[0]!.query(
      "SELECT client FROM rate_limit_windows WHERE client IN ('old', 'new')",
    )
    expect(rows.map((row) => row.client)).toEqual(['new'])
  })

  it('never touches the database with no limit', async () => {
    const limiter = await createPostgresRateLimiter(pools[0]!, 0)
    expect(await limiter.hit('x', ROUTE)).toBe(0)
  })
})
