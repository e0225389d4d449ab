/**
 * The read models: one SQLite file with the projections' tables and a checkpoint, written in
 * the same transaction as each batch of events so every event is applied exactly once.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite'
import type { Projection, ReadModelWriter, SqlValue } from '../../projections/projection.ts'
import type { RecordedEvent } from '../eventstore/event-store.ts'
import { openOwnedDatabase } from '../eventstore/sqlite-event-store.ts'
import { MERKLE_SCHEMA, MERKLE_TABLES, MerkleTree } from './merkle-tree.ts'

export class ReadModelsOfAnotherStoreError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ReadModelsOfAnotherStoreError'
  }
}

type Named = { name: string }

/**
 * A live event is applied in a transaction of its own, and its leaf would cost that commit a
 * page of the leaves table (and every eighth event one of the nodes): about a tenth of the
 * command path's appends per second. So the leaves of small batches wait, in memory, until
 * TREE_BATCH of them are due or the oldest is TREE_MAX_LAG_MS old, then go into the tree in the
 * batch's transaction (or a timer's). Every read of the tree writes them first, so a tree head or
 * proof always covers every applied event. A crash loses only waiting leaves, which the next start
 * adds back from the store (`ProjectionRunner.start`, as for files from before the tree): the
 * tree may lag the projections' checkpoint, never disagree with the log.
 */
const TREE_BATCH = 64
const TREE_MAX_LAG_MS = 50

export class ReadStore {
  readonly db: DatabaseSync
  readonly #projections: readonly Projection[]
  readonly #statements = new Map<string, StatementSync>()
  readonly #writer: ReadModelWriter
  /** The log-wide Merkle tree, as far as the read models. */
  readonly tree: MerkleTree
  /** Applied events whose leaves are not in the tree yet (see TREE_BATCH). */
  #waiting: RecordedEvent[] = []
  #waitingSince = 0
  #flushTimer: ReturnType<typeof setTimeout> | null = null
  readonly #treeMaxLagMs: number

  /** `treeMaxLagMs`: how long a leaf may wait (see TREE_BATCH); tests stretch or shrink it. */
  constructor(path: string, projections: readonly Projection[], options: { treeMaxLagMs?: number } = {}) {
    this.#treeMaxLagMs = options.treeMaxLagMs ?? TREE_MAX_LAG_MS
    this.db = openOwnedDatabase(path, 'read-model store')
    // Read models hold decrypted personal data: zero deleted rows on disk, and a lost
    // transaction is rebuilt from the events, so fsync on every commit is not needed.
    this.db.exec('PRAGMA secure_delete = ON; PRAGMA synchronous = NORMAL')
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL)',
    )
    this.#projections = projections
    for (const p of projections) this.#createSchema(p)
    this.db.exec(MERKLE_SCHEMA)
    this.tree = new MerkleTree(this.db, () => this.flushTree())
    this.#writer = {
      run: (sql, ...params) => {
        this.#statement(sql).run(...params)
      },
      get: <T>(sql: string, ...params: SqlValue[]) => this.#statement(sql).get(...params) as T | undefined,
    }
  }

  /** A projection's tables, and the columns added since an older file was written (see `addedColumns`). */
  #createSchema(projection: Projection): void {
    this.db.exec(projection.schema)
    for (const { table, column, definition } of projection.addedColumns ?? []) {
      const columns = this.db.prepare('SELECT name FROM pragma_table_info(?)').all(table) as Named[]
      if (!columns.some((c) => c.name === column))
        this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`)
    }
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql)
    if (!statement) {
      statement = this.db.prepare(sql)
      this.#statements.set(sql, statement)
    }
    return statement
  }

  /**
   * Which event store these read models were built from (the id of its first settings event),
   * so a DATA_DIR moved to another store is refused instead of mixing two logs. Throws on a
   * mismatch; records the id when none is recorded yet.
   */
  belongTo(storeId: string | null): void {
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS store_identity (id INTEGER PRIMARY KEY CHECK (id = 1), store_id TEXT NOT NULL)',
    )
    const row = this.db.prepare('SELECT store_id FROM store_identity WHERE id = 1').get() as
      | { store_id: string }
      | undefined
    if (row && row.store_id !== storeId) {
      throw new ReadModelsOfAnotherStoreError(
        'the read models in DATA_DIR (read-models.db) were built from another event store; ' +
          'point EVENT_STORE_URL at that store, or delete read-models.db* to rebuild them from this one',
      )
    }
    if (!row && storeId !== null)
      this.db.prepare('INSERT INTO store_identity (id, store_id) VALUES (1, ?)').run(storeId)
  }

  checkpoint(): bigint {
    const row = this.#statement('SELECT position FROM checkpoint WHERE id = 1').get() as
      | { position: number }
      | undefined
    return BigInt(row?.position ?? 0)
  }

  /** Applies a batch of events and moves the checkpoint, all in one transaction. */
  applyBatch(events: readonly RecordedEvent[]): void {
    if (events.length === 0) return
    const waiting = this.#waiting
    const due =
      waiting.length + events.length >= TREE_BATCH ||
      (waiting.length > 0 && performance.now() - this.#waitingSince >= this.#treeMaxLagMs)
    this.db.exec('BEGIN')
    try {
      for (const event of events)
        for (const p of this.#projections) if (p.handles.has(event.type)) p.apply(event, this.#writer)
      if (due) {
        this.#appendLeaves(waiting)
        this.#appendLeaves(events)
      }
      this.#statement(
        'INSERT INTO checkpoint (id, position) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET position = excluded.position',
      ).run(events[events.length - 1].position)
      this.db.exec('COMMIT')
    } catch (error) {
      this.db.exec('ROLLBACK')
      this.tree.reload() // the waiting leaves stay waiting: their events' batches did commit
      throw error
    }
    if (due) {
      this.#waiting = []
      return
    }
    if (waiting.length === 0) this.#waitingSince = performance.now()
    waiting.push(...events)
    this.#flushTimer ??= setTimeout(() => {
      try {
        this.flushTree()
      } catch {
        // Kept waiting: the next batch or read of the tree tries again, and reports it.
      }
    }, this.#treeMaxLagMs)
    this.#flushTimer.unref?.()
  }

  /** Writes the leaves that wait (see TREE_BATCH) into the tree, in a transaction of their own. */
  flushTree(): void {
    this.#cancelFlush()
    if (this.#waiting.length === 0) return
    this.#addLeavesInTransaction(this.#waiting)
    this.#waiting = []
  }

  #cancelFlush(): void {
    if (this.#flushTimer) clearTimeout(this.#flushTimer)
    this.#flushTimer = null
  }

  #appendLeaves(events: readonly RecordedEvent[]): void {
    for (const e of events) this.tree.append(e.position, e.stream_id, e.revision, e.metadata.hash)
  }

  /** Adds these events' leaves, and nothing else, in one transaction. */
  #addLeavesInTransaction(events: readonly RecordedEvent[]): void {
    this.db.exec('BEGIN')
    try {
      this.#appendLeaves(events)
      this.db.exec('COMMIT')
    } catch (error) {
      this.db.exec('ROLLBACK')
      this.tree.reload()
      throw error
    }
  }

  /** Before replaying from the first event (see `Projection.bulkLoad`). */
  suspendIndexes(): void {
    for (const p of this.#projections) if (p.bulkLoad) this.db.exec(p.bulkLoad.suspend)
    this.#statements.clear() // statements prepared against the dropped objects
  }

  resumeIndexes(): void {
    for (const p of this.#projections) if (p.bulkLoad) this.db.exec(p.bulkLoad.resume)
    this.#statements.clear()
  }

  /**
   * Read models from before the tree existed: adds the leaves of events already applied, in
   * order, without applying them again. A no-op once the tree has caught up.
   */
  addLeaves(events: readonly RecordedEvent[]): void {
    this.flushTree()
    this.#addLeavesInTransaction(events)
  }

  /** Drops every read model and the checkpoint; the caller replays from the start. */
  reset(): void {
    this.#cancelFlush()
    this.#waiting = []
    this.#statements.clear()
    this.db.exec('BEGIN')
    for (const table of this.#tables()) this.db.exec(`DROP TABLE IF EXISTS ${table}`)
    this.db.exec('DELETE FROM checkpoint')
    for (const p of this.#projections) this.#createSchema(p)
    this.db.exec(MERKLE_SCHEMA)
    this.db.exec('COMMIT')
    this.tree.reload()
  }

  #tables(): string[] {
    return [...this.#projections.flatMap((p) => p.tables), ...MERKLE_TABLES]
  }

  /** Every read-model row, for comparing a live store with a rebuild. */
  dump(): Record<string, unknown[]> {
    this.flushTree()
    const out: Record<string, unknown[]> = {}
    for (const table of this.#tables())
      out[table] = this.db.prepare(`SELECT * FROM ${table} ORDER BY 1`).all()
    return out
  }

  close(): void {
    try {
      this.flushTree()
    } catch {
      // Not lost: the next start adds the leaves of applied events the tree lacks.
    }
    this.#cancelFlush()
    this.db.close()
  }
}
