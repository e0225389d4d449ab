import { describe, it } from 'vitest'
import type { SessionEvent } from '../../domain/session.events.ts'
import { REMEMBERED_ROTATIONS, sessionDecider } from '../../domain/session.ts'
import { specFor } from './given.ts'

const given = specFor(sessionDecider)
const NOW = Date.parse('2026-11-25T12:00:00Z')
const started: SessionEvent = {
  type: 'SessionStarted',
  data: {
    session_id: 1,
    user_id: 7,
    account_revision: 0,
    amr: ['pwd'],
    refresh_token_hash: 'h1',
    expires_at: '2026-12-25T12:00:00.000Z',
    ip_address: null,
    user_agent: null,
  },
}
const refresh = (presented: string, next: string, now = NOW) =>
  ({
    type: 'Refresh',
    data: {
      presented_hash: presented,
      refresh_token_hash: next,
      expires_at: '2027-01-01T00:00:00.000Z',
      now,
    },
  }) as const

describe('session: rotating refresh tokens', () => {
  it('rotates on use', () => {
    given(started)
      .when(refresh('h1', 'h2'))
      .then({
        type: 'SessionRefreshed',
        data: { user_id: 7, refresh_token_hash: 'h2', expires_at: '2027-01-01T00:00:00.000Z' },
      })
  })
  it('presenting a rotated token revokes the session', () => {
    const rotated: SessionEvent = {
      type: 'SessionRefreshed',
      data: { user_id: 7, refresh_token_hash: 'h2', expires_at: '2027-01-01T00:00:00.000Z' },
    }
    given(started, rotated)
      .when(refresh('h1', 'h3'))
      .then({ type: 'SessionRevoked', data: { user_id: 7, reason: 'refresh_token_reuse' } })
  })
  it('remembers the last REMEMBERED_ROTATIONS rotated tokens; older ones are only invalid', () => {
    // h1 … h(N+2): the session started with h1 and was refreshed N+1 times, so h(N+2) is current.
    const refreshes: SessionEvent[] = Array.from({ length: REMEMBERED_ROTATIONS + 1 }, (_, i) => ({
      type: 'SessionRefreshed',
      data: { user_id: 7, refresh_token_hash: `h${i + 2}`, expires_at: '2027-01-01T00:00:00.000Z' },
    }))
    const revoked = { type: 'SessionRevoked', data: { user_id: 7, reason: 'refresh_token_reuse' } } as const
    given(started, ...refreshes)
      .when(refresh('h2', 'x'))
      .then(revoked)
    given(started, ...refreshes)
      .when(refresh(`h${REMEMBERED_ROTATIONS + 1}`, 'x'))
      .then(revoked)
    given(started, ...refreshes)
      .when(refresh('h1', 'x'))
      .thenThrows('REFRESH_TOKEN_INVALID')
  })
  it('refuses unknown, expired and revoked tokens', () => {
    given(started).when(refresh('nope', 'h2')).thenThrows('REFRESH_TOKEN_INVALID')
    given(started)
      .when(refresh('h1', 'h2', Date.parse('2027-01-01T00:00:00Z')))
      .thenThrows('REFRESH_TOKEN_INVALID')
    given(started, { type: 'SessionRevoked', data: { user_id: 7, reason: 'user' } })
      .when(refresh('h1', 'h2'))
      .thenThrows('REFRESH_TOKEN_INVALID')
  })
  it('revoking twice changes nothing', () => {
    given(started, { type: 'SessionRevoked', data: { user_id: 7, reason: 'user' } })
      .when({ type: 'Revoke', data: { reason: 'user' } })
      .then()
  })
})
