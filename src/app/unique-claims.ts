/**
 * Username and email uniqueness: each normalised value is held under its HMAC (keyed by the
 * uniqueness secret, so no personal value sits in the index) by at most one account. A claim
 * left behind by a registration that crashed half-way (its owner never got an account) is taken
 * over after a grace period, and one left by a deleted account at once.
 *
 * A claim is an index, not history: the embedded store and PostgreSQL keep claims in a table
 * whose rows are really deleted on release, so after an erasure nothing is left to test a guess
 * of the erased email or username against. (EventStoreDB has no such table: there claims stay
 * the claim streams of the first release, whose names keep the HMACs.)
 */
import { createHmac } from 'node:crypto'
import type { DatabaseSync } from 'node:sqlite'
import { type EventStore, type NewEvent, WrongExpectedRevisionError } from '../eventstore/event-store.ts'
import { createIfMissing, type SqlPool } from '../eventstore/sql-pool.ts'
import { eventMetadata } from './event-metadata.ts'
import { accountStream, type ClaimKind, claimOf, claimStream } from './streams.ts'

const ABANDONED_AFTER_MS = 60_000
const MAX_ATTEMPTS = 5

export function normalise(kind: ClaimKind, value: string): string {
  const trimmed = value.normalize('NFKC').trim()
  return kind === 'email' ? trimmed.toLowerCase() : trimmed.toLowerCase()
}

export type Holder = { ownerId: number; claimedAt: string; version: unknown }

/** Where claims are kept: one holder per (kind, key), changed only from the holder last read. */
export interface ClaimIndex {
  holder(kind: ClaimKind, key: string): Promise<Holder | null>
  /** Takes the value when it is free (`from` null) or still held as read in `from`; false when someone was faster. */
  take(kind: ClaimKind, key: string, ownerId: number, from: Holder | null, at: string): Promise<boolean>
  /** Removes the claim if `ownerId` holds it. */
  drop(kind: ClaimKind, key: string, ownerId: number): Promise<void>
}

/** Claims in a table of the embedded store's own file, whose deleted rows are zeroed. */
export function createTableClaimIndex(db: DatabaseSync): ClaimIndex {
  db.exec(`
    PRAGMA secure_delete = ON;
    CREATE TABLE IF NOT EXISTS unique_claims (
      kind TEXT NOT NULL,
      key TEXT NOT NULL,
      owner_id INTEGER NOT NULL,
      claimed_at TEXT NOT NULL,
      PRIMARY KEY (kind, key)
    ) WITHOUT ROWID;
  `)
  importStreamClaims(db)
  const select = db.prepare('SELECT owner_id, claimed_at FROM unique_claims WHERE kind = ? AND key = ?')
  const insert = db.prepare(
    'INSERT INTO unique_claims (kind, key, owner_id, claimed_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
  )
  const replace = db.prepare(
    'UPDATE unique_claims SET owner_id = ?, claimed_at = ? WHERE kind = ? AND key = ? AND owner_id = ? AND claimed_at = ?',
  )
  const remove = db.prepare('DELETE FROM unique_claims WHERE kind = ? AND key = ? AND owner_id = ?')
  return {
    async holder(kind, key) {
      const row = select.get(kind, key) as { owner_id: number; claimed_at: string } | undefined
      return row ? { ownerId: row.owner_id, claimedAt: row.claimed_at, version: null } : null
    },
    async take(kind, key, ownerId, from, at) {
      const result = from
        ? replace.run(ownerId, at, kind, key, from.ownerId, from.claimedAt)
        : insert.run(kind, key, ownerId, at)
      return Number(result.changes) === 1
    },
    async drop(kind, key, ownerId) {
      remove.run(kind, key, ownerId)
    },
  }
}

/**
 * Stores of the first release hold claims as streams: their current holders move into the
 * table once, so no value can be claimed twice across the upgrade. (The old streams' names
 * keep their HMACs: history cannot be rewritten.)
 */
function importStreamClaims(db: DatabaseSync): void {
  const hasEvents = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'streams'").get()
  if (!hasEvents) return
  db.exec('CREATE TABLE IF NOT EXISTS unique_claims_imported (id INTEGER PRIMARY KEY CHECK (id = 1))')
  if (db.prepare('SELECT 1 FROM unique_claims_imported').get()) return
  const heads = db
    .prepare(
      `SELECT e.stream_id, e.type, e.data, e.metadata FROM streams s JOIN events e
         ON e.stream_id = s.stream_id AND e.revision = s.revision
       WHERE s.stream_id LIKE 'username-%' OR s.stream_id LIKE 'email-%'`,
    )
    .all() as { stream_id: string; type: string; data: string; metadata: string }[]
  const insert = db.prepare(
    'INSERT INTO unique_claims (kind, key, owner_id, claimed_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
  )
  db.exec('BEGIN IMMEDIATE')
  try {
    for (const head of heads) {
      if (head.type !== 'UniqueValueClaimed') continue
      const claim = claimOf(head.stream_id)
      if (!claim) continue
      const owner = (JSON.parse(head.data) as { owner_id: number }).owner_id
      const at = (JSON.parse(head.metadata) as { occurred_at: string }).occurred_at
      insert.run(claim.kind, claim.key, owner, at)
    }
    db.exec('INSERT INTO unique_claims_imported (id) VALUES (1)')
    db.exec('COMMIT')
  } catch (error) {
    db.exec('ROLLBACK')
    throw error
  }
}

/** Claims in a table of the shared PostgreSQL database: every instance sees one holder per value. */
export async function createPostgresClaimIndex(pool: SqlPool): Promise<ClaimIndex> {
  await createIfMissing(
    pool,
    `
      CREATE TABLE IF NOT EXISTS unique_claims (
        kind text NOT NULL,
        key text NOT NULL,
        owner_id bigint NOT NULL,
        claimed_at text NOT NULL,
        PRIMARY KEY (kind, key)
      )`,
  )
  return {
    async holder(kind, key) {
      const { rows } = await pool.query(
        'SELECT owner_id, claimed_at FROM unique_claims WHERE kind = $1 AND key = $2',
        [kind, key],
      )
      const row = rows[0]
      return row ? { ownerId: Number(row.owner_id), claimedAt: String(row.claimed_at), version: null } : null
    },
    async take(kind, key, ownerId, from, at) {
      const result = from
        ? await pool.query(
            'UPDATE unique_claims SET owner_id = $1, claimed_at = $2 WHERE kind = $3 AND key = $4 AND owner_id = $5 AND claimed_at = $6',
            [ownerId, at, kind, key, from.ownerId, from.claimedAt],
          )
        : await pool.query(
            'INSERT INTO unique_claims (kind, key, owner_id, claimed_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
            [kind, key, ownerId, at],
          )
      return result.rowCount === 1
    },
    async drop(kind, key, ownerId) {
      await pool.query('DELETE FROM unique_claims WHERE kind = $1 AND key = $2 AND owner_id = $3', [
        kind,
        key,
        ownerId,
      ])
    },
  }
}

/** Claims as streams (`username-<key>`), for stores without a table that can delete (EventStoreDB). */
export function createStreamClaimIndex(store: EventStore, now: () => Date = () => new Date()): ClaimIndex {
  const event = (type: string, ownerId: number): NewEvent => ({
    type,
    data: { owner_id: ownerId },
    metadata: eventMetadata(now()),
  })
  const append = async (
    stream: string,
    events: NewEvent[],
    expected: number | 'no_stream',
  ): Promise<boolean> => {
    try {
      await store.append(stream, events, expected)
      return true
    } catch (error) {
      if (error instanceof WrongExpectedRevisionError) return false
      throw error
    }
  }
  return {
    async holder(kind, key) {
      const last = (await store.readStream(claimStream(kind, key))).at(-1)
      if (!last) return null
      const held = last.type === 'UniqueValueClaimed'
      return held
        ? {
            ownerId: last.data.owner_id as number,
            claimedAt: last.metadata.occurred_at,
            version: last.revision,
          }
        : { ownerId: 0, claimedAt: last.metadata.occurred_at, version: last.revision }
    },
    async take(kind, key, ownerId, from) {
      const stream = claimStream(kind, key)
      const events = from && from.ownerId !== 0 ? [event('UniqueValueReleased', from.ownerId)] : []
      events.push(event('UniqueValueClaimed', ownerId))
      return append(stream, events, from ? (from.version as number) : 'no_stream')
    },
    async drop(kind, key, ownerId) {
      const stream = claimStream(kind, key)
      const last = (await store.readStream(stream)).at(-1)
      if (last?.type !== 'UniqueValueClaimed' || last.data.owner_id !== ownerId) return
      await append(stream, [event('UniqueValueReleased', ownerId)], last.revision)
    },
  }
}

export function createUniqueClaims(
  index: ClaimIndex,
  store: EventStore,
  secret: Uint8Array,
  now: () => Date = () => new Date(),
) {
  const keyOf = (kind: ClaimKind, value: string): string =>
    createHmac('sha256', secret)
      .update(`${kind}:${normalise(kind, value)}`)
      .digest('base64url')

  /** The holder never got an account (a crash mid-registration) or was deleted before releasing it. */
  async function isAbandoned(holder: Holder): Promise<boolean> {
    if (holder.ownerId === 0) return true // released (stream claims keep a released marker)
    const owner = await store.readStream(accountStream(holder.ownerId))
    if (owner.at(-1)?.type === 'AccountDeleted') return true
    return owner.length === 0 && now().getTime() - Date.parse(holder.claimedAt) >= ABANDONED_AFTER_MS
  }

  return {
    keyOf,

    /** True when `ownerId` now holds the value (also when it already did). */
    async claim(kind: ClaimKind, key: string, ownerId: number): Promise<boolean> {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const holder = await index.holder(kind, key)
        if (holder?.ownerId === ownerId) return true
        if (holder && !(await isAbandoned(holder))) return false
        if (await index.take(kind, key, ownerId, holder, now().toISOString())) return true
      }
      return false
    },

    release(kind: ClaimKind, key: string, ownerId: number): Promise<void> {
      return index.drop(kind, key, ownerId)
    },
  }
}

export type UniqueClaims = ReturnType<typeof createUniqueClaims>
