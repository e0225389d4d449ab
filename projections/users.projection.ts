import type { AccountEvent } from '../domain/account.events.ts'
import type { Recorded } from '../src/eventstore/event-store.ts'
import {
  accountOf,
  type Projection,
  projectionOf,
  type ReadModelWriter,
  type SqlValue,
} from './projection.ts'

export const FOREVER = '9999-12-31T23:59:59.999Z'

/**
 * `users_search` serves `GET /admin/users?q=`: an FTS5 trigram index (case-insensitive substring
 * match, 3 characters or more) over username, email and full name. It is an external-content
 * table over `users`, so it holds no copy of the text, only the index. Triggers keep it in step
 * with every insert, change of those columns and delete of a `users` row, whichever event of
 * `apply` caused it.
 *
 * Erasure: a delete hands FTS5 the old values ('delete'), and with the table's 'secure-delete'
 * option (set by the triggers before their first delete) FTS5 removes those terms from the index
 * at once instead of recording a tombstone beside them; with the read store's `secure_delete`
 * pragma the freed bytes are zeroed. So an erased user's text does not stay in the shadow tables.
 *
 * Opening the read store writes nothing here (every statement is `IF NOT EXISTS`), so another
 * process can open the file while the service writes. An index that does not cover every users
 * row (a read-model file from before it existed) is filled (`rebuild`) by the first event the
 * projection applies in a process; until then `queries.listUsers` scans. The triggers delete only
 * what is indexed and index only what is not, so they never corrupt the index. (Each trigger
 * statement on the FTS table flushes its pending terms: the insert trigger, the common one, has
 * a single statement.)
 */
const BUILD_SEARCH_INDEX = `
  INSERT INTO users_search (users_search) SELECT 'rebuild'
    WHERE (SELECT count(*) FROM users) <> (SELECT count(*) FROM users_search_docsize)`
const SECURE_DELETE = `
  INSERT INTO users_search (users_search, rank) SELECT 'secure-delete', 1
    WHERE NOT EXISTS (SELECT 1 FROM users_search_config WHERE k = 'secure-delete' AND v = 1)`
const UNINDEX_OLD = `
  INSERT INTO users_search (users_search, rowid, username, email, full_name)
    SELECT 'delete', old.id, old.username, old.email, old.full_name
    WHERE EXISTS (SELECT 1 FROM users_search_docsize WHERE id = old.id)`
const INDEX_NEW = `
  INSERT INTO users_search (rowid, username, email, full_name)
    SELECT new.id, new.username, new.email, new.full_name
    WHERE NOT EXISTS (SELECT 1 FROM users_search_docsize WHERE id = new.id)`
const SEARCH_SCHEMA = `
    CREATE VIRTUAL TABLE IF NOT EXISTS users_search USING fts5(
      username, email, full_name, tokenize = 'trigram', content = 'users', content_rowid = 'id'
    );
    CREATE TRIGGER IF NOT EXISTS users_search_insert AFTER INSERT ON users BEGIN
      ${INDEX_NEW};
    END;
    CREATE TRIGGER IF NOT EXISTS users_search_update AFTER UPDATE OF id, username, email, full_name ON users BEGIN
      ${SECURE_DELETE};
      ${UNINDEX_OLD};
      ${INDEX_NEW};
    END;
    CREATE TRIGGER IF NOT EXISTS users_search_delete AFTER DELETE ON users BEGIN
      ${SECURE_DELETE};
      ${UNINDEX_OLD};
    END;
`
const LOOKUP_INDEXES = `
    CREATE INDEX IF NOT EXISTS users_username ON users (username_lower);
    CREATE INDEX IF NOT EXISTS users_email ON users (email_lower);`

/** The read stores whose search index this process has made sure covers every user. */
const searchIndexChecked = new WeakSet<ReadModelWriter>()

function ensureSearchIndex(db: ReadModelWriter): void {
  if (searchIndexChecked.has(db)) return
  db.run(BUILD_SEARCH_INDEX)
  searchIndexChecked.add(db)
}

/** Runs `change` on the event's user row unless the row is missing or already past the event. */
function onNewer(event: Recorded<AccountEvent>, db: ReadModelWriter, change: (id: number) => void): void {
  ensureSearchIndex(db)
  const id = accountOf(event)
  const row = db.get<{ revision: number }>('SELECT revision FROM users WHERE id = ?', id)
  if (!row || row.revision >= event.revision) return
  change(id)
}

const update =
  <E extends AccountEvent>(assignments: string, params: (event: Recorded<E>) => SqlValue[] = () => []) =>
  (event: Recorded<E>, db: ReadModelWriter): void =>
    onNewer(event, db, (id) =>
      db.run(
        `UPDATE users SET ${assignments}, revision = ? WHERE id = ?`,
        ...params(event),
        event.revision,
        id,
      ),
    )

/**
 * Email verification (second release): whether the current address is confirmed, and a change
 * of address awaiting confirmation with the expiry of its token. Files from before it get them
 * with their defaults, which is what a replay gives: no older event sets them.
 */
const EMAIL_VERIFICATION_COLUMNS = [
  { table: 'users', column: 'email_verified', definition: 'INTEGER NOT NULL DEFAULT 0' },
  { table: 'users', column: 'pending_email', definition: 'TEXT' },
  { table: 'users', column: 'pending_email_expires_at', definition: 'TEXT' },
] as const

export const usersProjection: Projection = projectionOf({
  name: 'users',
  // users_search after users: dropping users drops the triggers that write the index.
  tables: ['users', 'erased_users', 'users_search'],
  schema: `
    CREATE TABLE IF NOT EXISTS users (
      id INTEGER PRIMARY KEY,
      username TEXT NOT NULL,
      username_lower TEXT NOT NULL,
      email TEXT NOT NULL,
      email_lower TEXT NOT NULL,
      full_name TEXT,
      company_name TEXT,
      role TEXT NOT NULL,
      is_active INTEGER NOT NULL,
      locked_until TEXT,
      lock_reason TEXT,
      lock_note TEXT,
      failed_logins INTEGER NOT NULL DEFAULT 0,
      is_2fa_enabled INTEGER NOT NULL DEFAULT 0,
      created_at TEXT NOT NULL,
      last_login_at TEXT,
      revision INTEGER NOT NULL,
      ${EMAIL_VERIFICATION_COLUMNS.map((c) => `${c.column} ${c.definition}`).join(',\n      ')}
    );
    ${LOOKUP_INDEXES}
    CREATE INDEX IF NOT EXISTS users_role ON users (role, id);
    CREATE TABLE IF NOT EXISTS erased_users (user_id INTEGER PRIMARY KEY);
    ${SEARCH_SCHEMA}
  `,
  // A replay indexes the users in one 'rebuild' at the end. Until then the index stays empty
  // (no trigger writes a part of it), so `q` scans; if a crash skips the end, the next start
  // recreates the triggers and BUILD_SEARCH_INDEX fills the index, as for an old file. The
  // username and email lookup indexes (which no event handler reads) are likewise built once
  // at the end, by sorting, instead of by a million inserts at random places; a crash before
  // that leaves them to the next start's schema.
  addedColumns: EMAIL_VERIFICATION_COLUMNS,
  bulkLoad: {
    suspend: [
      ...['insert', 'update', 'delete'].map((t) => `DROP TRIGGER IF EXISTS users_search_${t};`),
      'DROP INDEX IF EXISTS users_username; DROP INDEX IF EXISTS users_email;',
    ].join(''),
    resume: `${LOOKUP_INDEXES} ${SEARCH_SCHEMA}; ${BUILD_SEARCH_INDEX}`,
  },
  on: {
    AccountRegistered(event, db) {
      ensureSearchIndex(db)
      const d = event.data
      db.run(
        `INSERT OR IGNORE INTO users (id, username, username_lower, email, email_lower, full_name, company_name,
           role, is_active, created_at, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
        accountOf(event),
        d.username,
        d.username.toLowerCase(),
        d.email,
        d.email.toLowerCase(),
        d.full_name ?? null,
        d.company_name ?? null,
        d.role,
        event.metadata.occurred_at,
        event.revision,
      )
    },
    LoginFailed: update('failed_logins = failed_logins + 1'),
    FailedLoginsCleared: update('failed_logins = 0'),
    AccountLocked: update(
      'locked_until = ?, lock_reason = ?, lock_note = ?, failed_logins = 0',
      ({ data }) => [data.until ?? FOREVER, data.reason, data.note ?? null],
    ),
    AccountUnlocked: update('locked_until = NULL, lock_reason = NULL, lock_note = NULL, failed_logins = 0'),
    AccountDeactivated: update('is_active = 0'),
    AccountActivated: update('is_active = 1'),
    RoleChanged: update('role = ?', ({ data }) => [data.role]),
    EmailChanged: update(
      'email = ?, email_lower = ?, email_verified = 0, pending_email = NULL, pending_email_expires_at = NULL',
      ({ data }) => [data.email, data.email.toLowerCase()],
    ),
    // A request for the current address (no `email`) voids a change awaiting confirmation.
    EmailVerificationRequested: update('pending_email = ?, pending_email_expires_at = ?', ({ data }) =>
      data.email === undefined ? [null, null] : [data.email, data.expires_at],
    ),
    EmailVerified: update('email_verified = 1, pending_email = NULL, pending_email_expires_at = NULL'),
    FullNameChanged: update('full_name = ?', ({ data }) => [data.full_name ?? null]),
    TotpEnabled: update('is_2fa_enabled = 1'),
    TotpDisabled: update('is_2fa_enabled = 0'),
    AccountDeleted: (event, db) =>
      onNewer(event, db, (id) => {
        db.run('DELETE FROM users WHERE id = ?', id)
        // Committed with the checkpoint: at start-up every erasure listed here has its key destroyed.
        db.run('INSERT OR IGNORE INTO erased_users (user_id) VALUES (?)', id)
      }),
    SessionStarted(event, db) {
      ensureSearchIndex(db)
      db.run(
        'UPDATE users SET last_login_at = ? WHERE id = ?',
        event.metadata.occurred_at,
        event.data.user_id,
      )
    },
  },
})
