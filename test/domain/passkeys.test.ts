/**
 * The passkey rules of the account decider (domain/passkeys.ts), as given/when/then over events:
 * single-use and expiring challenges, the sign counter, locks and deactivation, ids, the last
 * passkey of a passwordless account.
 */
import { describe, expect, it } from 'vitest'
import { type AccountCommand, accountDecider } from '../../domain/account.decider.ts'
import type { AccountEvent, PasskeyRegistered } from '../../domain/account.events.ts'
import { ACCOUNT_LOCK_THRESHOLD } from '../../domain/lockout.ts'
import { PASSKEY_CHALLENGE_TTL_SECONDS } from '../../domain/passkeys.ts'
import { registered, specFor } from './given.ts'

const given = specFor(accountDecider)
const NOW = Date.parse('2026-11-25T12:00:00Z')
const at = (ms: number): string => new Date(ms).toISOString()
const LATER = at(NOW + 60_000)

const credential = {
  credential_id: 'cred-1',
  public_key: 'pk-1',
  user_handle: 'uh',
  sign_count: 0,
  transports: ['usb'],
  aaguid: '00000000-0000-0000-0000-000000000000',
  device_type: 'singleDevice' as const,
  backed_up: false,
  user_verified: false,
  attestation_format: 'none',
}
const register = (challenge = 'r1', credentialId = 'cred-1', expires = LATER): AccountCommand => ({
  type: 'RegisterPasskey',
  data: {
    ...credential,
    credential_id: credentialId,
    name: null,
    challenge_id: challenge,
    challenge_expires_at: expires,
    now: NOW,
  },
})
const passkey = (id: number, credentialId: string, signCount = 0): PasskeyRegistered => ({
  type: 'PasskeyRegistered',
  data: {
    ...credential,
    passkey_id: id,
    name: `Passkey ${id}`,
    credential_id: credentialId,
    sign_count: signCount,
    challenge_id: `r-${id}`,
    challenge_expires_at: LATER,
  },
})
const use = (
  signCount: number,
  challenge = 'l1',
  options: { now?: number; expires?: string; verifiedAt?: number; passkeyId?: number } = {},
): AccountCommand => ({
  type: 'UsePasskey',
  data: {
    passkey_id: options.passkeyId ?? 1,
    sign_count: signCount,
    user_verified: true,
    backed_up: false,
    challenge_id: challenge,
    challenge_expires_at: options.expires ?? LATER,
    now: options.now ?? NOW,
    verified_at_revision: options.verifiedAt ?? Number.MAX_SAFE_INTEGER,
    ip_address: '203.0.113.9',
    user_agent: 'UA',
  },
})
const used = (signCount: number, challenge = 'l1', expires = LATER): AccountEvent => ({
  type: 'PasskeyUsed',
  data: {
    passkey_id: 1,
    sign_count: signCount,
    user_verified: true,
    backed_up: false,
    challenge_id: challenge,
    challenge_expires_at: expires,
  },
})

describe('passkeys: registration', () => {
  it('registers with the next id and a default name', () => {
    given(registered)
      .when(register())
      .then({
        type: 'PasskeyRegistered',
        data: { ...passkey(1, 'cred-1').data, challenge_id: 'r1' },
      })
  })
  it('never reuses an id, even after a removal', () => {
    given(registered, passkey(1, 'a'), passkey(2, 'b'), { type: 'PasskeyRemoved', data: { passkey_id: 2 } })
      .when(register('r9', 'c'))
      .thenMatches((events) => expect(events[0]).toMatchObject({ data: { passkey_id: 3 } }))
  })
  it('refuses a registration challenge already used, or expired', () => {
    given(registered, passkey(1, 'a')).when(register('r-1', 'b')).thenThrows('PASSKEY_INVALID')
    given(registered)
      .when(register('r1', 'b', at(NOW)))
      .thenThrows('PASSKEY_INVALID')
  })
  it('refuses a credential the account holds (409)', () => {
    given(registered, passkey(1, 'a')).when(register('r2', 'a')).thenThrows('PASSKEY_CONFLICT')
  })
  it('refuses a deactivated account', () => {
    given(registered, { type: 'AccountDeactivated', data: {} })
      .when(register())
      .thenThrows('ACCOUNT_DEACTIVATED')
  })
})

describe('passkeys: login', () => {
  it('records the use with the new counter', () => {
    given(registered, passkey(1, 'a', 3))
      .when(use(4))
      .then(used(4))
  })
  it('accepts 0 after 0 (an authenticator without a counter)', () => {
    given(registered, passkey(1, 'a', 0))
      .when(use(0))
      .then(used(0))
  })
  it('refuses and records a counter that goes backwards or stands still, as a failed login', () => {
    for (const presented of [2, 3]) {
      given(registered, passkey(1, 'a', 3))
        .when(use(presented))
        .then(
          {
            type: 'PasskeySignCountRegressed',
            data: {
              passkey_id: 1,
              stored_sign_count: 3,
              presented_sign_count: presented,
              ip_address: '203.0.113.9',
              user_agent: 'UA',
            },
          },
          { type: 'LoginFailed', data: { reason: 'passkey', ip_address: '203.0.113.9', user_agent: 'UA' } },
        )
    }
    // 0 from an authenticator that counted before.
    given(registered, passkey(1, 'a'), used(5))
      .when(use(0, 'l2'))
      .thenMatches((events) => expect(events[0].type).toBe('PasskeySignCountRegressed'))
  })
  it('locks the account at the threshold of failures, passkey failures included', () => {
    const failures: AccountEvent[] = Array.from({ length: ACCOUNT_LOCK_THRESHOLD - 1 }, () => ({
      type: 'LoginFailed',
      data: { reason: 'password', ip_address: null, user_agent: null },
    }))
    given(registered, passkey(1, 'a', 3), ...failures)
      .when(use(1))
      .thenMatches((events) =>
        expect(events.map((e) => e.type)).toEqual([
          'PasskeySignCountRegressed',
          'LoginFailed',
          'AccountLocked',
        ]),
      )
  })
  it('uses a challenge once', () => {
    given(registered, passkey(1, 'a'), used(0, 'l1')).when(use(0, 'l1')).thenThrows('INVALID_CREDENTIALS')
    given(registered, passkey(1, 'a'), used(0, 'l1')).when(use(0, 'l2')).then(used(0, 'l2'))
  })
  it('refuses an expired challenge', () => {
    given(registered, passkey(1, 'a'))
      .when(use(0, 'l1', { expires: at(NOW) }))
      .thenThrows('INVALID_CREDENTIALS')
  })
  it('forgets a used challenge only once it can no longer be presented', () => {
    const ttl = PASSKEY_CHALLENGE_TTL_SECONDS * 1000
    const history = [registered, passkey(1, 'a'), used(0, 'old', at(NOW + 1000))]
    // A challenge issued before the old one expired keeps it remembered...
    const stillRemembered = given(...history, used(0, 'newer', at(NOW + 1000 + ttl - 1))).state
    // ...one issued after it expired lets it go.
    const forgotten = given(...history, used(0, 'newest', at(NOW + 1000 + ttl))).state
    const ids = (state: typeof stillRemembered) =>
      state.status === 'active' ? state.passkeys.usedChallenges.map((c) => c.id) : []
    expect(ids(stillRemembered)).toEqual(['r-1', 'old', 'newer'])
    expect(ids(forgotten)).not.toContain('old')
  })
  it('refuses a removed passkey, a locked and a deactivated account, and a login voided since it was verified', () => {
    given(registered, passkey(1, 'a'), { type: 'PasskeyRemoved', data: { passkey_id: 1 } })
      .when(use(0))
      .thenThrows('INVALID_CREDENTIALS')
    given(registered, passkey(1, 'a'), {
      type: 'AccountLocked',
      data: { reason: 'admin', note: null, until: null },
    })
      .when(use(0))
      .thenThrows('ACCOUNT_LOCKED')
    given(registered, passkey(1, 'a'), { type: 'AccountDeactivated', data: {} })
      .when(use(0))
      .thenThrows('ACCOUNT_DEACTIVATED')
    // Verified at revision 1; sessions were revoked at revision 2.
    given(registered, passkey(1, 'a'), {
      type: 'SessionsRevoked',
      data: { reason: 'password_changed', except_session_id: null },
    })
      .when(use(0, 'l1', { verifiedAt: 1 }))
      .thenThrows('INVALID_CREDENTIALS')
  })
  it('clears the failure count on success', () => {
    given(registered, passkey(1, 'a'), {
      type: 'LoginFailed',
      data: { reason: 'passkey', ip_address: null, user_agent: null },
    })
      .when(use(0))
      .then(used(0), { type: 'FailedLoginsCleared', data: {} })
  })
})

describe('passkeys: management and passwordless accounts', () => {
  const removePassword: AccountCommand = { type: 'RemovePassword', data: { current_session_id: 3 } }
  const passwordRemoved: AccountEvent[] = [
    { type: 'PasswordRemoved', data: {} },
    { type: 'SessionsRevoked', data: { reason: 'password_changed', except_session_id: 3 } },
  ]
  it('renames and removes only passkeys the account holds', () => {
    given(registered)
      .when({ type: 'RenamePasskey', data: { passkey_id: 1, name: 'x' } })
      .thenThrows('PASSKEY_NOT_FOUND')
    given(registered)
      .when({ type: 'RemovePasskey', data: { passkey_id: 1 } })
      .thenThrows('PASSKEY_NOT_FOUND')
    given(registered, passkey(1, 'a'))
      .when({ type: 'RenamePasskey', data: { passkey_id: 1, name: 'Passkey 1' } })
      .then()
  })
  it('removes the password only with a passkey, and once', () => {
    given(registered).when(removePassword).thenThrows('PASSKEY_CONFLICT')
    given(registered, passkey(1, 'a'))
      .when(removePassword)
      .then(...passwordRemoved)
    given(registered, passkey(1, 'a'), ...passwordRemoved)
      .when(removePassword)
      .thenThrows('ALREADY_IN_STATE')
  })
  it('keeps the last passkey of a passwordless account, not of one with a password', () => {
    const remove: AccountCommand = { type: 'RemovePasskey', data: { passkey_id: 1 } }
    given(registered, passkey(1, 'a'), ...passwordRemoved)
      .when(remove)
      .thenThrows('PASSKEY_CONFLICT')
    given(registered, passkey(1, 'a'), passkey(2, 'b'), ...passwordRemoved)
      .when(remove)
      .then({ type: 'PasskeyRemoved', data: { passkey_id: 1 } })
    given(registered, passkey(1, 'a'))
      .when(remove)
      .then({ type: 'PasskeyRemoved', data: { passkey_id: 1 } })
  })
  it('a password reset ends the passwordless state (the account holds a password again)', () => {
    const state = given(registered, passkey(1, 'a'), ...passwordRemoved, {
      type: 'PasswordChanged',
      data: { password_hash: '$argon2id$new', reason: 'reset' },
    }).state
    expect(state.status === 'active' && state.passwordHash).toBe('$argon2id$new')
  })
})
