import { DomainError } from './errors.ts'
import type { SessionEvent, SessionStarted } from './session.events.ts'

export type Session =
  | { status: 'none' }
  | {
      status: 'active' | 'revoked'
      id: number
      userId: number
      accountRevision: number
      amr: string[]
      refreshTokenHash: string
      /**
       * The last `REMEMBERED_ROTATIONS` rotated-out refresh tokens (hash, and when it was rotated
       * out if known): presenting one again means the token was stolen, unless it was rotated out
       * within the reuse grace period. Older ones are merely invalid; without the bound a
       * long-lived session's state would grow with every refresh.
       */
      rotated: RotatedToken[]
      expiresAt: string
      /** Absolute end of the session, or null for sessions started before there was one. */
      endsAt: string | null
    }

export type RotatedToken = { hash: string; atMs: number | null }

export const initialSession: Session = { status: 'none' }

export const REMEMBERED_ROTATIONS = 64

export type SessionCommand =
  | { type: 'Start'; data: SessionStarted['data'] }
  | {
      type: 'Refresh'
      data: {
        presented_hash: string
        refresh_token_hash: string
        expires_at: string
        now: number
        /** A token rotated out at most this long ago is not a reuse (two tabs refreshing at once). */
        grace_ms: number
      }
    }
  | { type: 'Revoke'; data: { reason: 'user' | 'refresh_token_reuse' } }

export function evolveSession(state: Session, event: SessionEvent): Session {
  switch (event.type) {
    case 'SessionStarted': {
      if (state.status !== 'none') return state
      const d = event.data
      return {
        status: 'active',
        id: d.session_id,
        userId: d.user_id,
        accountRevision: d.account_revision,
        amr: d.amr,
        refreshTokenHash: d.refresh_token_hash,
        rotated: [],
        expiresAt: d.expires_at,
        endsAt: d.ends_at ?? null,
      }
    }
    case 'SessionRefreshed':
      if (state.status === 'none') return state
      return {
        ...state,
        rotated: [
          ...state.rotated.slice(1 - REMEMBERED_ROTATIONS),
          {
            hash: state.refreshTokenHash,
            atMs: event.data.refreshed_at ? Date.parse(event.data.refreshed_at) : null,
          },
        ],
        refreshTokenHash: event.data.refresh_token_hash,
        expiresAt: event.data.expires_at,
      }
    case 'SessionRevoked':
      return state.status === 'none' ? state : { ...state, status: 'revoked' }
  }
}

const invalidRefresh = (): DomainError => new DomainError('REFRESH_TOKEN_INVALID', 'Invalid refresh token')

/**
 * Refresh decides on hashes the caller compared in constant time beforehand: the domain only
 * sees whether the presented token is the current one, a rotated one, or neither.
 */
export function decideSession(command: SessionCommand, state: Session): SessionEvent[] {
  switch (command.type) {
    case 'Start':
      if (state.status !== 'none') throw new DomainError('CONCURRENT_CHANGE', 'Session id already in use')
      return [{ type: 'SessionStarted', data: command.data }]
    case 'Refresh': {
      if (state.status !== 'active') throw invalidRefresh()
      const { presented_hash, refresh_token_hash, now, grace_ms } = command.data
      if (Date.parse(state.expiresAt) <= now || (state.endsAt !== null && Date.parse(state.endsAt) <= now))
        throw invalidRefresh()
      const refreshed = {
        user_id: state.userId,
        refresh_token_hash,
        expires_at:
          state.endsAt !== null && state.endsAt < command.data.expires_at
            ? state.endsAt
            : command.data.expires_at,
        refreshed_at: new Date(now).toISOString(),
      }
      if (state.rotated.some((r) => r.hash === presented_hash)) {
        // The loser of two tabs refreshing at once holds the token rotated out just now. It gets
        // the session's next token, and the one the winner got is rotated out in turn, so only
        // one line of tokens stays alive. Any older token, or this one later, is a theft.
        const last = state.rotated.at(-1)
        if (
          grace_ms > 0 &&
          last?.hash === presented_hash &&
          last.atMs !== null &&
          now - last.atMs <= grace_ms
        ) {
          return [{ type: 'SessionRefreshed', data: { ...refreshed, within_grace: true } }]
        }
        return [{ type: 'SessionRevoked', data: { user_id: state.userId, reason: 'refresh_token_reuse' } }]
      }
      if (presented_hash !== state.refreshTokenHash) throw invalidRefresh()
      return [{ type: 'SessionRefreshed', data: refreshed }]
    }
    case 'Revoke':
      if (state.status === 'none') throw new DomainError('SESSION_NOT_FOUND', 'Session not found')
      return state.status === 'revoked'
        ? []
        : [{ type: 'SessionRevoked', data: { user_id: state.userId, reason: command.data.reason } }]
    default: {
      const unknown: never = command
      throw new Error(`unknown command ${JSON.stringify(unknown)}`)
    }
  }
}

export const sessionDecider = { decide: decideSession, evolve: evolveSession, initialState: initialSession }
