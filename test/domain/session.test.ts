import { describe, expect, it } from 'vitest'
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
const refresh = (presented: string, next: string, now = NOW, graceMs = 0) =>
  ({
    type: 'Refresh',
    data: {
      presented_hash: presented,
      refresh_token_hash: next,
      expires_at: '2027-01-01T00:00:00.000Z',
      now,
      grace_ms: graceMs,
    },
  }) as const
const at = (ms: number): string => new Date(ms).toISOString()

describe('session: rotating refresh tokens', () => {
  it('rotates on use', () => {
    given(started)
      .when(refresh('h1', 'h2'))
      .then({
        type: 'SessionRefreshed',
        data: {
          user_id: 7,
          refresh_token_hash: 'h2',
          expires_at: '2027-01-01T00:00:00.000Z',
          refreshed_at: at(NOW),
        },
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
  describe('the reuse grace period (two tabs refreshing at once)', () => {
    const rotatedAt = (ms: number, next = 'h2'): SessionEvent => ({
      type: 'SessionRefreshed',
      data: {
        user_id: 7,
        refresh_token_hash: next,
        expires_at: '2027-01-01T00:00:00.000Z',
        refreshed_at: at(ms),
      },
    })
    it('gives the token rotated out within the period the next token of the same session', () => {
      given(started, rotatedAt(NOW - 9_000))
        .when(refresh('h1', 'h3', NOW, 10_000))
        .then({
          type: 'SessionRefreshed',
          data: {
            user_id: 7,
            refresh_token_hash: 'h3',
            expires_at: '2027-01-01T00:00:00.000Z',
            refreshed_at: at(NOW),
            within_grace: true,
          },
        })
    })
    it('leaves one line alive: the token the winner got is rotated out in turn', () => {
      const { state } = given(started, rotatedAt(NOW - 1_000), rotatedAt(NOW, 'h3'))
      if (state.status !== 'active') throw new Error('expected an active session')
      expect(state.refreshTokenHash).toBe('h3')
      expect(state.rotated.map((r) => r.hash)).toEqual(['h1', 'h2'])
      // The loser's old token is no longer the one just rotated out: a reuse.
      given(started, rotatedAt(NOW - 1_000), rotatedAt(NOW, 'h3'))
        .when(refresh('h1', 'h4', NOW, 10_000))
        .then({ type: 'SessionRevoked', data: { user_id: 7, reason: 'refresh_token_reuse' } })
      // Much later, the winner's token is a reuse like any other.
      given(started, rotatedAt(NOW - 1_000), rotatedAt(NOW, 'h3'))
        .when(refresh('h2', 'h4', NOW + 60_000, 10_000))
        .then({ type: 'SessionRevoked', data: { user_id: 7, reason: 'refresh_token_reuse' } })
    })
    it('is a reuse after the period, with a period of 0, and for rotations of unknown time', () => {
      const revoked = { type: 'SessionRevoked', data: { user_id: 7, reason: 'refresh_token_reuse' } } as const
      given(started, rotatedAt(NOW - 10_001))
        .when(refresh('h1', 'h3', NOW, 10_000))
        .then(revoked)
      given(started, rotatedAt(NOW))
        .when(refresh('h1', 'h3', NOW, 0))
        .then(revoked)
      given(started, {
        type: 'SessionRefreshed',
        data: { user_id: 7, refresh_token_hash: 'h2', expires_at: '2027-01-01T00:00:00.000Z' },
      })
        .when(refresh('h1', 'h3', NOW, 10_000))
        .then(revoked)
    })
  })
  describe('the absolute lifetime', () => {
    const endsAt = '2026-12-01T00:00:00.000Z'
    const capped: SessionEvent = {
      ...started,
      data: { ...(started.data as object), ends_at: endsAt },
    } as SessionEvent
    it('caps the new refresh token at the end of the session', () => {
      given(capped)
        .when(refresh('h1', 'h2'))
        .thenMatches((events) => {
          expect(events).toHaveLength(1)
          expect((events[0].data as { expires_at: string }).expires_at).toBe(endsAt)
        })
    })
    it('refuses any refresh once the session has ended, however recently it was refreshed', () => {
      given(capped)
        .when(refresh('h1', 'h2', Date.parse(endsAt)))
        .thenThrows('REFRESH_TOKEN_INVALID')
    })
  })
  it('revoking twice changes nothing', () => {
    given(started, { type: 'SessionRevoked', data: { user_id: 7, reason: 'user' } })
      .when({ type: 'Revoke', data: { reason: 'user' } })
      .then()
  })
})
