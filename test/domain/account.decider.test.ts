import { describe, expect, it } from 'vitest'
import { type AccountCommand, accountDecider } from '../../domain/account.decider.ts'
import type { AccountEvent } from '../../domain/account.events.ts'
import { evolveAccount, isSessionRevokedByAccount } from '../../domain/account.ts'
import { inSequence } from '../../domain/command-sequence.ts'
import { ACCOUNT_LOCK_THRESHOLD } from '../../domain/lockout.ts'
import { registered, specFor } from './given.ts'

const given = specFor(accountDecider)
const NOW = Date.parse('2026-11-25T12:00:00Z')

const failed: AccountEvent = {
  type: 'LoginFailed',
  data: { reason: 'password', ip_address: null, user_agent: null },
}
const fail = (now = NOW): AccountCommand => ({
  type: 'RecordFailedLogin',
  data: { reason: 'password', now, ip_address: null, user_agent: null },
})
/** A login whose password was verified at `verifiedAt` (by default: after every event given). */
const success = (now = NOW, verifiedAt = Number.MAX_SAFE_INTEGER): AccountCommand => ({
  type: 'RecordSuccessfulLogin',
  data: { now, verified_at_revision: verifiedAt },
})

describe('account: registration', () => {
  it('registers a new account', () => {
    given().when({ type: 'Register', data: registered.data }).then(registered)
  })
  it('refuses an id that is already used', () => {
    given(registered).when({ type: 'Register', data: registered.data }).thenThrows('CONCURRENT_CHANGE')
  })
  it('knows no commands for a missing account', () => {
    given().when(success()).thenThrows('ACCOUNT_NOT_FOUND')
  })
})

describe('account: lockout is a fold over failures', () => {
  it('counts a failure', () => {
    given(registered).when(fail()).then(failed)
  })
  const failures = (n: number): AccountEvent[] => Array.from({ length: n }, () => failed)
  it(`locks for 15 minutes at the ${ACCOUNT_LOCK_THRESHOLD}th consecutive failure`, () => {
    given(registered, ...failures(ACCOUNT_LOCK_THRESHOLD - 2))
      .when(fail())
      .then(failed)
    given(registered, ...failures(ACCOUNT_LOCK_THRESHOLD - 1))
      .when(fail())
      .then(failed, {
        type: 'AccountLocked',
        data: { reason: 'too_many_failures', note: null, until: '2026-11-25T12:15:00.000Z' },
      })
  })
  it('doubles each later automatic lock', () => {
    const firstLock: AccountEvent = {
      type: 'AccountLocked',
      data: { reason: 'too_many_failures', note: null, until: '2026-11-25T12:15:00.000Z' },
    }
    const later = NOW + 16 * 60_000
    given(registered, ...failures(ACCOUNT_LOCK_THRESHOLD), firstLock, ...failures(ACCOUNT_LOCK_THRESHOLD - 1))
      .when(fail(later))
      .thenMatches((events) => {
        expect(events[1]).toMatchObject({
          type: 'AccountLocked',
          data: { until: new Date(later + 30 * 60_000).toISOString() },
        })
      })
  })
  it('refuses attempts while locked, with the seconds left', () => {
    const lock: AccountEvent = {
      type: 'AccountLocked',
      data: { reason: 'too_many_failures', note: null, until: '2026-11-25T12:15:00.000Z' },
    }
    const error = given(registered, lock).when(success()).thenThrows('ACCOUNT_LOCKED')
    expect(error.retryAfterSeconds).toBe(900)
    given(registered, lock).when(fail()).thenThrows('ACCOUNT_LOCKED')
  })
  it('lets a login through once the lock has expired', () => {
    const lock: AccountEvent = {
      type: 'AccountLocked',
      data: { reason: 'too_many_failures', note: null, until: '2026-11-25T12:15:00.000Z' },
    }
    given(registered, lock)
      .when(success(NOW + 15 * 60_000))
      .then({ type: 'FailedLoginsCleared', data: {} })
  })
  it('a success resets the count', () => {
    given(registered, failed, failed).when(success()).then({ type: 'FailedLoginsCleared', data: {} })
    given(registered).when(success()).then()
  })
  it('refuses a deactivated account with the right password', () => {
    given(registered, { type: 'AccountDeactivated', data: {} })
      .when(success())
      .thenThrows('ACCOUNT_DEACTIVATED')
  })
  it('unlock clears the lock and the failure count', () => {
    given(registered, failed).when({ type: 'Unlock', data: {} }).then({ type: 'AccountUnlocked', data: {} })
    given(registered).when({ type: 'Unlock', data: {} }).then()
  })
})

describe('account: administration revokes sessions', () => {
  it('lock by an admin revokes every session', () => {
    given(registered)
      .when({ type: 'Lock', data: { note: 'fraud', until: null } })
      .then(
        { type: 'AccountLocked', data: { reason: 'admin', note: 'fraud', until: null } },
        { type: 'SessionsRevoked', data: { reason: 'locked', except_session_id: null } },
      )
  })
  it('role change revokes sessions; the same role changes nothing', () => {
    given(registered)
      .when({ type: 'ChangeRole', data: { role: 'admin' } })
      .then(
        { type: 'RoleChanged', data: { role: 'admin', previous_role: 'user' } },
        { type: 'SessionsRevoked', data: { reason: 'role_changed', except_session_id: null } },
      )
    given(registered)
      .when({ type: 'ChangeRole', data: { role: 'user' } })
      .then()
  })
  it('deletion erases the account', () => {
    const { state } = given(registered, {
      type: 'AccountDeleted',
      data: { username_key: 'uk', email_key: 'ek' },
    })
    expect(state).toEqual({ status: 'erased', id: 7 })
    given(registered, { type: 'AccountDeleted', data: { username_key: 'uk', email_key: 'ek' } })
      .when({ type: 'Lock', data: { note: null, until: null } })
      .thenThrows('ACCOUNT_NOT_FOUND')
  })
  it('a revocation covers sessions started before it, but not the one it spares', () => {
    const history: AccountEvent[] = [
      registered,
      { type: 'SessionsRevoked', data: { reason: 'password_changed', except_session_id: 3 } },
    ]
    const state = history.reduce(evolveAccount, accountDecider.initialState)
    if (state.status !== 'active') throw new Error('expected active')
    expect(isSessionRevokedByAccount(state, 2, 0)).toBe(true)
    expect(isSessionRevokedByAccount(state, 3, 0)).toBe(false)
    expect(isSessionRevokedByAccount(state, 4, 1)).toBe(false)
  })
})

describe('account: two-factor and password reset', () => {
  const started: AccountEvent = { type: 'TotpEnrollmentStarted', data: { secret: 'SECRET' } }
  const enabled: AccountEvent = {
    type: 'TotpEnabled',
    data: { recovery_code_hashes: ['h0', 'h1'], step: 100 },
  }
  it('enabling needs a started enrolment', () => {
    given(registered)
      .when({ type: 'EnableTotp', data: { step: 1, recovery_code_hashes: [] } })
      .thenThrows('TWO_FACTOR_NOT_STARTED')
  })
  it('refuses a replayed time step and a used recovery code', () => {
    given(registered, started, enabled)
      .when({
        type: 'AcceptSecondFactor',
        data: { totp_step: 100, challenge_revision: 2, challenge_id: 'c1', now: NOW },
      })
      .thenThrows('TWO_FACTOR_CODE_INVALID')
    given(registered, started, enabled)
      .when({
        type: 'AcceptSecondFactor',
        data: { totp_step: 101, challenge_revision: 2, challenge_id: 'c1', now: NOW },
      })
      .then({ type: 'TotpCodeAccepted', data: { step: 101, challenge_id: 'c1' } })
    given(registered, started, enabled, { type: 'RecoveryCodeUsed', data: { index: 1 } })
      .when({
        type: 'AcceptSecondFactor',
        data: { recovery_index: 1, challenge_revision: 2, challenge_id: 'c1', now: NOW },
      })
      .thenThrows('TWO_FACTOR_CODE_INVALID')
  })
  it('a reset token works once and not after it expires', () => {
    const requested: AccountEvent = {
      type: 'PasswordResetRequested',
      data: { token_hash: 't', expires_at: '2026-11-25T12:30:00.000Z' },
    }
    const reset = (now: number): AccountCommand => ({
      type: 'CompletePasswordReset',
      data: { token_hash: 't', password_hash: 'new', now },
    })
    given(registered, requested)
      .when(reset(NOW))
      .then(
        { type: 'PasswordResetCompleted', data: { token_hash: 't' } },
        { type: 'PasswordChanged', data: { password_hash: 'new', reason: 'reset' } },
        { type: 'SessionsRevoked', data: { reason: 'password_reset', except_session_id: null } },
      )
    given(registered, requested)
      .when(reset(NOW + 31 * 60_000))
      .thenThrows('RESET_TOKEN_INVALID')
    given(registered, requested, { type: 'PasswordResetCompleted', data: { token_hash: 't' } })
      .when(reset(NOW))
      .thenThrows('RESET_TOKEN_INVALID')
  })
  it('a new password voids outstanding reset tokens; a rehash does not', () => {
    const requested: AccountEvent = {
      type: 'PasswordResetRequested',
      data: { token_hash: 't', expires_at: '2026-11-25T12:30:00.000Z' },
    }
    const reset: AccountCommand = {
      type: 'CompletePasswordReset',
      data: { token_hash: 't', password_hash: 'n', now: NOW },
    }
    given(registered, requested, { type: 'PasswordChanged', data: { password_hash: 'x', reason: 'user' } })
      .when(reset)
      .thenThrows('RESET_TOKEN_INVALID')
    given(registered, requested, { type: 'PasswordChanged', data: { password_hash: 'x', reason: 'rehash' } })
      .when(reset)
      .thenMatches((events) => expect(events[0].type).toBe('PasswordResetCompleted'))
  })
})

describe('account: an authentication is decided against what it checked', () => {
  const passwordChanged: AccountEvent = {
    type: 'PasswordChanged',
    data: { password_hash: 'new', reason: 'user' },
  }
  const voiding: [string, AccountEvent][] = [
    ['a password change', passwordChanged],
    ['a password reset', { type: 'PasswordChanged', data: { password_hash: 'new', reason: 'reset' } }],
    [
      'a lock that has ended',
      { type: 'AccountLocked', data: { reason: 'admin', note: null, until: '2026-11-25T11:00:00.000Z' } },
    ],
    [
      'a revocation of sessions',
      { type: 'SessionsRevoked', data: { reason: 'role_changed', except_session_id: null } },
    ],
    ['2FA turned off', { type: 'TotpDisabled', data: {} }],
  ]
  it.each(voiding)('refuses a login whose password was verified before %s', (_, event) => {
    // The password was verified at revision 0 (the registration); the event is revision 1.
    given(registered, event).when(success(NOW, 0)).thenThrows('INVALID_CREDENTIALS')
    given(registered, event).when(success(NOW, 1)).then()
  })
  it('does not count failures, cleared counts or accepted codes as such changes', () => {
    given(registered, failed, { type: 'FailedLoginsCleared', data: {} }).when(success(NOW, 0)).then()
  })
  it('refuses a 2FA challenge issued before a password change, lock or deactivation', () => {
    const started: AccountEvent = { type: 'TotpEnrollmentStarted', data: { secret: 'SECRET' } }
    const enabled: AccountEvent = { type: 'TotpEnabled', data: { recovery_code_hashes: ['h0'], step: 100 } }
    const accept = (challengeRevision: number): AccountCommand => ({
      type: 'AcceptSecondFactor',
      data: { totp_step: 101, challenge_revision: challengeRevision, challenge_id: 'c1', now: NOW },
    })
    // The challenge was issued at revision 2 (after the enabling).
    given(registered, started, enabled)
      .when(accept(2))
      .then({ type: 'TotpCodeAccepted', data: { step: 101, challenge_id: 'c1' } })
    given(registered, started, enabled, passwordChanged).when(accept(2)).thenThrows('INVALID_CREDENTIALS')
    given(
      registered,
      started,
      enabled,
      { type: 'AccountDeactivated', data: {} },
      { type: 'AccountActivated', data: {} },
    )
      .when(accept(2))
      .thenThrows('INVALID_CREDENTIALS')
  })
  it('a rehash replaces only the hash it was computed from', () => {
    given(registered)
      .when({
        type: 'RehashPassword',
        data: { password_hash: 'rehashed', previous_hash: registered.data.password_hash },
      })
      .then({ type: 'PasswordChanged', data: { password_hash: 'rehashed', reason: 'rehash' } })
    given(registered, passwordChanged)
      .when({
        type: 'RehashPassword',
        data: { password_hash: 'rehashed', previous_hash: registered.data.password_hash },
      })
      .then()
  })
  it('an email change voids outstanding reset tokens', () => {
    const requested: AccountEvent = {
      type: 'PasswordResetRequested',
      data: { token_hash: 't', expires_at: '2026-11-25T12:30:00.000Z' },
    }
    const emailChanged: AccountEvent = {
      type: 'EmailChanged',
      data: { email: 'new@example.com', email_key: 'k2', previous_email_key: 'k1' },
    }
    given(registered, requested, emailChanged)
      .when({ type: 'CompletePasswordReset', data: { token_hash: 't', password_hash: 'n', now: NOW } })
      .thenThrows('RESET_TOKEN_INVALID')
  })
})

describe('account: a 2FA challenge completes once, whichever instance sees it', () => {
  const started: AccountEvent = { type: 'TotpEnrollmentStarted', data: { secret: 'SECRET' } }
  const enabled: AccountEvent = {
    type: 'TotpEnabled',
    data: { recovery_code_hashes: ['h0', 'h1'], step: 100 },
  }
  const usedBy = (challenge: string): AccountEvent => ({
    type: 'TotpCodeAccepted',
    data: { step: 101, challenge_id: challenge },
  })
  const accept = (
    challenge: string,
    data: { totp_step: number } | { recovery_index: number },
  ): AccountCommand => ({
    type: 'AcceptSecondFactor',
    data: { ...data, challenge_revision: 2, challenge_id: challenge, now: NOW },
  })
  it('refuses a challenge already completed, with a later code or a recovery code', () => {
    given(registered, started, enabled, usedBy('c1'))
      .when(accept('c1', { totp_step: 102 }))
      .thenThrows('INVALID_CREDENTIALS')
    given(registered, started, enabled, usedBy('c1'))
      .when(accept('c1', { recovery_index: 0 }))
      .thenThrows('INVALID_CREDENTIALS')
    given(registered, started, enabled, usedBy('c1'))
      .when(accept('c2', { totp_step: 102 }))
      .then({ type: 'TotpCodeAccepted', data: { step: 102, challenge_id: 'c2' } })
  })
})

describe('account: a profile update is one command per intent', () => {
  const changeEmail = (verifiedAt = Number.MAX_SAFE_INTEGER): AccountCommand => ({
    type: 'ChangeEmail',
    data: { email: 'alice@example.org', email_key: 'ek2', verified_at_revision: verifiedAt },
  })
  const changePassword = (verifiedAt = Number.MAX_SAFE_INTEGER): AccountCommand => ({
    type: 'ChangePassword',
    data: { password_hash: 'new', current_session_id: 3, verified_at_revision: verifiedAt },
  })
  const emailChanged: AccountEvent = {
    type: 'EmailChanged',
    data: { email: 'alice@example.org', email_key: 'ek2', previous_email_key: 'ek' },
  }
  const passwordChanged: AccountEvent[] = [
    { type: 'PasswordChanged', data: { password_hash: 'new', reason: 'user' } },
    { type: 'SessionsRevoked', data: { reason: 'password_changed', except_session_id: 3 } },
  ]

  it('an email change records the key it replaces; the same address changes nothing', () => {
    given(registered).when(changeEmail()).then(emailChanged)
    given(registered, emailChanged).when(changeEmail()).then()
  })
  it('a name change; the same name changes nothing', () => {
    given(registered)
      .when({ type: 'ChangeFullName', data: { full_name: 'Alice' } })
      .then({ type: 'FullNameChanged', data: { full_name: 'Alice' } })
    given(registered)
      .when({ type: 'ChangeFullName', data: { full_name: null } })
      .then()
  })
  it('a password change revokes every session but the current one', () => {
    given(registered)
      .when(changePassword())
      .then(...passwordChanged)
  })
  it('refuses an email or password change allowed by a password that changed since, not a name change', () => {
    const changedMeanwhile: AccountEvent = {
      type: 'PasswordChanged',
      data: { password_hash: 'x', reason: 'reset' },
    }
    given(registered, changedMeanwhile).when(changeEmail(0)).thenThrows('INVALID_CREDENTIALS')
    given(registered, changedMeanwhile).when(changePassword(0)).thenThrows('INVALID_CREDENTIALS')
    given(registered, changedMeanwhile)
      .when({ type: 'ChangeFullName', data: { full_name: 'Alice' } })
      .then({ type: 'FullNameChanged', data: { full_name: 'Alice' } })
  })
  it('decided in sequence, all intents give the events one profile update gave, or none', () => {
    const profile = specFor(inSequence(accountDecider))
    profile(registered)
      .when([changeEmail(0), { type: 'ChangeFullName', data: { full_name: 'Alice' } }, changePassword(0)])
      .then(emailChanged, { type: 'FullNameChanged', data: { full_name: 'Alice' } }, ...passwordChanged)
    profile(registered, { type: 'TotpDisabled', data: {} })
      .when([{ type: 'ChangeFullName', data: { full_name: 'Alice' } }, changePassword(0)])
      .thenThrows('INVALID_CREDENTIALS')
  })
})

describe('account: a second factor completes a login only where a password login could', () => {
  const started: AccountEvent = { type: 'TotpEnrollmentStarted', data: { secret: 'SECRET' } }
  const enabled: AccountEvent = { type: 'TotpEnabled', data: { recovery_code_hashes: ['h0'], step: 100 } }
  const accept: AccountCommand = {
    type: 'AcceptSecondFactor',
    data: { totp_step: 101, challenge_revision: 2, challenge_id: 'c1', now: NOW },
  }
  it('refuses a locked account, with the seconds left', () => {
    const locked: AccountEvent = {
      type: 'AccountLocked',
      data: { reason: 'too_many_failures', note: null, until: '2026-11-25T12:15:00.000Z' },
    }
    const error = given(registered, started, enabled, locked).when(accept).thenThrows('ACCOUNT_LOCKED')
    expect(error.retryAfterSeconds).toBe(900)
  })
  it('refuses a deactivated account', () => {
    given(registered, started, enabled, { type: 'AccountDeactivated', data: {} })
      .when(accept)
      .thenThrows('ACCOUNT_DEACTIVATED')
  })
})
