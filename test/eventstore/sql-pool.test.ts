/**
 * createIfMissing against a real PostgreSQL: instances that start at once on a new database all
 * create the same tables, and PostgreSQL fails the losers of that race in more than one way.
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestPostgres, type TestPostgres } from '../../harness/postgres.ts'
import { createIfMissing } from '../../src/eventstore/sql-pool.ts'

let database: TestPostgres
let pools: pg.Pool[] = []

beforeAll(async () => {
  database = await startTestPostgres()
  // One pool per "instance", as every instance has its own.
  pools = Array.from({ length: 6 }, () => new pg.Pool({ connectionString: database.url, max: 1 }))
})
afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.end()))
  await database?.stop()
})

describe('createIfMissing', () => {
  it('lets every instance of a simultaneous start through, and creates each table once', async () => {
    for (let round = 0; round < 20; round++) {
      const table = `race_${round}`
      await Promise.all(
        pools.map((pool) =>
          createIfMissing(pool, `CREATE TABLE IF NOT EXISTS ${table} (id bigint PRIMARY KEY, v text)`),
        ),
      )
      await Promise.all(
        pools.map((pool) => createIfMissing(pool, `CREATE INDEX IF NOT EXISTS ${table}_v ON ${table} (v)`)),
      )
      const { rows } = await pools[0].query('SELECT count(*)::int AS n FROM pg_class WHERE relname = $1', [
        table,
      ])
      expect(rows[0].n).toBe(1)
    }
  })

  it('still throws what is not a lost race', async () => {
    await expect(
      createIfMissing(pools[0], 'CREATE TABLE IF NOT EXISTS broken (id nonsense_type)'),
    ).rejects.toThrow(/nonsense_type/)
  })
})
