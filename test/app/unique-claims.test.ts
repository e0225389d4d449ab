/**
 * Uniqueness claims on both indexes (the embedded store's table, and the claim streams kept for
 * EventStoreDB), over a real SQLite store: one winner among concurrent claims, release, takeover
 * of abandoned claims, and the one-time import of a first-release store's claim streams.
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import pg from 'pg'

import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { startTestPostgres, type TestPostgres } from '../../harness/postgres.ts'
import {
  type ClaimIndex,
  createPostgresClaimIndex,
  createStreamClaimIndex,
  createTableClaimIndex,
  createUniqueClaims,
} from '../../src/app/unique-claims.ts'
import type { EventStore } from '../../src/eventstore/event-store.ts'
import { openOwnedDatabase, openSqliteEventStore } from '../../src/eventstore/sqlite-event-store.ts'
import { tempDataDir } from '../support/runtime.ts'

const { Pool } = pg
const SECRET = new Uint8Array(32).fill(7)
const opened: { close(): unknown }[] = []
afterEach(async () => {
  for (const thing of opened.splice(0)) await thing.close()
})

function openStore(): { dir: string; store: EventStore } {
  const dir = tempDataDir()
  const store = openSqliteEventStore(join(dir, 'events.db'))
  opened.push(store)
  return { dir, store }
}

function tableIndex(dir: string): ClaimIndex {
  const db = openOwnedDatabase(join(dir, 'events.db'), 'event store')
  opened.push(db)
  return createTableClaimIndex(db)
}

const registered = (id: number) => ({
  type: 'AccountRegistered',
  data: { user_id: id },
  metadata: {
    event_id: randomUUID(),
    schema_version: 1,
    occurred_at: new Date().toISOString(),
    actor_id: null,
    correlation_id: null,
    causation_id: null,
  },
})

let server: TestPostgres | null = null
let pool: pg.Pool | null = null
afterAll(async () => {
  await pool?.end()
  await server?.stop()
})

/** A fresh PostgreSQL database's pool (one embedded server for this file). */
async function postgresPool(): Promise<pg.Pool> {
  await pool?.end()
  await server?.stop()
  server = await startTestPostgres()
  pool = new Pool({ connectionString: server.url, max: 4 })
  return pool
}

describe.each(['table', 'streams', 'postgres'] as const)('unique claims on the %s index', (kind) => {
  async function setup(now = () => new Date()) {
    const { dir, store } = openStore()
    const index =
      kind === 'table'
        ? tableIndex(dir)
        : kind === 'postgres'
          ? await createPostgresClaimIndex(await postgresPool())
          : createStreamClaimIndex(store, now)
    return { dir, store, claims: createUniqueClaims(index, store, SECRET, now) }
  }

  it('lets exactly one of many concurrent claims win; the winner claims again idempotently', async () => {
    const { store, claims } = await setup()
    for (let id = 1; id <= 10; id++) await store.append(`user-${id}`, [registered(id)], 'no_stream')
    const key = claims.keyOf('username', 'Alice')
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => claims.claim('username', key, i + 1)),
    )
    expect(results.filter(Boolean)).toHaveLength(1)
    const winner = results.indexOf(true) + 1
    expect(await claims.claim('username', key, winner)).toBe(true)
    expect(await claims.claim('username', claims.keyOf('username', ' ALICE '), winner === 1 ? 2 : 1)).toBe(
      false,
    )
  })

  it('frees a value on release, and only for its holder', async () => {
    const { store, claims } = await setup()
    for (const id of [1, 2]) await store.append(`user-${id}`, [registered(id)], 'no_stream')
    const key = claims.keyOf('email', 'a@example.com')
    expect(await claims.claim('email', key, 1)).toBe(true)
    await claims.release('email', key, 2)
    expect(await claims.claim('email', key, 2)).toBe(false)
    await claims.release('email', key, 1)
    expect(await claims.claim('email', key, 2)).toBe(true)
  })

  it('takes over a claim whose owner never got an account, after a minute', async () => {
    let t = Date.parse('2026-12-01T00:00:00Z')
    const { store, claims } = await setup(() => new Date(t))
    await store.append('user-2', [registered(2)], 'no_stream')
    const key = claims.keyOf('username', 'ghost')
    expect(await claims.claim('username', key, 1)).toBe(true) // user 1 crashed before registering
    expect(await claims.claim('username', key, 2)).toBe(false)
    t += 61_000
    expect(await claims.claim('username', key, 2)).toBe(true)
  })
})

describe('the table index on a first-release store', () => {
  it('imports the holders of the claim streams once, so no value is claimed twice across the upgrade', async () => {
    const { dir, store } = openStore()
    const old = createUniqueClaims(createStreamClaimIndex(store), store, SECRET)
    await store.append('user-1', [registered(1)], 'no_stream')
    await store.append('user-2', [registered(2)], 'no_stream')
    const taken = old.keyOf('username', 'taken')
    const released = old.keyOf('username', 'released')
    expect(await old.claim('username', taken, 1)).toBe(true)
    expect(await old.claim('username', released, 1)).toBe(true)
    await old.release('username', released, 1)

    const upgraded = createUniqueClaims(tableIndex(dir), store, SECRET)
    expect(await upgraded.claim('username', taken, 2)).toBe(false)
    expect(await upgraded.claim('username', taken, 1)).toBe(true)
    expect(await upgraded.claim('username', released, 2)).toBe(true)
    // A second open does not import again (the released value stays with its new holder).
    const again = createUniqueClaims(tableIndex(dir), store, SECRET)
    expect(await again.claim('username', released, 1)).toBe(false)
  })
})
