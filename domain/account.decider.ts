import type { AccountEvent, AccountRegistered, SessionsRevoked } from './account.events.ts'
import {
  type Account,
  authenticationVoidedSince,
  type EmailVerification,
  type ExistingAccount,
  evolveAccount,
  initialAccount,
  isLockedAt,
  isTotpEnabled,
} from './account.ts'
import { DomainError } from './errors.ts'
import type { Role } from './event.ts'
import { ACCOUNT_LOCK_THRESHOLD, automaticLockMinutes } from './lockout.ts'
import { decidePasskey, type PasskeyCommand } from './passkeys.ts'

type Client = { ip_address: string | null; user_agent: string | null }

export type AccountCommand =
  | { type: 'Register'; data: AccountRegistered['data'] }
  | {
      type: 'RecordFailedLogin'
      data: Client & { reason: 'password' | 'second_factor' | 'passkey'; now: number }
    }
  | PasskeyCommand
  /** `verified_at_revision`: the account revision whose password hash (or challenge) was checked. */
  | { type: 'RecordSuccessfulLogin'; data: { now: number; verified_at_revision: number } }
  | { type: 'Lock'; data: { note: string | null; until: string | null } }
  | { type: 'Unlock'; data: Record<string, never> }
  | { type: 'Deactivate'; data: Record<string, never> }
  | { type: 'Activate'; data: Record<string, never> }
  | { type: 'ChangeRole'; data: { role: Role } }
  /** `verified_at_revision`: the revision whose password hash the current password was checked against. */
  | { type: 'ChangeEmail'; data: { email: string; email_key: string; verified_at_revision: number } }
  | { type: 'ChangeFullName'; data: { full_name: string | null } }
  | {
      type: 'ChangePassword'
      data: { password_hash: string; current_session_id: number | null; verified_at_revision: number }
    }
  /** Replaces `previous_hash` only: a rehash racing a password change must not undo it. */
  | { type: 'RehashPassword'; data: { password_hash: string; previous_hash: string } }
  | { type: 'StartTotpEnrollment'; data: { secret: string } }
  | { type: 'EnableTotp'; data: { step: number; recovery_code_hashes: string[] } }
  | {
      type: 'AcceptSecondFactor'
      data: ({ totp_step: number } | { recovery_index: number }) & {
        challenge_revision: number
        challenge_id: string
        now: number
      }
    }
  | { type: 'DisableTotp'; data: Record<string, never> }
  | { type: 'RequestPasswordReset'; data: { token_hash: string; expires_at: string } }
  | { type: 'CompletePasswordReset'; data: { token_hash: string; password_hash: string; now: number } }
  | { type: 'Delete'; data: Record<string, never> }
  /**
   * A new verification token, voiding the outstanding one: for a change awaiting confirmation
   * if one is live at `now`, else for the current address (refused when that is verified).
   */
  | { type: 'RequestEmailVerification'; data: { token_hash: string; expires_at: string; now: number } }
  /** A change of address that takes effect when the token mailed to it is used (REQUIRE_VERIFIED_EMAIL=1). */
  | {
      type: 'RequestEmailChange'
      data: {
        email: string
        email_key: string
        token_hash: string
        expires_at: string
        verified_at_revision: number
      }
    }
  | { type: 'VerifyEmail'; data: { token_hash: string; now: number } }

export const invalidChallenge = (): DomainError =>
  new DomainError('INVALID_CREDENTIALS', 'Invalid challenge token')
export const invalidResetToken = (): DomainError =>
  new DomainError('RESET_TOKEN_INVALID', 'Invalid or expired reset token')

export const invalidVerificationToken = (): DomainError =>
  new DomainError('EMAIL_VERIFICATION_INVALID', 'Invalid, expired or already used verification token')

function existing(state: Account): ExistingAccount {
  if (state.status === 'none' || state.status === 'erased') {
    throw new DomainError('ACCOUNT_NOT_FOUND', 'User not found')
  }
  return state
}

function revokeAll(reason: SessionsRevoked['data']['reason'], except: number | null = null): SessionsRevoked {
  return { type: 'SessionsRevoked', data: { reason, except_session_id: except } }
}

/** Refuses a locked account, with the seconds left; checked before any password hash is spent. */
export function assertNotLocked(account: ExistingAccount, now: number): void {
  if (!isLockedAt(account, now)) return
  const until = account.lock?.until
  const retryAfterSeconds = until ? Math.max(1, Math.ceil((Date.parse(until) - now) / 1000)) : undefined
  throw new DomainError('ACCOUNT_LOCKED', 'Account is locked', { retryAfterSeconds })
}

function register(command: Extract<AccountCommand, { type: 'Register' }>, state: Account): AccountEvent[] {
  if (state.status !== 'none') throw new DomainError('CONCURRENT_CHANGE', 'Account id already in use')
  return [{ type: 'AccountRegistered', data: command.data }]
}

function recordFailedLogin(
  command: Extract<AccountCommand, { type: 'RecordFailedLogin' }>,
  state: Account,
): AccountEvent[] {
  const account = existing(state)
  assertNotLocked(account, command.data.now)
  return failedLoginEvents(account, command.data)
}

/** A failed login, and the automatic lock when it is one failure too many. */
export function failedLoginEvents(
  account: ExistingAccount,
  failure: Client & { reason: 'password' | 'second_factor' | 'passkey'; now: number },
): AccountEvent[] {
  const { now, reason, ip_address, user_agent } = failure
  const events: AccountEvent[] = [{ type: 'LoginFailed', data: { reason, ip_address, user_agent } }]
  if (account.failedLogins + 1 >= ACCOUNT_LOCK_THRESHOLD) {
    const minutes = automaticLockMinutes(account.automaticLocks)
    const until = new Date(now + minutes * 60_000).toISOString()
    events.push({ type: 'AccountLocked', data: { reason: 'too_many_failures', note: null, until } })
  }
  return events
}

/** Whether a password or challenge checked at `verifiedAtRevision` may still start a session now. */
export function assertCanLogIn(
  account: ExistingAccount,
  now: number,
  verifiedAtRevision: number,
  voided = 'Incorrect username or password',
): void {
  assertNotLocked(account, now)
  if (account.status === 'deactivated') throw new DomainError('ACCOUNT_DEACTIVATED', 'Account is deactivated')
  if (authenticationVoidedSince(account, verifiedAtRevision))
    throw new DomainError('INVALID_CREDENTIALS', voided)
}

function recordSuccessfulLogin(
  command: Extract<AccountCommand, { type: 'RecordSuccessfulLogin' }>,
  state: Account,
): AccountEvent[] {
  const account = existing(state)
  assertCanLogIn(account, command.data.now, command.data.verified_at_revision)
  const needsClearing = account.failedLogins > 0 || account.automaticLocks > 0
  return needsClearing ? [{ type: 'FailedLoginsCleared', data: {} }] : []
}

/** Email and password changes were allowed by the current password: refused if it changed since. */
function assertCurrentPasswordStillValid(account: ExistingAccount, verifiedAtRevision: number): void {
  if (authenticationVoidedSince(account, verifiedAtRevision)) {
    throw new DomainError('INVALID_CREDENTIALS', 'Current password is incorrect')
  }
}

function changeEmail(
  command: Extract<AccountCommand, { type: 'ChangeEmail' }>,
  state: Account,
): AccountEvent[] {
  const account = existing(state)
  const { email, email_key, verified_at_revision } = command.data
  assertCurrentPasswordStillValid(account, verified_at_revision)
  if (email_key === account.emailKey) return []
  return [{ type: 'EmailChanged', data: { email, email_key, previous_email_key: account.emailKey } }]
}

function changePassword(
  command: Extract<AccountCommand, { type: 'ChangePassword' }>,
  state: Account,
): AccountEvent[] {
  const account = existing(state)
  const { password_hash, current_session_id, verified_at_revision } = command.data
  assertCurrentPasswordStillValid(account, verified_at_revision)
  return [
    { type: 'PasswordChanged', data: { password_hash, reason: 'user' } },
    revokeAll('password_changed', current_session_id),
  ]
}

/** The secret of the enrolment awaiting confirmation; refuses when 2FA is on or no enrolment started. */
export function pendingTotpSecret(account: ExistingAccount): string {
  if (isTotpEnabled(account)) {
    throw new DomainError('TWO_FACTOR_ALREADY_ENABLED', 'Two-factor authentication is already enabled')
  }
  if (!account.totp.pendingSecret) {
    throw new DomainError('TWO_FACTOR_NOT_STARTED', 'Start enrolment with /auth/generate-2fa-code first')
  }
  return account.totp.pendingSecret
}

function acceptSecondFactor(
  command: Extract<AccountCommand, { type: 'AcceptSecondFactor' }>,
  state: Account,
): AccountEvent[] {
  const account = existing(state)
  if (!isTotpEnabled(account))
    throw new DomainError('TWO_FACTOR_NOT_ENABLED', 'Two-factor authentication is not enabled')
  const { challenge_revision, challenge_id, now } = command.data
  assertCanLogIn(account, now, challenge_revision, invalidChallenge().message)
  if (account.totp.usedChallenges.includes(challenge_id)) throw invalidChallenge()
  const events: AccountEvent[] = []
  if ('totp_step' in command.data) {
    const { totp_step } = command.data
    if (account.totp.lastStep !== null && totp_step <= account.totp.lastStep) {
      throw new DomainError('TWO_FACTOR_CODE_INVALID', 'Invalid or already used code')
    }
    events.push({ type: 'TotpCodeAccepted', data: { step: totp_step, challenge_id } })
  } else {
    const { recovery_index } = command.data
    if (account.totp.recoveryCodes[recovery_index] == null) {
      throw new DomainError('TWO_FACTOR_CODE_INVALID', 'Invalid or already used code')
    }
    events.push({ type: 'RecoveryCodeUsed', data: { index: recovery_index, challenge_id } })
  }
  if (account.failedLogins > 0 || account.automaticLocks > 0)
    events.push({ type: 'FailedLoginsCleared', data: {} })
  return events
}

/** The account a reset token (by its hash) may set a new password for now. */
export function assertResetTokenUsable(state: Account, tokenHash: string, now: number): ExistingAccount {
  if (state.status === 'none' || state.status === 'erased') throw invalidResetToken()
  const token = state.resetTokens.find((t) => t.hash === tokenHash)
  if (!token || token.used || Date.parse(token.expiresAt) <= now) throw invalidResetToken()
  return state
}

function completePasswordReset(
  command: Extract<AccountCommand, { type: 'CompletePasswordReset' }>,
  state: Account,
): AccountEvent[] {
  const { token_hash, password_hash, now } = command.data
  assertResetTokenUsable(state, token_hash, now)
  return [
    { type: 'PasswordResetCompleted', data: { token_hash } },
    { type: 'PasswordChanged', data: { password_hash, reason: 'reset' } },
    revokeAll('password_reset'),
  ]
}

/** A change of address awaiting confirmation whose token is still valid at `now`, if any. */
export function livePendingEmailChange(
  account: ExistingAccount,
  now: number,
): { email: string; emailKey: string; expiresAt: string } | null {
  const v = account.emailVerification
  if (!v || v.pendingEmail === null || v.pendingEmailKey === null) return null
  if (Date.parse(v.expiresAt) <= now) return null
  return { email: v.pendingEmail, emailKey: v.pendingEmailKey, expiresAt: v.expiresAt }
}

/** With REQUIRE_VERIFIED_EMAIL=1, whoever knows the password still cannot sign in to an unconfirmed address. */
export function assertEmailVerified(account: ExistingAccount): void {
  if (!account.emailVerified) {
    throw new DomainError(
      'EMAIL_NOT_VERIFIED',
      'Email address not verified: use the token mailed to it with POST /auth/verify-email',
    )
  }
}

/** The outstanding verification a token (by its hash) may confirm now: single use, until it expires. */
export function assertEmailVerificationUsable(
  state: Account,
  tokenHash: string,
  now: number,
): { account: ExistingAccount; verification: EmailVerification } {
  if (state.status === 'none' || state.status === 'erased') throw invalidVerificationToken()
  const verification = state.emailVerification
  if (!verification || verification.hash !== tokenHash || Date.parse(verification.expiresAt) <= now)
    throw invalidVerificationToken()
  return { account: state, verification }
}

function requestEmailVerification(
  command: Extract<AccountCommand, { type: 'RequestEmailVerification' }>,
  state: Account,
): AccountEvent[] {
  const account = existing(state)
  const { token_hash, expires_at, now } = command.data
  const pending = livePendingEmailChange(account, now)
  if (pending) {
    return [
      {
        type: 'EmailVerificationRequested',
        data: { token_hash, expires_at, email: pending.email, email_key: pending.emailKey },
      },
    ]
  }
  if (account.emailVerified) throw new DomainError('ALREADY_IN_STATE', 'Email address is already verified')
  return [{ type: 'EmailVerificationRequested', data: { token_hash, expires_at } }]
}

function requestEmailChange(
  command: Extract<AccountCommand, { type: 'RequestEmailChange' }>,
  state: Account,
): AccountEvent[] {
  const account = existing(state)
  const { email, email_key, token_hash, expires_at, verified_at_revision } = command.data
  assertCurrentPasswordStillValid(account, verified_at_revision)
  if (email_key === account.emailKey) return []
  return [{ type: 'EmailVerificationRequested', data: { token_hash, expires_at, email, email_key } }]
}

function verifyEmail(
  command: Extract<AccountCommand, { type: 'VerifyEmail' }>,
  state: Account,
): AccountEvent[] {
  const { token_hash, now } = command.data
  const { account, verification } = assertEmailVerificationUsable(state, token_hash, now)
  const verified: AccountEvent = { type: 'EmailVerified', data: { token_hash } }
  if (verification.pendingEmail === null || verification.pendingEmailKey === null) return [verified]
  // The confirmed change: the new address, then its confirmation (EmailChanged leaves it unconfirmed).
  return [
    {
      type: 'EmailChanged',
      data: {
        email: verification.pendingEmail,
        email_key: verification.pendingEmailKey,
        previous_email_key: account.emailKey,
      },
    },
    verified,
  ]
}

export function decideAccount(command: AccountCommand, state: Account): AccountEvent[] {
  switch (command.type) {
    case 'Register':
      return register(command, state)
    case 'RecordFailedLogin':
      return recordFailedLogin(command, state)
    case 'RecordSuccessfulLogin':
      return recordSuccessfulLogin(command, state)
    case 'Lock':
      existing(state)
      return [{ type: 'AccountLocked', data: { reason: 'admin', ...command.data } }, revokeAll('locked')]
    case 'Unlock': {
      const account = existing(state)
      return account.lock || account.failedLogins > 0 ? [{ type: 'AccountUnlocked', data: {} }] : []
    }
    case 'Deactivate':
      return existing(state).status === 'deactivated'
        ? []
        : [{ type: 'AccountDeactivated', data: {} }, revokeAll('deactivated')]
    case 'Activate':
      return existing(state).status === 'active' ? [] : [{ type: 'AccountActivated', data: {} }]
    case 'ChangeRole': {
      const account = existing(state)
      if (account.role === command.data.role) return []
      return [
        { type: 'RoleChanged', data: { role: command.data.role, previous_role: account.role } },
        revokeAll('role_changed'),
      ]
    }
    case 'ChangeEmail':
      return changeEmail(command, state)
    case 'ChangeFullName': {
      const { full_name } = command.data
      return existing(state).fullName === full_name ? [] : [{ type: 'FullNameChanged', data: { full_name } }]
    }
    case 'ChangePassword':
      return changePassword(command, state)
    case 'RehashPassword':
      if (existing(state).passwordHash !== command.data.previous_hash) return []
      return [
        { type: 'PasswordChanged', data: { password_hash: command.data.password_hash, reason: 'rehash' } },
      ]
    case 'StartTotpEnrollment':
      if (isTotpEnabled(existing(state))) {
        throw new DomainError('TWO_FACTOR_ALREADY_ENABLED', 'Two-factor authentication is already enabled')
      }
      return [{ type: 'TotpEnrollmentStarted', data: { secret: command.data.secret } }]
    case 'EnableTotp':
      pendingTotpSecret(existing(state))
      return [{ type: 'TotpEnabled', data: command.data }]
    case 'AcceptSecondFactor':
      return acceptSecondFactor(command, state)
    case 'DisableTotp':
      if (!isTotpEnabled(existing(state))) {
        throw new DomainError('TWO_FACTOR_NOT_ENABLED', 'Two-factor authentication is not enabled')
      }
      return [{ type: 'TotpDisabled', data: {} }]
    case 'RequestPasswordReset':
      existing(state)
      return [{ type: 'PasswordResetRequested', data: command.data }]
    case 'CompletePasswordReset':
      return completePasswordReset(command, state)
    case 'RequestEmailVerification':
      return requestEmailVerification(command, state)
    case 'RequestEmailChange':
      return requestEmailChange(command, state)
    case 'VerifyEmail':
      return verifyEmail(command, state)
    case 'Delete': {
      const account = existing(state)
      return [
        revokeAll('deleted'),
        { type: 'AccountDeleted', data: { username_key: account.usernameKey, email_key: account.emailKey } },
      ]
    }
    case 'RegisterPasskey':
    case 'RenamePasskey':
    case 'RemovePasskey':
    case 'UsePasskey':
    case 'RemovePassword':
      return decidePasskey(command, existing(state), { assertCanLogIn, failedLoginEvents })
    default: {
      const unknown: never = command
      throw new Error(`unknown command ${JSON.stringify(unknown)}`)
    }
  }
}

export const accountDecider = { decide: decideAccount, evolve: evolveAccount, initialState: initialAccount }
