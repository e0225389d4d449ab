/** The decider's email verification rules: single use, expiry, voided by a newer token or a change of address. */
import { describe, expect, it } from 'vitest'
import { type AccountCommand, accountDecider, livePendingEmailChange } from '../../domain/account.decider.ts'
import type { AccountEvent } from '../../domain/account.events.ts'
import type { ExistingAccount } from '../../domain/account.ts'
import { registered, specFor } from './given.ts'

const given = specFor(accountDecider)
const NOW = Date.parse('2026-11-25T12:00:00Z')
const LATER = '2026-11-26T12:00:00.000Z'

const requested = (hash: string, expires_at = LATER): AccountEvent => ({
  type: 'EmailVerificationRequested',
  data: { token_hash: hash, expires_at },
})
const pendingChange = (hash: string, expires_at = LATER): AccountEvent => ({
  type: 'EmailVerificationRequested',
  data: { token_hash: hash, expires_at, email: 'new@example.org', email_key: 'ek2' },
})
const verified = (hash: string): AccountEvent => ({ type: 'EmailVerified', data: { token_hash: hash } })
const verify = (hash: string, now = NOW): AccountCommand => ({
  type: 'VerifyEmail',
  data: { token_hash: hash, now },
})
const request = (hash: string, now = NOW): AccountCommand => ({
  type: 'RequestEmailVerification',
  data: { token_hash: hash, expires_at: LATER, now },
})
const changeTo = (
  email: string,
  email_key: string,
  hash: string,
  verified_at_revision = 100,
): AccountCommand => ({
  type: 'RequestEmailChange',
  data: { email, email_key, token_hash: hash, expires_at: LATER, verified_at_revision },
})
const stateOf = (...events: AccountEvent[]) => given(registered, ...events).state as ExistingAccount

describe('email verification: the token', () => {
  it('a new account starts unverified', () => {
    expect(stateOf().emailVerified).toBe(false)
  })

  it('confirms the address once: a second use is invalid', () => {
    given(registered, requested('h1')).when(verify('h1')).then(verified('h1'))
    expect(stateOf(requested('h1'), verified('h1')).emailVerified).toBe(true)
    given(registered, requested('h1'), verified('h1'))
      .when(verify('h1'))
      .thenThrows('EMAIL_VERIFICATION_INVALID')
  })

  it('works until its expiry, not at or after it', () => {
    const expires = '2026-11-25T12:00:01.000Z'
    given(registered, requested('h1', expires)).when(verify('h1')).then(verified('h1'))
    given(registered, requested('h1', expires))
      .when(verify('h1', Date.parse(expires)))
      .thenThrows('EMAIL_VERIFICATION_INVALID')
  })

  it('a newer token voids the older one', () => {
    given(registered, requested('h1'), requested('h2'))
      .when(verify('h1'))
      .thenThrows('EMAIL_VERIFICATION_INVALID')
    given(registered, requested('h1'), requested('h2')).when(verify('h2')).then(verified('h2'))
  })

  it('a change of address voids the token mailed to the old one and makes the new one unverified', () => {
    const changed: AccountEvent = {
      type: 'EmailChanged',
      data: { email: 'other@example.org', email_key: 'ek3', previous_email_key: 'ek' },
    }
    given(registered, requested('h1'), changed).when(verify('h1')).thenThrows('EMAIL_VERIFICATION_INVALID')
    expect(stateOf(requested('h1'), verified('h1'), changed).emailVerified).toBe(false)
  })

  it('an unknown hash, or no account, is invalid', () => {
    given(registered, requested('h1')).when(verify('h2')).thenThrows('EMAIL_VERIFICATION_INVALID')
    given().when(verify('h1')).thenThrows('EMAIL_VERIFICATION_INVALID')
  })
})

describe('email verification: requesting a token', () => {
  it('for the current address while it is unverified; refused once verified', () => {
    given(registered).when(request('h1')).then(requested('h1'))
    given(registered, requested('h1'), verified('h1')).when(request('h2')).thenThrows('ALREADY_IN_STATE')
  })

  it('for a change awaiting confirmation while its token lives, else for the current address', () => {
    given(registered, pendingChange('h1')).when(request('h2')).then(pendingChange('h2'))
    given(registered, pendingChange('h1', '2026-11-25T11:00:00.000Z'))
      .when(request('h2'))
      .then(requested('h2'))
  })
})

describe('email verification: a change of address that waits for confirmation', () => {
  it('is requested without changing the address', () => {
    given(registered)
      .when(changeTo('new@example.org', 'ek2', 'h1'))
      .then(pendingChange('h1'))
    const account = stateOf(requested('h0'), verified('h0'), pendingChange('h1'))
    expect(account.email).toBe('alice@example.com')
    expect(account.emailVerified).toBe(true)
    expect(livePendingEmailChange(account, NOW)).toEqual({
      email: 'new@example.org',
      emailKey: 'ek2',
      expiresAt: LATER,
    })
    expect(livePendingEmailChange(account, Date.parse(LATER))).toBeNull()
  })

  it('to the current address is no change', () => {
    given(registered)
      .when(changeTo('ALICE@example.com', 'ek', 'h1'))
      .then()
  })

  it('is refused when the password changed since it was checked', () => {
    const passwordChanged: AccountEvent = {
      type: 'PasswordChanged',
      data: { password_hash: '$argon2id$new', reason: 'user' },
    }
    given(registered, passwordChanged)
      .when(changeTo('new@example.org', 'ek2', 'h1', 0))
      .thenThrows('INVALID_CREDENTIALS')
  })

  it('takes effect with its token: the new address, verified; reset tokens die', () => {
    const reset: AccountEvent = {
      type: 'PasswordResetRequested',
      data: { token_hash: 'r1', expires_at: LATER },
    }
    const history = [requested('h0'), verified('h0'), reset, pendingChange('h1')]
    const changed: AccountEvent = {
      type: 'EmailChanged',
      data: { email: 'new@example.org', email_key: 'ek2', previous_email_key: 'ek' },
    }
    given(registered, ...history)
      .when(verify('h1'))
      .then(changed, verified('h1'))
    const after = stateOf(...history, changed, verified('h1'))
    expect(after).toMatchObject({ email: 'new@example.org', emailKey: 'ek2', emailVerified: true })
    expect(after.resetTokens).toEqual([])
    expect(after.emailVerification).toBeNull()
  })

  it('a token for the current address voids the pending change', () => {
    given(registered, pendingChange('h1'), requested('h2'))
      .when(verify('h1'))
      .thenThrows('EMAIL_VERIFICATION_INVALID')
    expect(livePendingEmailChange(stateOf(pendingChange('h1'), requested('h2')), NOW)).toBeNull()
  })
})
