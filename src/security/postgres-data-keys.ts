/**
 * Per-account data keys in PostgreSQL, shared by every instance on one database (issue 12): what
 * instance A encrypted, instance B decrypts; a key destroyed by one is gone for all.
 *
 * The codec is synchronous (replays decrypt about a million fields), so the synchronous methods
 * work from memory only; the async `prepare` (before encrypting) and `preload` (before
 * decrypting a batch) fetch what they need first. A key used without them is a bug, not an
 * erasure: `ensureKey`/`encrypt` throw "not prepared", `decrypt`/`isErased` throw "not preloaded".
 *
 * Table `data_keys (owner, wrapped, created_at, destroyed_at)`: a key wrapped under MASTER_KEY
 * with the owner bound in (as in the embedded store), NULL once destroyed (the tombstone). Keys
 * are created race-free across instances: INSERT ... ON CONFLICT DO NOTHING, then read back the
 * winner. `data_keys_meta` holds the master-key check, so an instance with another MASTER_KEY is
 * refused at open instead of reading every field as erased.
 *
 * `destroy` is synchronous in the port: it marks the tombstone in memory at once and starts the
 * write; `flush()` awaits pending writes (and rejects if one failed), `close()` awaits them. A
 * write lost to a crash or an outage is made again: every instance destroys the key when it
 * projects the deletion, and at start for every erased account whose key is still there.
 * PostgreSQL keeps the old row version (with the wrapped key) until VACUUM removes it.
 */
import type { KeyObject } from 'node:crypto'
import { randomBytes, timingSafeEqual } from 'node:crypto'
import type pg from 'pg'
import { toUnavailableError } from '../eventstore/postgres-event-store.ts'
import {
  checkOwner,
  DataKeyDestroyedError,
  type DataKeyStore,
  decodeMasterKey,
  decryptField,
  ENCRYPTED_PREFIX,
  encryptField,
  KEY_BYTES,
  keyCache,
  masterKeyCheck,
  secretKey,
  unwrap,
  wrap,
} from './data-keys.ts'

export type PostgresDataKeyStoreOptions = {
  /** The event store's pool (`store.pool`); this store never ends it. */
  pool: pg.Pool
  /** MASTER_KEY: base64 of 32 bytes, the same on every instance. Required. */
  masterKey: string | null | undefined
  /** Unwrapped keys kept in memory (default 100 000). A batch must fit between preload and decode. */
  cacheSize?: number
  /** The connection string without its password, for messages. */
  url?: string
  /** A tombstone write that failed (it is also reported by the next `flush`). */
  onError?: (error: unknown, owner: string) => void
}

export type PostgresDataKeyStore = DataKeyStore & {
  /** Awaits every tombstone write started so far; rejects if one of them failed. */
  flush(): Promise<void>
  close(): Promise<void>
}

/** Arbitrary constant ('AUTHKEYS'): the advisory lock key of schema setup. */
const SCHEMA_LOCK = '4702111234490599763'
/** An owner known to have no key yet (after preload). */
const NONE = 'none'
type Entry = KeyObject | null | typeof NONE

export async function openPostgresDataKeyStore(
  options: PostgresDataKeyStoreOptions,
): Promise<PostgresDataKeyStore> {
  const { pool } = options
  const where = `PostgreSQL${options.url ? ` at ${options.url}` : ''}`
  if (!options.masterKey) {
    throw new Error(
      'MASTER_KEY is required when the data keys are in PostgreSQL (EVENT_STORE_URL or DATA_KEYS_URL): every instance ' +
        'must wrap the shared data keys with the same master key. Set MASTER_KEY to the base64 of 32 ' +
        'random bytes, the same on every instance.',
    )
  }
  const masterBytes = decodeMasterKey(options.masterKey, 'MASTER_KEY')
  const query = async <R extends pg.QueryResultRow>(text: string, values: unknown[]) => {
    try {
      return await pool.query<R>(text, values)
    } catch (error) {
      throw toUnavailableError(error, options.url ?? 'PostgreSQL')
    }
  }

  await createSchema(pool).catch((error) => {
    throw toUnavailableError(error, options.url ?? 'PostgreSQL')
  })
  const expected = masterKeyCheck(masterBytes)
  await query(
    "INSERT INTO data_keys_meta (name, value) VALUES ('master_key_check', $1) ON CONFLICT (name) DO NOTHING",
    [expected],
  )
  const check = (
    await query<{ value: Buffer }>("SELECT value FROM data_keys_meta WHERE name = 'master_key_check'", [])
  ).rows[0]?.value
  if (!check || check.length !== expected.length || !timingSafeEqual(check, expected)) {
    throw new Error(
      `MASTER_KEY is not the master key that wrapped the data keys in ${where}: ` +
        'every instance sharing the database needs the same MASTER_KEY',
    )
  }
  const master = secretKey(masterBytes)

  const cache = keyCache<Entry>(options.cacheSize ?? 100_000)
  const pending = new Set<Promise<void>>()
  let failures: unknown[] = []

  const toEntry = (owner: string, wrapped: Buffer | null): KeyObject | null =>
    wrapped === null ? null : unwrap(master, owner, wrapped, where)

  async function read(owner: string): Promise<KeyObject | null | undefined> {
    const row = (
      await query<{ wrapped: Buffer | null }>('SELECT wrapped FROM data_keys WHERE owner = $1', [owner])
    ).rows[0]
    if (row === undefined) return undefined
    const key = toEntry(owner, row.wrapped)
    cache.set(owner, key)
    return key
  }

  function cachedKey(owner: string): KeyObject {
    checkOwner(owner)
    const entry = cache.get(owner)
    if (entry === null) throw new DataKeyDestroyedError(owner)
    if (entry === undefined || entry === NONE) {
      throw new Error(`The data key of ${owner} was not prepared: await prepare(owner) before encrypting`)
    }
    return entry
  }

  function loaded(owner: string): Entry {
    const entry = cache.get(owner)
    if (entry === undefined) {
      throw new Error(`The data key of ${owner} was not preloaded: await preload([owner]) before decrypting`)
    }
    return entry
  }

  return {
    async prepare(owner) {
      checkOwner(owner)
      const cached = cache.get(owner)
      if (cached === null) throw new DataKeyDestroyedError(owner)
      if (cached !== undefined && cached !== NONE) return
      let key = await read(owner)
      if (key === undefined) {
        const fresh = randomBytes(KEY_BYTES)
        const wrapped = wrap(master, owner, fresh)
        fresh.fill(0)
        await query(
          'INSERT INTO data_keys (owner, wrapped, created_at) VALUES ($1, $2, now()) ON CONFLICT (owner) DO NOTHING',
          [owner, wrapped],
        )
        // Read back the winner: another instance may have created (or destroyed) it first.
        key = await read(owner)
      }
      if (key === null) throw new DataKeyDestroyedError(owner)
      if (key === undefined) throw new Error(`The data key of ${owner} could not be created`)
    },

    async preload(owners) {
      // A tombstone is final; a live key may have been destroyed by another instance since.
      const wanted = [...new Set(owners)].filter((owner) => cache.get(owner) !== null)
      if (wanted.length === 0) return
      const { rows } = await query<{ owner: string; wrapped: Buffer | null }>(
        'SELECT owner, wrapped FROM data_keys WHERE owner = ANY($1::text[])',
        [wanted],
      )
      const found = new Set<string>()
      for (const row of rows) {
        found.add(row.owner)
        const cached = cache.get(row.owner)
        if (row.wrapped === null) cache.set(row.owner, null)
        else if (cached === undefined || cached === NONE)
          cache.set(row.owner, toEntry(row.owner, row.wrapped))
        else cache.set(row.owner, cached) // still live: keep the unwrapped key, refresh its place
      }
      for (const owner of wanted) if (!found.has(owner)) cache.set(owner, NONE)
    },

    ensureKey(owner) {
      cachedKey(owner)
    },

    encrypt(owner, plaintext) {
      return encryptField(cachedKey(owner), owner, plaintext)
    },

    decrypt(owner, value) {
      if (typeof value !== 'string' || !value.startsWith(ENCRYPTED_PREFIX)) return null
      const entry = loaded(owner)
      return entry === null || entry === NONE ? null : decryptField(entry, owner, value)
    },

    destroy(owner) {
      checkOwner(owner)
      cache.set(owner, null)
      const write = query(
        `INSERT INTO data_keys (owner, wrapped, created_at, destroyed_at) VALUES ($1, NULL, now(), now())
         ON CONFLICT (owner) DO UPDATE SET wrapped = NULL, destroyed_at = coalesce(data_keys.destroyed_at, now())`,
        [owner],
      ).then(
        () => {},
        (error) => {
          failures.push(error)
          options.onError?.(error, owner)
        },
      )
      pending.add(write)
      void write.finally(() => pending.delete(write))
    },

    isErased(owner) {
      return loaded(owner) === null
    },

    async flush() {
      await Promise.all([...pending])
      if (failures.length === 0) return
      const failed = failures
      failures = []
      throw failed.length === 1
        ? failed[0]
        : new AggregateError(failed, `${failed.length} data key tombstones were not written`)
    },

    async close() {
      await Promise.all([...pending])
      cache.clear()
    },
  }
}

async function createSchema(pool: pg.Pool): Promise<void> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    // Two instances starting together would both try to create the tables.
    await client.query(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`)
    await client.query(`
      CREATE TABLE IF NOT EXISTS data_keys (
        owner text PRIMARY KEY,
        wrapped bytea NULL,
        created_at timestamptz NOT NULL,
        destroyed_at timestamptz NULL
      );
      CREATE TABLE IF NOT EXISTS data_keys_meta (name text PRIMARY KEY, value bytea NOT NULL);
    `)
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  } finally {
    client.release()
  }
}
