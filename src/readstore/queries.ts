/** Reads of the read models: users, sessions and activity. */
import type { DatabaseSync } from 'node:sqlite'
import type { Role } from '../../domain/event.ts'

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

export const isLockedRow = (user: UserRow, nowMs: number): boolean =>
  user.locked_until !== null && Date.parse(user.locked_until) > nowMs

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
    listUsers(options: { skip: number; limit: number; role?: Role; q?: string }): UserRow[] {
      const where: string[] = []
      const params: (string | number)[] = []
      if (options.role) {
        where.push('role = ?')
        params.push(options.role)
      }
      if (options.q) {
        const like = `%${options.q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`
        where.push(
          "(username_lower LIKE ? ESCAPE '\\' OR email_lower LIKE ? ESCAPE '\\' OR lower(coalesce(full_name, '')) LIKE ? ESCAPE '\\')",
        )
        params.push(like, like, like)
      }
      const sql = `SELECT * FROM users ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ? OFFSET ?`
      return db.prepare(sql).all(...params, options.limit, options.skip) as UserRow[]
    },
  }
}

export type Queries = ReturnType<typeof createQueries>
