/**
 * The embedded event store: one SQLite file (node:sqlite) in WAL mode. An append is one
 * transaction; `synchronous=NORMAL` keeps every acknowledged append across a crash of the
 * process (kill -9), `FULL` also across a power cut, at about a tenth of the speed.
 */
import { existsSync, statSync } from 'node:fs'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import {
  type AppendResult,
  checkExpectedRevision,
  type EventHandler,
  type EventMetadata,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type RecordedEvent,
  type Subscription,
} from './event-store.ts'
import { chainEvents, GENESIS_HASH } from './hash-chain.ts'

/** 'AUTH' — marks the file as ours, so a foreign SQLite file is refused rather than written to. */
const APPLICATION_ID = 0x41555448
const SCHEMA_VERSION = 1
const READ_BATCH = 1000

export type SqliteEventStoreOptions = { synchronous?: 'NORMAL' | 'FULL' }

/** position, stream_id, revision, type, data, metadata: rows come back as arrays, cheaper than objects. */
type Row = [
  position: number,
  stream_id: string,
  revision: number,
  type: string,
  data: string,
  metadata: string,
]

export class StoreFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StoreFileError'
  }
}

/** Opens a SQLite file that must be new or carry our application id; never rewrites a foreign one. */
export function openOwnedDatabase(path: string, what: string): DatabaseSync {
  const isNew = !existsSync(path) || statSync(path).size === 0
  let db: DatabaseSync
  try {
    db = new DatabaseSync(path)
    const { application_id } = db.prepare('PRAGMA application_id').get() as { application_id: number }
    const tables = db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as {
      n: number
    }
    if (application_id !== APPLICATION_ID && !(isNew || (application_id === 0 && tables.n === 0))) {
      db.close()
      throw new StoreFileError(
        `${path} is a SQLite database of another application, not the ${what}; refusing to use it`,
      )
    }
    db.exec('PRAGMA journal_mode = WAL')
    if (application_id !== APPLICATION_ID) db.exec(`PRAGMA application_id = ${APPLICATION_ID}`)
  } catch (error) {
    if (error instanceof StoreFileError) throw error
    throw new StoreFileError(`cannot open the ${what} at ${path}: ${(error as Error).message}`, {
      cause: error,
    })
  }
  return db
}

export function openSqliteEventStore(path: string, options: SqliteEventStoreOptions = {}): EventStore {
  const db = openOwnedDatabase(path, 'event store')
  db.exec(`PRAGMA synchronous = ${options.synchronous ?? 'NORMAL'}`)
  db.exec('PRAGMA busy_timeout = 5000')
  const { user_version } = db.prepare('PRAGMA user_version').get() as { user_version: number }
  if (user_version > SCHEMA_VERSION) {
    db.close()
    throw new StoreFileError(
      `${path} has event store schema ${user_version}, newer than this version understands`,
    )
  }
  db.exec(`
    CREATE TABLE IF NOT EXISTS events (
      position INTEGER PRIMARY KEY AUTOINCREMENT,
      stream_id TEXT NOT NULL,
      revision INTEGER NOT NULL,
      event_id TEXT NOT NULL UNIQUE,
      type TEXT NOT NULL,
      data TEXT NOT NULL,
      metadata TEXT NOT NULL,
      UNIQUE (stream_id, revision)
    );
    CREATE TABLE IF NOT EXISTS streams (
      stream_id TEXT PRIMARY KEY,
      revision INTEGER NOT NULL,
      head_hash TEXT NOT NULL
    ) WITHOUT ROWID;
  `)
  // Only when it changes: setting it is a write, and a start that is refused later (a setting
  // that does not match the store) must leave the file as it was.
  if (user_version !== SCHEMA_VERSION) db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`)
  return new SqliteEventStore(db)
}

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

class SqliteEventStore implements EventStore {
  readonly #db: DatabaseSync
  readonly #head: StatementSync
  readonly #insert: StatementSync
  readonly #upsertHead: StatementSync
  readonly #readStream: StatementSync
  readonly #readAll: StatementSync
  readonly #headPosition: StatementSync
  readonly #wakeUps = new Set<() => void>()
  #closed = false

  constructor(db: DatabaseSync) {
    this.#db = db
    this.#head = db.prepare('SELECT revision, head_hash FROM streams WHERE stream_id = ?')
    this.#insert = db.prepare(
      'INSERT INTO events (stream_id, revision, event_id, type, data, metadata) VALUES (?, ?, ?, ?, ?, ?)',
    )
    this.#upsertHead = db.prepare(
      'INSERT INTO streams (stream_id, revision, head_hash) VALUES (?, ?, ?) ' +
        'ON CONFLICT (stream_id) DO UPDATE SET revision = excluded.revision, head_hash = excluded.head_hash',
    )
    this.#readStream = db.prepare(
      'SELECT position, stream_id, revision, type, data, metadata FROM events WHERE stream_id = ? AND revision >= ? ORDER BY revision',
    )
    this.#readAll = db.prepare(
      'SELECT position, stream_id, revision, type, data, metadata FROM events WHERE position > ? ORDER BY position LIMIT ?',
    )
    // Replays read a million rows: arrays instead of row objects roughly halve the cost of a row.
    // The last row of the rowid b-tree: O(log n), no event is read.
    this.#headPosition = db.prepare('SELECT coalesce(max(position), 0) AS position FROM events')
    this.#readStream.setReturnArrays(true)
    this.#readAll.setReturnArrays(true)
  }

  async append(stream: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    this.#assertOpen()
    if (events.length === 0) throw new Error('append needs at least one event')
    let result: AppendResult
    this.#db.exec('BEGIN IMMEDIATE')
    try {
      const head = this.#head.get(stream) as { revision: number; head_hash: string } | undefined
      checkExpectedRevision(stream, expected, head ? head.revision : 'no_stream')
      const first = head ? head.revision + 1 : 0
      const chained = chainEvents(stream, first, head?.head_hash ?? GENESIS_HASH, events)
      let position = 0
      for (const [i, event] of chained.entries()) {
        const info = this.#insert.run(
          stream,
          first + i,
          event.metadata.event_id,
          event.type,
          JSON.stringify(event.data),
          JSON.stringify(event.metadata),
        )
        position = Number(info.lastInsertRowid)
      }
      const last = chained[chained.length - 1]
      this.#upsertHead.run(stream, first + chained.length - 1, last.metadata.hash)
      this.#db.exec('COMMIT')
      result = { next_expected_revision: first + chained.length - 1, position: BigInt(position) }
    } catch (error) {
      this.#db.exec('ROLLBACK')
      throw error
    }
    for (const wake of this.#wakeUps) wake()
    return result
  }

  async readStream(stream: string, options: { fromRevision?: number } = {}): Promise<RecordedEvent[]> {
    this.#assertOpen()
    return (this.#readStream.all(stream, options.fromRevision ?? 0) as unknown as Row[]).map(toRecorded)
  }

  async readAll(options: { fromPosition?: bigint; limit?: number } = {}): Promise<RecordedEvent[]> {
    return this.#readAllSync(options.fromPosition ?? 0n, options.limit ?? READ_BATCH)
  }

  #readAllSync(from: bigint, limit: number): RecordedEvent[] {
    this.#assertOpen()
    return (this.#readAll.all(Number(from), limit) as unknown as Row[]).map(toRecorded)
  }

  subscribeAll(
    fromPosition: bigint | null,
    handler: EventHandler,
    onError?: (error: unknown) => void,
  ): Subscription {
    let last = fromPosition ?? 0n
    let closed = false
    let running: Promise<void> | null = null
    let again = false

    const pull = async (): Promise<void> => {
      while (!closed && !this.#closed) {
        const batch = this.#readAllSync(last, READ_BATCH)
        if (batch.length === 0) return
        for (const event of batch) {
          if (closed) return
          await handler(event)
          last = event.position
        }
      }
    }
    // A wake-up during a pull makes it pull once more; `running` is cleared in the same
    // microtask as the last check of `again`, so no commit can slip between the two.
    const run = (): Promise<void> => {
      const pass = (async () => {
        try {
          do {
            again = false
            await pull()
          } while (again && !closed)
        } finally {
          running = null
        }
      })()
      running = pass
      return pass
    }
    const stop = (error: unknown): void => {
      closed = true
      this.#wakeUps.delete(wake)
      if (onError) onError(error)
      else console.error('subscription stopped:', error)
    }
    const wake = (): void => {
      if (closed) return
      if (running) again = true
      else run().catch(stop)
    }
    this.#wakeUps.add(wake)
    const caughtUp = run()
    caughtUp.catch(() => {
      closed = true
      this.#wakeUps.delete(wake)
    })
    return {
      caughtUp,
      close: async () => {
        closed = true
        this.#wakeUps.delete(wake)
        await running?.catch(() => {})
      },
    }
  }

  async headPosition(): Promise<bigint> {
    this.#assertOpen()
    return BigInt((this.#headPosition.get() as { position: number }).position)
  }

  async listStreams(): Promise<string[]> {
    this.#assertOpen()
    return (
      this.#db.prepare('SELECT stream_id FROM streams ORDER BY stream_id').all() as { stream_id: string }[]
    ).map((r) => r.stream_id)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#wakeUps.clear()
    this.#db.close()
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('event store is closed')
  }
}
