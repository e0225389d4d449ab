/**
 * Seeds a DATA_DIR with users as the service itself would have written them, without HTTP and
 * without an argon2 hash per user: one PHC hash of `SEED_PASSWORD` is computed once per call and
 * reused for every user (a login with that password verifies against any seeded account).
 *
 * Per user, exactly what the service writes for a registration and a password login with one or
 * two token refreshes, through the service's own modules (store, data keys, codec and claim index
 * opened as `src/app/runtime.ts` opens them; `reserveId`, `claims.claim` and the command handler
 * with the real deciders, so metadata, encryption and hash chains are the real ones):
 *
 *   sequence-user        IdReserved                  (reserveId)
 *   unique_claims        username and email rows     (claims.claim; a table, no events)
 *   user-<id>            AccountRegistered           (accountDecider Register; username, email,
 *                                                     full name and password hash encrypted)
 *   (RecordSuccessfulLogin decides nothing for an account without failures: no event)
 *   sequence-session     IdReserved                  (reserveId)
 *   session-<sid>        SessionStarted              (sessionDecider Start; IP and user agent encrypted)
 *   session-<sid>        SessionRefreshed × 1 or 2   (sessionDecider Refresh, one append each)
 *
 * That is 5–6 appends and events per user (half the users refresh twice). The projection is not
 * run: the service catches up when it starts on the directory.
 *
 * What differs from the live path is only how writes are committed, for speed:
 *   - the data keys of a batch of users are created in one transaction on the data-key store's own
 *     connection (caught while `openDataKeyStore` opens it) instead of one `synchronous=FULL`
 *     transaction (an fsync, ~200 µs here) per registration;
 *   - the batch's claims are taken in one transaction on the claim index's connection;
 *   - the batch's appends run inside one transaction of the store's connection (each append's own
 *     BEGIN/COMMIT becomes a savepoint), instead of a commit per append.
 * Keys and claims are committed before the events that need them, so an interrupted seeding never
 * leaves an event whose key is missing (a rerun continues from the store's head: claims and keys
 * of ids that got no events are simply taken again by the same ids). User ids are predicted from
 * the head of `sequence-user` (this process must be the only writer: never seed while the service
 * runs on the directory), and each `reserveId` is checked against the prediction.
 *
 * Growing: `users` is the total wanted; the users already in the store (the head of
 * `sequence-user`, admins registered over HTTP included) count, so 10k → 100k adds 90k.
 *
 * Usage: npx node bench/seed.ts --data-dir DIR --users 100000 [--batch 5000] [--cache-mib 1024] [--quiet]
 */
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { DatabaseSync } from 'node:sqlite'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { accountDecider } from '../domain/account.decider.ts'
import { sessionDecider } from '../domain/session.ts'
import { createCommandHandler } from '../src/app/command-handler.ts'
import { createEventCodec } from '../src/app/event-codec.ts'
import { reserveId } from '../src/app/id-sequence.ts'
import { openEventStore } from '../src/app/runtime.ts'
import { accountStream, dataKeyOwner, sequenceStream, sessionStream } from '../src/app/streams.ts'
import { createTableClaimIndex, createUniqueClaims } from '../src/app/unique-claims.ts'
import { loadConfig } from '../src/config.ts'
import { openOwnedDatabase } from '../src/eventstore/sqlite-event-store.ts'
import { openDataKeyStore } from '../src/security/data-keys.ts'
import { newOpaqueToken } from '../src/security/opaque-tokens.ts'
import { createPasswordHasher } from '../src/security/passwords.ts'
import { loadOrCreateSecret } from '../src/security/secrets.ts'

/** The password of every seeded user. */
export const SEED_PASSWORD = 'seeded-users-share-this-passphrase'
export const SEED_CLIENT = {
  ip_address: '203.0.113.7',
  user_agent: 'Mozilla/5.0 (X11; Linux x86_64) seed/1.0',
}

const FIRST = [
  'Anna',
  'Ben',
  'Chloé',
  'David',
  'Eva',
  'Farid',
  'Grace',
  'Hugo',
  'Ines',
  'Jonas',
  'Kim',
  'Lena',
]
const LAST = ['Smith', 'Müller', 'García', 'Rossi', 'Nowak', 'Dubois', 'Jensen', 'Silva', 'Kowalski', 'Ito']
/** About 1 % of seeded users have this family name: a search that matches a slice of the store. */
export const RARE_FAMILY = 'Zhou'

/** A small deterministic hash of the id, so a user's profile is the same in every run. */
function mix(id: number): number {
  let x = Math.imul(id ^ 0x9e3779b9, 0x85ebca6b)
  x ^= x >>> 13
  x = Math.imul(x, 0xc2b2ae35)
  x ^= x >>> 16
  return x >>> 0
}

/** The seeded profile of user `id`: `anna.smith42`, `anna.smith42@example.com`, `Anna Smith`. */
export function seededProfile(id: number): { username: string; email: string; full_name: string } {
  const h = mix(id)
  const first = FIRST[h % FIRST.length]
  const family = h % 100 === 37 ? RARE_FAMILY : LAST[Math.floor(h / 256) % LAST.length]
  const username = `${first.toLowerCase()}.${family.toLowerCase()}${id}`
  return { username, email: `${username}@example.com`, full_name: `${first} ${family}` }
}

export type SeedResult = {
  /** Users in the store before and after (ids 1..after; admins registered over HTTP included). */
  before: number
  after: number
  /** Users this call added, and their ids. */
  added: number
  firstId: number | null
  lastId: number | null
  /** Events written (one append each). */
  events: number
  seconds: number
  usersPerSecond: number
}

/** How many user ids the store has handed out: the head revision of `sequence-user` + 1. */
export function userCount(dataDir: string): number {
  const path = join(dataDir, 'events.db')
  if (!existsSync(path)) return 0
  const db = new DatabaseSync(path, { readOnly: true })
  try {
    if (!db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'streams'").get()) return 0
    const row = db.prepare('SELECT revision FROM streams WHERE stream_id = ?').get(sequenceStream('user')) as
      | { revision: number }
      | undefined
    return row ? row.revision + 1 : 0
  } finally {
    db.close()
  }
}

/**
 * Runs `open` and returns what it opened plus the SQLite connection it made, recognised by a
 * statement the module runs while opening (`marker`, part of its schema).
 */
function openCapturing<T>(
  open: () => T,
  marker: string,
  close: (opened: T) => unknown,
): { opened: T; db: DatabaseSync } {
  const original = DatabaseSync.prototype.exec
  let captured: DatabaseSync | null = null
  DatabaseSync.prototype.exec = function exec(this: DatabaseSync, sql: string): void {
    if (captured === null && sql.includes(marker)) captured = this
    original.call(this, sql)
  }
  let opened: T
  try {
    opened = open()
  } finally {
    DatabaseSync.prototype.exec = original
  }
  if (captured === null) {
    close(opened)
    throw new Error(`could not find the connection that ran "${marker}" (did the module change?)`)
  }
  return { opened, db: captured }
}

type Group = { begin(): void; commit(): void; rollback(): void }

/** A transaction around many statements of a connection nobody else writes through meanwhile. */
function plainGroup(db: DatabaseSync): Group {
  return {
    begin: () => db.exec('BEGIN IMMEDIATE'),
    commit: () => db.exec('COMMIT'),
    rollback: () => {
      if (db.isTransaction) db.exec('ROLLBACK')
    },
  }
}

/**
 * Groups the event store's own transactions into larger ones: while a group is open, each
 * append's BEGIN IMMEDIATE / COMMIT / ROLLBACK becomes a savepoint, so an append that fails
 * (a wrong expected revision) still undoes only itself.
 */
function appendGroup(db: DatabaseSync): Group {
  const exec = DatabaseSync.prototype.exec.bind(db)
  let open = false
  const translated: Record<string, string> = {
    'BEGIN IMMEDIATE': 'SAVEPOINT seed_append',
    COMMIT: 'RELEASE seed_append',
    ROLLBACK: 'ROLLBACK TO seed_append; RELEASE seed_append',
  }
  db.exec = (sql: string): void => {
    exec(open ? (translated[sql] ?? sql) : sql)
  }
  return {
    begin() {
      exec('BEGIN IMMEDIATE')
      open = true
    },
    commit() {
      open = false
      exec('COMMIT')
    },
    rollback() {
      open = false
      if (db.isTransaction) exec('ROLLBACK')
    },
  }
}

async function inGroup(group: Group, work: () => Promise<void> | void): Promise<void> {
  group.begin()
  try {
    await work()
    group.commit()
  } catch (error) {
    group.rollback()
    throw error
  }
}

export async function seed(options: {
  dataDir: string
  /** Total users wanted in the store. */
  users: number
  /** Users per transaction (keys, claims, events). */
  batch?: number
  /** Page cache of each of the seeder's connections to events.db (SQLite's default is 2 MiB). */
  cacheMiB?: number
  progress?: (line: string) => void
}): Promise<SeedResult> {
  const started = performance.now()
  const batch = options.batch ?? 5000
  const cacheMiB = options.cacheMiB ?? 1024
  const before = userCount(options.dataDir)
  const toAdd = Math.max(0, options.users - before)
  const result: SeedResult = {
    before,
    after: before,
    added: 0,
    firstId: null,
    lastId: null,
    events: 0,
    seconds: 0,
    usersPerSecond: 0,
  }
  if (toAdd === 0) return result

  // Opened as openRuntime opens them; the embedded store only (ids are predicted from its file).
  const config = loadConfig({ DATA_DIR: options.dataDir, MASTER_KEY: process.env.MASTER_KEY })
  mkdirSync(config.dataDir, { recursive: true })
  const { opened: opening, db: eventsDb } = openCapturing(
    () => openEventStore(config),
    'CREATE TABLE IF NOT EXISTS events',
    async (opened) => (await opened).close(),
  )
  const store = await opening
  const { opened: dataKeys, db: keysDb } = openCapturing(
    () => openDataKeyStore({ dataDir: config.dataDir, masterKey: config.masterKey ?? undefined }),
    'CREATE TABLE IF NOT EXISTS data_keys',
    (opened) => opened.close(),
  )
  // The claim index: a second connection to events.db, as runtime.ts opens it.
  const claimsDb = openOwnedDatabase(join(config.dataDir, 'events.db'), 'event store')
  claimsDb.exec('PRAGMA busy_timeout = 5000')
  // Unique indexes take random keys (event ids, claim keys): a transaction of thousands of
  // inserts must not spill pages to the WAL halfway, nor reread them.
  for (const db of [eventsDb, claimsDb]) db.exec(`PRAGMA cache_size = -${cacheMiB * 1024}`)
  const now = () => new Date()
  const codec = createEventCodec(dataKeys)
  const commands = createCommandHandler(store, codec, now)
  const claims = createUniqueClaims(
    createTableClaimIndex(claimsDb),
    store,
    loadOrCreateSecret(config.dataDir, 'uniqueness'),
    now,
  )
  // Sessions keep their folded state in memory between commands, as in authentication.ts.
  const sessions = { ...sessionDecider, keepStateInMemory: true }
  const passwords = createPasswordHasher()
  const passwordHash = await passwords.hash(SEED_PASSWORD)
  await passwords.close()
  const keyGroup = plainGroup(keysDb)
  const claimGroup = plainGroup(claimsDb)
  const eventGroup = appendGroup(eventsDb)

  const refreshTtl = config.refreshTokenTtlSeconds
  const maxAge = config.sessionMaxAgeSeconds
  const graceMs = config.refreshReuseGraceSeconds * 1000
  let lastReport = performance.now()
  let reportedUsers = 0

  async function seedUser(expected: number, usernameKey: string, emailKey: string): Promise<void> {
    // Registration (accounts.ts register), with the password hash precomputed.
    const userId = await reserveId(store, 'user', now())
    if (userId !== expected) {
      throw new Error(`reserved user id ${userId}, expected ${expected}: is another writer running?`)
    }
    const profile = seededProfile(userId)
    const registered = await commands.handle(
      accountStream(userId),
      accountDecider,
      {
        type: 'Register',
        data: {
          user_id: userId,
          username: profile.username,
          email: profile.email,
          full_name: profile.full_name,
          company_name: null,
          role: 'user',
          password_hash: passwordHash,
          username_key: usernameKey,
          email_key: emailKey,
        },
      },
      { actorId: null, owner: userId },
    )
    // Login (authentication.ts passwordLogin → startSession): RecordSuccessfulLogin decides no
    // event for an account without failures; the session starts at the verified revision.
    const sessionId = await reserveId(store, 'session', now())
    let token = newOpaqueToken()
    const loginMs = Date.now()
    await commands.handle(
      sessionStream(sessionId),
      sessions,
      {
        type: 'Start',
        data: {
          session_id: sessionId,
          user_id: userId,
          account_revision: registered.revision ?? 0,
          amr: ['pwd'],
          refresh_token_hash: token.hash,
          expires_at: new Date(loginMs + Math.min(refreshTtl, maxAge) * 1000).toISOString(),
          ends_at: new Date(loginMs + maxAge * 1000).toISOString(),
          ...SEED_CLIENT,
        },
      },
      { actorId: userId, owner: userId },
    )
    // One or two refreshes (authentication.ts refresh), each rotating the token.
    const refreshes = 1 + (userId % 2)
    for (let r = 0; r < refreshes; r++) {
      const next = newOpaqueToken()
      const nowMs = Date.now()
      const refreshed = await commands.handle(
        sessionStream(sessionId),
        sessions,
        {
          type: 'Refresh',
          data: {
            presented_hash: token.hash,
            refresh_token_hash: next.hash,
            expires_at: new Date(nowMs + refreshTtl * 1000).toISOString(),
            now: nowMs,
            grace_ms: graceMs,
          },
        },
        { actorId: userId, owner: userId },
      )
      if (refreshed.events[0]?.type !== 'SessionRefreshed')
        throw new Error(`session ${sessionId} not refreshed`)
      token = next
    }
    result.events += 4 + refreshes
    result.added++
    result.firstId ??= userId
    result.lastId = userId
  }

  try {
    const lastId = before + toAdd
    for (let first = before + 1; first <= lastId; first += batch) {
      const end = Math.min(lastId, first + batch - 1)
      // Keys, then claims, each committed once for the batch; then the events that need them.
      await inGroup(keyGroup, () => {
        for (let id = first; id <= end; id++) dataKeys.ensureKey(dataKeyOwner(id))
      })
      const keys: { username: string; email: string }[] = []
      await inGroup(claimGroup, async () => {
        for (let id = first; id <= end; id++) {
          const profile = seededProfile(id)
          const key = {
            username: claims.keyOf('username', profile.username),
            email: claims.keyOf('email', profile.email),
          }
          if (!(await claims.claim('username', key.username, id)))
            throw new Error(`${profile.username} is taken`)
          if (!(await claims.claim('email', key.email, id))) throw new Error(`${profile.email} is taken`)
          keys.push(key)
        }
      })
      await inGroup(eventGroup, async () => {
        for (let id = first; id <= end; id++)
          await seedUser(id, keys[id - first].username, keys[id - first].email)
      })
      const t = performance.now()
      if (options.progress && (t - lastReport > 10_000 || end === lastId)) {
        const rate = ((result.added - reportedUsers) / (t - lastReport)) * 1000
        options.progress(
          `seed: ${before + result.added}/${options.users} users, ${rate.toFixed(0)} users/s ` +
            `(${((t - started) / 1000).toFixed(0)} s)`,
        )
        lastReport = t
        reportedUsers = result.added
      }
    }
  } finally {
    await store.close()
    claimsDb.close()
    dataKeys.close()
  }
  result.after = before + result.added
  result.seconds = (performance.now() - started) / 1000
  result.usersPerSecond = result.added / result.seconds
  return result
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      'data-dir': { type: 'string' },
      users: { type: 'string', default: '10000' },
      batch: { type: 'string', default: '5000' },
      'cache-mib': { type: 'string', default: '1024' },
      quiet: { type: 'boolean', default: false },
    },
  })
  const positive = (name: 'users' | 'batch' | 'cache-mib'): number => {
    const n = Number(String(values[name]).replaceAll('_', ''))
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`)
    return n
  }
  if (!values['data-dir']) {
    console.error(
      'usage: npx node bench/seed.ts --data-dir DIR --users N [--batch 5000] [--cache-mib 1024] [--quiet]',
    )
    process.exit(2)
  }
  const result = await seed({
    dataDir: values['data-dir'],
    users: positive('users'),
    batch: positive('batch'),
    cacheMiB: positive('cache-mib'),
    progress: values.quiet ? undefined : (line) => console.error(line),
  })
  console.log(JSON.stringify(result))
}
