/**
 * Per-account data keys for crypto-shredding. Personal fields in events are encrypted with
 * their account's AES-256-GCM key; the keys live in `<dataDir>/keys.db`, wrapped by a master
 * key. Destroying a key leaves a tombstone and makes every field it encrypted unreadable.
 * Synchronous on purpose: projection replays decrypt about a million fields.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  type KeyObject,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto'
import {
  chmodSync,
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join } from 'node:path'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import { LRUCache } from 'lru-cache'

export type DataKeyStore = {
  /** Creates the owner's key if it has none; throws if it was destroyed. */
  ensureKey(owner: string): void
  /** `enc:v1:` + base64url(iv | ciphertext | tag), the owner bound as additional data. Creates the key if needed. */
  encrypt(owner: string, plaintext: string): string
  /** Null when the key is destroyed or missing, or the value is not an intact `enc:v1:` string. */
  decrypt(owner: string, value: string): string | null
  /** Crypto-shreds the owner: the key is gone for good, a tombstone stays. */
  destroy(owner: string): void
  isErased(owner: string): boolean
  /**
   * Makes the owner's key usable by the synchronous methods: creates it if it has none, fails if
   * it was destroyed (as `ensureKey`). A no-op for the embedded store, which reads its file.
   */
  prepare(owner: string): Promise<void>
  /** Fetches these owners' keys and tombstones into memory before `decrypt` (embedded: optional, faster). */
  preload(owners: string[]): Promise<void>
  close(): void | Promise<void>
}

export type DataKeyStoreOptions = {
  dataDir: string
  /** Base64 of 32 bytes (from the environment); otherwise `<dataDir>/keys/master.key`. */
  masterKey?: string
  /** Unwrapped keys kept in memory. */
  cacheSize?: number
}

export const ENCRYPTED_PREFIX = 'enc:v1:'

/** The owner was erased: its key is gone for good and cannot be created again. */
export class DataKeyDestroyedError extends Error {
  constructor(owner: string) {
    super(`The data key of ${owner} was destroyed; it cannot be recreated`)
    this.name = 'DataKeyDestroyedError'
  }
}
const IV_BYTES = 12
const TAG_BYTES = 16
export const KEY_BYTES = 32
const CHECK_LABEL = 'auth-service data-keys master-key check v1'

type KeyRow = { wrapped: Uint8Array | null }

export function openDataKeyStore(options: DataKeyStoreOptions): DataKeyStore {
  const dbPath = join(options.dataDir, 'keys.db')
  const db = openDatabase(dbPath)
  let master: KeyObject
  try {
    master = resolveMasterKey(db, dbPath, options)
  } catch (error) {
    db.close()
    throw error
  }
  const select: StatementSync = db.prepare('SELECT wrapped FROM data_keys WHERE owner = ?')
  const selectMany: StatementSync = db.prepare(
    'SELECT owner, wrapped FROM data_keys WHERE owner IN (SELECT value FROM json_each(?))',
  )
  const insert = db.prepare(
    'INSERT INTO data_keys (owner, wrapped, created_at) VALUES (?, ?, ?) ON CONFLICT (owner) DO NOTHING',
  )
  const remove = db.prepare('DELETE FROM data_keys WHERE owner = ?')
  const tombstone = db.prepare(
    'INSERT INTO data_keys (owner, wrapped, created_at, destroyed_at) VALUES (?, NULL, ?, ?)',
  )
  const createdAt = db.prepare('SELECT created_at FROM data_keys WHERE owner = ?')
  const cache = keyCache(options.cacheSize ?? 100_000)

  /** A live key, null for destroyed, undefined for never created. */
  function lookup(owner: string): KeyObject | null | undefined {
    const cached = cache.get(owner)
    if (cached !== undefined) return cached
    const row = select.get(owner) as KeyRow | undefined
    if (row === undefined) return undefined
    const key = row.wrapped === null ? null : unwrap(master, owner, row.wrapped, dbPath)
    cache.set(owner, key)
    return key
  }

  function ensure(owner: string): KeyObject {
    checkOwner(owner)
    const existing = lookup(owner)
    if (existing === null) throw new DataKeyDestroyedError(owner)
    if (existing !== undefined) return existing
    const key = randomBytes(KEY_BYTES)
    insert.run(owner, wrap(master, owner, key), new Date().toISOString())
    key.fill(0)
    // Re-read rather than trust our insert: another process may have created the key first.
    const stored = lookup(owner)
    if (!stored) throw new Error(`The data key of ${owner} could not be created`)
    return stored
  }

  return {
    ensureKey(owner) {
      ensure(owner)
    },

    encrypt(owner, plaintext) {
      return encryptField(ensure(owner), owner, plaintext)
    },

    decrypt(owner, value) {
      if (typeof value !== 'string' || !value.startsWith(ENCRYPTED_PREFIX)) return null
      const key = lookup(owner)
      return key ? decryptField(key, owner, value) : null
    },

    async prepare() {},

    // Not needed for correctness (lookup reads the file), but one query for a replay batch's
    // owners costs a fifth of a query each.
    async preload(owners) {
      const missing = owners.filter((owner) => cache.get(owner) === undefined)
      if (missing.length < 2) return
      for (const row of selectMany.all(JSON.stringify(missing)) as (KeyRow & { owner: string })[])
        cache.set(row.owner, row.wrapped === null ? null : unwrap(master, row.owner, row.wrapped, dbPath))
    },

    destroy(owner) {
      checkOwner(owner)
      const now = new Date().toISOString()
      db.exec('BEGIN IMMEDIATE')
      try {
        // Delete, then a fresh tombstone row (not an UPDATE in place): with secure_delete the
        // deleted cell is zeroed on its page wherever the tombstone lands.
        const row = createdAt.get(owner) as { created_at: string } | undefined
        remove.run(owner)
        tombstone.run(owner, row?.created_at ?? now, now)
        db.exec('COMMIT')
      } catch (error) {
        db.exec('ROLLBACK')
        throw error
      }
      cache.set(owner, null)
      // The WAL still holds old page images with the wrapped key: copy everything into the
      // database and truncate the WAL to zero bytes.
      const result = db.prepare('PRAGMA wal_checkpoint(TRUNCATE)').get() as { busy: number } | undefined
      if (result?.busy) {
        throw new Error(`Data key of ${owner} destroyed, but ${dbPath}-wal could not be truncated (busy)`)
      }
    },

    isErased(owner) {
      return lookup(owner) === null
    },

    close() {
      cache.clear()
      db.close()
    },
  }
}

/** `enc:v1:` + base64url(iv | ciphertext | tag), the owner bound as additional data. */
export function encryptField(key: KeyObject, owner: string, plaintext: string): string {
  const iv = randomBytes(IV_BYTES) // random 96-bit nonce: never reused under one key in practice
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(owner, 'utf8')) // a value copied into another account fails to decrypt
  const body = Buffer.concat([iv, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()])
  return ENCRYPTED_PREFIX + body.toString('base64url')
}

/** The plaintext, or null when the value is tampered, truncated, or bound to another owner. */
export function decryptField(key: KeyObject, owner: string, value: string): string | null {
  if (typeof value !== 'string' || !value.startsWith(ENCRYPTED_PREFIX)) return null
  const body = Buffer.from(value.slice(ENCRYPTED_PREFIX.length), 'base64url')
  if (body.length < IV_BYTES + TAG_BYTES) return null
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, body.subarray(0, IV_BYTES))
    decipher.setAAD(Buffer.from(owner, 'utf8'))
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES))
    const plain = decipher.update(body.subarray(IV_BYTES, body.length - TAG_BYTES))
    return Buffer.concat([plain, decipher.final()]).toString('utf8')
  } catch {
    return null
  }
}

export function checkOwner(owner: string): void {
  if (typeof owner !== 'string' || owner.length === 0)
    throw new Error('A data key owner must be a non-empty string')
}

function openDatabase(path: string): DatabaseSync {
  mkdirSync(dirname(path), { recursive: true })
  // Create the file 0600 ourselves; SQLite gives -wal and -shm the database file's mode.
  try {
    writeFileSync(path, '', { flag: 'wx', mode: 0o600 })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  }
  let db: DatabaseSync | undefined
  try {
    db = new DatabaseSync(path)
    db.exec('PRAGMA journal_mode = WAL')
    // Keys are few and precious: a committed key must survive a power cut.
    db.exec('PRAGMA synchronous = FULL')
    // Freed and deleted content is overwritten with zeros, so a destroyed key is not left on disk.
    db.exec('PRAGMA secure_delete = ON')
    db.exec(`
      CREATE TABLE IF NOT EXISTS data_keys (
        owner TEXT PRIMARY KEY,
        wrapped BLOB,
        created_at TEXT NOT NULL,
        destroyed_at TEXT
      );
      CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
    `)
    db.prepare('SELECT count(*) FROM data_keys').get()
    return db
  } catch (cause) {
    db?.close()
    const reason = cause instanceof Error ? cause.message : String(cause)
    throw new Error(`Data keys database ${path} cannot be opened (${reason}); restore it from a backup`, {
      cause,
    })
  }
}

/**
 * The master key comes from the option, else from `<dataDir>/keys/master.key`, generated on
 * first start only. A check value in `meta` catches a wrong or lost master key at open, instead
 * of every field silently decrypting to null as if erased.
 */
function resolveMasterKey(db: DatabaseSync, dbPath: string, options: DataKeyStoreOptions): KeyObject {
  const check = db.prepare("SELECT value FROM meta WHERE name = 'master_key_check'").get() as
    | { value: Uint8Array }
    | undefined
  const filePath = join(options.dataDir, 'keys', 'master.key')
  const master =
    options.masterKey !== undefined
      ? decodeMasterKey(options.masterKey, 'the master key option')
      : readMasterKeyFile(filePath, check === undefined)
  const expected = masterKeyCheck(master)
  if (check === undefined) {
    db.prepare("INSERT INTO meta (name, value) VALUES ('master_key_check', ?)").run(expected)
  } else if (check.value.length !== expected.length || !timingSafeEqual(check.value, expected)) {
    throw new Error(`The master key is not the one that wrapped the data keys in ${dbPath}`)
  }
  return secretKey(master)
}

export function masterKeyCheck(master: Buffer): Buffer {
  return createHmac('sha256', master).update(CHECK_LABEL).digest()
}

export function decodeMasterKey(text: string, source: string): Buffer {
  const trimmed = text.trim()
  const key = Buffer.from(trimmed, 'base64')
  // Buffer.from ignores junk; re-encoding proves the text really was base64 of 32 bytes.
  if (key.length !== KEY_BYTES || key.toString('base64') !== trimmed) {
    throw new Error(`${source} must be the base64 encoding of exactly 32 bytes`)
  }
  return key
}

function readMasterKeyFile(path: string, mayCreate: boolean): Buffer {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    // Never invent a new master key for a database whose keys an old one wrapped.
    if (!mayCreate) throw new Error(`Master key file ${path} is missing, but the data keys database needs it`)
    text = createMasterKeyFile(path)
  }
  return decodeMasterKey(text, `Master key file ${path}`)
}

/** Written 0600 in a 0700 directory, atomically, never over a file another process just made. */
function createMasterKeyFile(path: string): string {
  const dir = dirname(path)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chmodSync(dir, 0o700)
  const text = `${randomBytes(KEY_BYTES).toString('base64')}\n`
  const temp = `${path}.${process.pid}.${randomBytes(8).toString('hex')}.tmp`
  writeFileSync(temp, text, { flag: 'wx', mode: 0o600, flush: true })
  try {
    linkSync(temp, path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    return readFileSync(path, 'utf8')
  } finally {
    unlinkSync(temp)
  }
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd) // make the new directory entry durable
  } finally {
    closeSync(fd)
  }
  return text
}

/** Data key wrapped under the master key; the owner is bound in so rows cannot be swapped. */
export function wrap(master: KeyObject, owner: string, key: Buffer): Buffer {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', master, iv)
  cipher.setAAD(Buffer.from(`data-key:${owner}`, 'utf8'))
  return Buffer.concat([iv, cipher.update(key), cipher.final(), cipher.getAuthTag()])
}

export function unwrap(master: KeyObject, owner: string, wrapped: Uint8Array, where: string): KeyObject {
  const body = Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.byteLength)
  try {
    const decipher = createDecipheriv('aes-256-gcm', master, body.subarray(0, IV_BYTES))
    decipher.setAAD(Buffer.from(`data-key:${owner}`, 'utf8'))
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES))
    return secretKey(
      Buffer.concat([decipher.update(body.subarray(IV_BYTES, body.length - TAG_BYTES)), decipher.final()]),
    )
  } catch (cause) {
    // Not null: a key that exists but cannot be unwrapped is damage, not erasure.
    throw new Error(`The data key of ${owner} in ${where} cannot be unwrapped (corrupt or moved row)`, {
      cause,
    })
  }
}

/**
 * Key bytes as a KeyObject, the raw copy zeroed. KeyObjects keep the bytes out of the JS heap
 * and make createCipheriv about six times faster than a raw Buffer key (no re-import per call).
 */
export function secretKey(bytes: Buffer): KeyObject {
  const key = createSecretKey(bytes)
  bytes.fill(0)
  return key
}

/** Stands for null in the cache (lru-cache holds no null or undefined values). */
const DESTROYED = Symbol('destroyed')

/**
 * Unwrapped keys, bounded: at `maxEntries` the least recently used goes (lru-cache). Null marks
 * a destroyed key. `maxEntries` 0 keeps nothing.
 */
export function keyCache<V = KeyObject | null>(
  maxEntries: number,
): {
  get(owner: string): V | undefined
  set(owner: string, key: V): void
  clear(): void
} {
  if (maxEntries <= 0) return { get: () => undefined, set() {}, clear() {} }
  const entries = new LRUCache<string, NonNullable<V> | typeof DESTROYED>({ max: maxEntries })
  return {
    get(owner) {
      const entry = entries.get(owner)
      return entry === DESTROYED ? (null as V) : entry
    },
    set(owner, key) {
      entries.set(owner, key ?? DESTROYED)
    },
    clear: () => entries.clear(),
  }
}
