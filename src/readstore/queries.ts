/** Reads of the read models: users, sessions and activity. */
import type { DatabaseSync, StatementSync } from 'node:sqlite'
import type { Role } from '../../domain/event.ts'
import { FOREVER } from '../../projections/users.projection.ts'

export type UserRow = {
  id: number
  username: string
  email: string
  full_name: string | null
  company_name: string | null
  role: Role
  is_active: number
  locked_until: string | null
  lock_reason: string | null
  lock_note: string | null
  failed_logins: number
  is_2fa_enabled: number
  created_at: string
  last_login_at: string | null
  email_verified: number
  /** A change of address awaiting confirmation, until its token expires at `pending_email_expires_at`. */
  pending_email: string | null
  pending_email_expires_at: string | null
}

export type SessionRow = {
  id: number
  user_id: number
  amr: string
  created_at: string
  last_used_at: string
  expires_at: string
  ip_address: string | null
  user_agent: string | null
  revoked_reason: string | null
}

export type ActivityRow = {
  type: string
  occurred_at: string
  ip_address: string | null
  user_agent: string | null
  session_id: number | null
}

export type ListUsersOptions = {
  skip: number
  limit: number
  role?: Role
  /** Case-insensitive substring of username, email or full name. */
  q?: string
  /** Keyset paging: only users with a greater id (then `skip` applies). */
  after_id?: number
}

/**
 * The trigram index (users_search) finds substrings of 3 characters or more; shorter ones, and
 * text FTS5 would read only up to a NUL, are matched by a scan of the users table instead.
 */
export const usesSearchIndex = (q: string): boolean => [...q].length >= 3 && !q.includes('\0')

/** `q` as one FTS5 phrase: quoted, with its own double quotes doubled, so no character is syntax. */
export const ftsPhrase = (q: string): string => `"${q.replaceAll('"', '""')}"`

export const isLockedRow = (user: UserRow, nowMs: number): boolean =>
  user.locked_until !== null && Date.parse(user.locked_until) > nowMs

/** The change of address awaiting confirmation at `nowMs`, or null (none, or its token expired). */
export const pendingEmailOf = (user: UserRow, nowMs: number): string | null =>
  user.pending_email !== null &&
  user.pending_email_expires_at !== null &&
  Date.parse(user.pending_email_expires_at) > nowMs
    ? user.pending_email
    : null

export type LockReason = 'admin' | 'too_many_failures'

/** A user's lock as of `nowMs`; `until` is null for a lock that lasts until an admin lifts it. */
export type UserLock = { is_locked: false } | { is_locked: true; until: string | null; reason: LockReason }

/** The lock the users projection recorded in a row (it writes an open-ended lock as FOREVER). */
export function userLock(user: UserRow, nowMs: number): UserLock {
  if (!isLockedRow(user, nowMs) || user.locked_until === null) return { is_locked: false }
  return {
    is_locked: true,
    until: user.locked_until === FOREVER ? null : user.locked_until,
    reason: user.lock_reason === 'too_many_failures' ? 'too_many_failures' : 'admin',
  }
}

export function createQueries(db: DatabaseSync) {
  const userById = db.prepare('SELECT * FROM users WHERE id = ?')
  const userByUsername = db.prepare('SELECT * FROM users WHERE username_lower = ?')
  const userByEmail = db.prepare('SELECT * FROM users WHERE email_lower = ?')
  const sessionById = db.prepare('SELECT * FROM sessions WHERE id = ?')
  const activeSessions = db.prepare(
    'SELECT * FROM sessions WHERE user_id = ? AND revoked_reason IS NULL AND expires_at > ? ORDER BY id DESC',
  )
  const activity = db.prepare(
    'SELECT type, occurred_at, ip_address, user_agent, session_id FROM activity WHERE user_id = ? ORDER BY position DESC LIMIT ?',
  )
  const adminCount = db.prepare("SELECT count(*) AS n FROM users WHERE role = 'admin'")
  const erased = db.prepare('SELECT user_id FROM erased_users ORDER BY user_id')
  const sessionsOf = db.prepare('SELECT session_id FROM session_owners WHERE user_id = ? ORDER BY session_id')
  /** One prepared statement per shape of the list query (at most 2 × 2 × 2 = 8 of them). */
  const listStatements = new Map<string, StatementSync>()
  // A read-model file from before the search index gets it filled at its first users write;
  // until then `q` scans as it used to. Once built, the triggers keep it so.
  const searchIndexState = db.prepare(
    'SELECT EXISTS (SELECT 1 FROM users_search_docsize) OR NOT EXISTS (SELECT 1 FROM users) AS built',
  )
  let searchIndexBuilt = false
  const searchIndexReady = (): boolean => {
    if (!searchIndexBuilt) searchIndexBuilt = (searchIndexState.get() as { built: number }).built === 1
    return searchIndexBuilt
  }

  return {
    userById: (id: number): UserRow | undefined => userById.get(id) as UserRow | undefined,
    userByUsername: (username: string): UserRow | undefined =>
      userByUsername.get(username.normalize('NFKC').trim().toLowerCase()) as UserRow | undefined,
    userByEmail: (email: string): UserRow | undefined =>
      userByEmail.get(email.normalize('NFKC').trim().toLowerCase()) as UserRow | undefined,
    sessionById: (id: number): SessionRow | undefined => sessionById.get(id) as SessionRow | undefined,
    activeSessions: (userId: number, now: Date): SessionRow[] =>
      activeSessions.all(userId, now.toISOString()) as SessionRow[],
    activity: (userId: number, limit: number): ActivityRow[] => activity.all(userId, limit) as ActivityRow[],
    sessionIdsOf: (userId: number): number[] =>
      (sessionsOf.all(userId) as { session_id: number }[]).map((r) => r.session_id),
    erasedUserIds: (): number[] => (erased.all() as { user_id: number }[]).map((r) => r.user_id),
    hasAdmin: (): boolean => (adminCount.get() as { n: number }).n > 0,
    listUsers(options: ListUsersOptions): UserRow[] {
      const where: string[] = []
      const params: (string | number)[] = []
      // Served by the trigram index when it can be (3 characters or more), else by a scan.
      const indexed = options.q ? usesSearchIndex(options.q) && searchIndexReady() : false
      const id = indexed ? 'users_search.rowid' : 'users.id'
      if (indexed) {
        where.push('users_search MATCH ?')
        params.push(ftsPhrase(options.q as string))
      } else if (options.q) {
        const like = `%${options.q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`
        where.push(
          "(username_lower LIKE ? ESCAPE '\\' OR email_lower LIKE ? ESCAPE '\\' OR lower(coalesce(full_name, '')) LIKE ? ESCAPE '\\')",
        )
        params.push(like, like, like)
      }
      if (options.after_id !== undefined) {
        where.push(`${id} > ?`)
        params.push(options.after_id)
      }
      if (options.role) {
        where.push('users.role = ?')
        params.push(options.role)
      }
      const from = indexed ? 'users_search JOIN users ON users.id = users_search.rowid' : 'users'
      const sql = `SELECT users.* FROM ${from} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${id} LIMIT ? OFFSET ?`
      let statement = listStatements.get(sql)
      if (!statement) {
        statement = db.prepare(sql)
        listStatements.set(sql, statement)
      }
      return statement.all(...params, options.limit, options.skip) as UserRow[]
    },
  }
}

export type Queries = ReturnType<typeof createQueries>
