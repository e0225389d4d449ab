/**
 * The token check on every protected request: a cached signature check, then the session
 * and account as the read models see them, cached in memory and dropped by the projection
 * runner whenever an event touches them. A revoked session or an account locked by an admin,
 * deactivated, deleted or re-roled stops its tokens at once, not at `exp`.
 */
import { LRUCache } from 'lru-cache'
import type { Role } from '../../domain/event.ts'
import type { ProjectionRunner } from '../readstore/projection-runner.ts'
import type { Queries } from '../readstore/queries.ts'
import type { AccessClaims, TokenService } from '../security/access-tokens.ts'
import { accountIdOf, sessionIdOf } from './streams.ts'

export type Principal = {
  userId: number
  sessionId: number
  role: Role
  amr: readonly string[]
  username: string
}

type SessionEntry = { userId: number; live: boolean }
type UserEntry = { username: string; role: Role; active: boolean; lockedUntil: number } | null

/** Entries of each cache; the least recently used goes first. */
const CACHE_LIMIT = 50_000
/** A user id with no account, cached as such (lru-cache holds no null). */
const NO_USER = false

export function createAccessGate(
  tokens: TokenService,
  queries: Queries,
  runner: ProjectionRunner,
  nowMs: () => number,
) {
  const sessions = new LRUCache<number, SessionEntry>({ max: CACHE_LIMIT })
  const users = new LRUCache<number, NonNullable<UserEntry> | typeof NO_USER>({ max: CACHE_LIMIT })

  runner.onApplied((event) => {
    const sessionId = sessionIdOf(event.stream_id)
    if (sessionId !== null) {
      sessions.delete(sessionId)
      if ('user_id' in event.data && typeof event.data.user_id === 'number') users.delete(event.data.user_id)
      return
    }
    const userId = accountIdOf(event.stream_id)
    if (userId === null) return
    users.delete(userId)
    // One account event can revoke many sessions; such events are rare, so start afresh.
    if (event.type === 'SessionsRevoked' || event.type === 'AccountDeleted') sessions.clear()
  })

  function session(id: number): SessionEntry | undefined {
    const cached = sessions.get(id)
    if (cached) return cached
    const row = queries.sessionById(id)
    if (!row) return undefined
    const entry = { userId: row.user_id, live: row.revoked_reason === null }
    sessions.set(id, entry)
    return entry
  }

  function user(id: number): UserEntry {
    const cached = users.get(id)
    if (cached !== undefined) return cached === NO_USER ? null : cached
    const row = queries.userById(id)
    const entry: UserEntry = row
      ? {
          username: row.username,
          role: row.role,
          active: row.is_active === 1,
          // An automatic lock (failed logins) stops new logins, not the sessions already open.
          lockedUntil: row.locked_until && row.lock_reason === 'admin' ? Date.parse(row.locked_until) : 0,
        }
      : null
    users.set(id, entry ?? NO_USER)
    return entry
  }

  function admit(claims: AccessClaims): Principal | null {
    const userId = Number(claims.sub)
    const sessionId = Number(claims.sid)
    const s = session(sessionId)
    if (!s?.live || s.userId !== userId) return null
    const u = user(userId)
    if (!u?.active || u.lockedUntil > nowMs() || u.role !== claims.role) return null
    return { userId, sessionId, role: u.role, amr: claims.amr, username: u.username }
  }

  return {
    /** The caller behind a bearer token, or null for any token that must not be honoured. */
    async authenticate(token: string): Promise<Principal | null> {
      const claims = await tokens.verifyAccess(token)
      return claims ? admit(claims) : null
    },
  }
}

export type AccessGate = ReturnType<typeof createAccessGate>
