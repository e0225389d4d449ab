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
       * Hashes of the last `REMEMBERED_ROTATIONS` rotated-out refresh tokens: presenting one
       * again means the token was stolen. Older ones are merely invalid; without the bound a
       * long-lived session's state would grow with every refresh.
       */
      rotatedHashes: string[]
      expiresAt: string
    }

export const initialSession: Session = { status: 'none' }

export const REMEMBERED_ROTATIONS = 64

export type SessionCommand =
  | { type: 'Start'; data: SessionStarted['data'] }
  | {
      type: 'Refresh'
      data: { presented_hash: string; refresh_token_hash: string; expires_at: string; now: number }
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
        rotatedHashes: [],
        expiresAt: d.expires_at,
      }
    }
    case 'SessionRefreshed':
      if (state.status === 'none') return state
      return {
        ...state,
        rotatedHashes: [...state.rotatedHashes.slice(1 - REMEMBERED_ROTATIONS), state.refreshTokenHash],
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
      const { presented_hash, refresh_token_hash, expires_at, now } = command.data
      if (state.rotatedHashes.includes(presented_hash)) {
        return [{ type: 'SessionRevoked', data: { user_id: state.userId, reason: 'refresh_token_reuse' } }]
      }
      if (presented_hash !== state.refreshTokenHash || Date.parse(state.expiresAt) <= now)
        throw invalidRefresh()
      return [{ type: 'SessionRefreshed', data: { user_id: state.userId, refresh_token_hash, expires_at } }]
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
