import type { AccountEvent } from './account.events.ts'
import type { Role } from './event.ts'
import { evolvePasskeys, NO_PASSKEYS, type Passkeys } from './passkeys.ts'

export type Lock = { reason: 'admin' | 'too_many_failures'; note: string | null; until: string | null }

export type Totp = {
  pendingSecret: string | null
  secret: string | null
  lastStep: number | null
  /** Hashes of unused recovery codes; a used one becomes null so indexes stay stable. */
  recoveryCodes: (string | null)[]
  /**
   * The last challenges completed: a challenge works once on every instance. (Challenges live 5
   * minutes; a few at a time is all a real user has.)
   */
  usedChallenges: string[]
}

export type ResetToken = { hash: string; expiresAt: string; used: boolean }

/**
 * The one outstanding email verification token: for the current address, or for `pendingEmail`,
 * a change that takes effect when confirmed. A newer request or an email change voids it.
 */
export type EmailVerification = {
  hash: string
  expiresAt: string
  pendingEmail: string | null
  pendingEmailKey: string | null
}

export type ExistingAccount = {
  status: 'active' | 'deactivated'
  id: number
  username: string
  email: string
  fullName: string | null
  role: Role
  usernameKey: string
  emailKey: string
  passwordHash: string
  failedLogins: number
  automaticLocks: number
  lock: Lock | null
  totp: Totp
  resetTokens: ResetToken[]
  /** WebAuthn credentials (domain/passkeys.ts). `passwordHash` is '' once the account is passwordless. */
  passkeys: Passkeys
  /** Whether the current address was confirmed with a mailed token since it was set. */
  emailVerified: boolean
  emailVerification: EmailVerification | null
  /** Revision of the last event folded; sessions remember the revision they started at. */
  revision: number
  /**
   * Revision of the last event that voids authentications in progress: a password or 2FA change,
   * a lock, a deactivation, a revocation of sessions. A login or 2FA challenge checked against an
   * older revision is refused, so nothing started before such a change survives it.
   */
  authRevision: number
  sessionRevocations: SessionRevocation[]
}

/** Sessions started before `revision` of the account stream are revoked, but for `except`. */
export type SessionRevocation = { revision: number; except: number | null }

export type Account = { status: 'none' } | ExistingAccount | { status: 'erased'; id: number }

export const initialAccount: Account = { status: 'none' }

const NO_TOTP: Totp = {
  pendingSecret: null,
  secret: null,
  lastStep: null,
  recoveryCodes: [],
  usedChallenges: [],
}
export const REMEMBERED_CHALLENGES = 16

function withChallenge(totp: Totp, challengeId: string | undefined): string[] {
  return challengeId
    ? [...totp.usedChallenges.slice(1 - REMEMBERED_CHALLENGES), challengeId]
    : totp.usedChallenges
}

export function isLockedAt(account: ExistingAccount, nowMs: number): boolean {
  if (!account.lock) return false
  return account.lock.until === null || Date.parse(account.lock.until) > nowMs
}

/** An admin's lock also stops the sessions already open; an automatic one only new logins. */
export function isLockedByAdminAt(account: ExistingAccount, nowMs: number): boolean {
  return account.lock?.reason === 'admin' && isLockedAt(account, nowMs)
}

/** Whether the account may administer others: an active admin that no admin has locked. */
export function holdsAdminPower(account: Account, nowMs: number): boolean {
  return account.status === 'active' && account.role === 'admin' && !isLockedByAdminAt(account, nowMs)
}

export function isTotpEnabled(account: ExistingAccount): boolean {
  return account.totp.secret !== null
}

/** History is a fact: an event that does not fit the state leaves it unchanged. */
export function evolveAccount(state: Account, event: AccountEvent): Account {
  if (event.type === 'AccountRegistered') {
    if (state.status !== 'none') return state
    const d = event.data
    return {
      status: 'active',
      id: d.user_id,
      username: d.username,
      email: d.email,
      fullName: d.full_name,
      role: d.role,
      usernameKey: d.username_key,
      emailKey: d.email_key,
      passwordHash: d.password_hash,
      failedLogins: 0,
      automaticLocks: 0,
      lock: null,
      totp: NO_TOTP,
      resetTokens: [],
      passkeys: NO_PASSKEYS,
      emailVerified: false,
      emailVerification: null,
      revision: 0,
      authRevision: 0,
      sessionRevocations: [],
    }
  }
  if (state.status === 'none' || state.status === 'erased') return state
  const next = applyToExisting(state, event)
  if (next.status === 'erased') return next
  const revision = state.revision + 1
  return { ...next, revision, authRevision: voidsAuthentications(event) ? revision : next.authRevision }
}

function voidsAuthentications(event: AccountEvent): boolean {
  switch (event.type) {
    case 'PasswordChanged':
      return event.data.reason !== 'rehash'
    case 'AccountLocked':
    case 'AccountDeactivated':
    case 'SessionsRevoked':
    case 'PasswordRemoved':
    case 'TotpEnabled':
    case 'TotpDisabled':
      return true
    default:
      return false
  }
}

/** True when the account changed in a way that voids an authentication checked at `revision`. */
export function authenticationVoidedSince(account: ExistingAccount, revision: number): boolean {
  return account.authRevision > revision
}

export function isSessionRevokedByAccount(
  account: ExistingAccount,
  sessionId: number,
  startedAtRevision: number,
): boolean {
  return account.sessionRevocations.some((r) => startedAtRevision < r.revision && r.except !== sessionId)
}

/** Whether a session may still be refreshed: an active account, no admin's lock, not revoked by it. */
export function maySessionContinue(
  account: ExistingAccount,
  sessionId: number,
  startedAtRevision: number,
  nowMs: number,
): boolean {
  return (
    account.status === 'active' &&
    !isLockedByAdminAt(account, nowMs) &&
    !isSessionRevokedByAccount(account, sessionId, startedAtRevision)
  )
}

function applyToExisting(
  state: ExistingAccount,
  event: AccountEvent,
): ExistingAccount | { status: 'erased'; id: number } {
  switch (event.type) {
    case 'AccountRegistered':
      return state
    case 'LoginFailed':
      return { ...state, failedLogins: state.failedLogins + 1 }
    case 'FailedLoginsCleared':
      return { ...state, failedLogins: 0, automaticLocks: 0 }
    case 'AccountLocked':
      return {
        ...state,
        lock: event.data,
        failedLogins: 0,
        automaticLocks: state.automaticLocks + (event.data.reason === 'too_many_failures' ? 1 : 0),
      }
    case 'AccountUnlocked':
      return { ...state, lock: null, failedLogins: 0 }
    case 'AccountDeactivated':
      return { ...state, status: 'deactivated' }
    case 'AccountActivated':
      return { ...state, status: 'active' }
    case 'RoleChanged':
      return { ...state, role: event.data.role }
    case 'EmailChanged':
      // The old mailbox must not keep a way in: outstanding reset tokens die with the address.
      // A new address is unconfirmed, and a token mailed for another address is void.
      return {
        ...state,
        email: event.data.email,
        emailKey: event.data.email_key,
        resetTokens: [],
        emailVerified: false,
        emailVerification: null,
      }
    case 'FullNameChanged':
      return { ...state, fullName: event.data.full_name }
    case 'PasswordChanged':
      // A new password (not a rehash of the same one) makes any outstanding reset token void.
      return {
        ...state,
        passwordHash: event.data.password_hash,
        resetTokens: event.data.reason === 'rehash' ? state.resetTokens : [],
      }
    case 'SessionsRevoked':
      return {
        ...state,
        sessionRevocations: [
          ...state.sessionRevocations,
          { revision: state.revision + 1, except: event.data.except_session_id },
        ],
      }
    case 'TotpEnrollmentStarted':
      return { ...state, totp: { ...state.totp, pendingSecret: event.data.secret } }
    case 'TotpEnabled':
      return {
        ...state,
        totp: {
          pendingSecret: null,
          secret: state.totp.pendingSecret,
          lastStep: event.data.step,
          recoveryCodes: event.data.recovery_code_hashes,
          usedChallenges: [],
        },
      }
    case 'TotpDisabled':
      return { ...state, totp: NO_TOTP }
    case 'TotpCodeAccepted':
      return {
        ...state,
        totp: {
          ...state.totp,
          lastStep: event.data.step,
          usedChallenges: withChallenge(state.totp, event.data.challenge_id),
        },
      }
    case 'RecoveryCodeUsed':
      return {
        ...state,
        totp: {
          ...state.totp,
          recoveryCodes: state.totp.recoveryCodes.map((c, i) => (i === event.data.index ? null : c)),
          usedChallenges: withChallenge(state.totp, event.data.challenge_id),
        },
      }
    case 'PasswordResetRequested':
      return {
        ...state,
        resetTokens: [
          ...state.resetTokens,
          { hash: event.data.token_hash, expiresAt: event.data.expires_at, used: false },
        ],
      }
    case 'PasswordResetCompleted':
      return {
        ...state,
        resetTokens: state.resetTokens.map((t) =>
          t.hash === event.data.token_hash ? { ...t, used: true } : t,
        ),
      }
    case 'EmailVerificationRequested':
      return {
        ...state,
        emailVerification: {
          hash: event.data.token_hash,
          expiresAt: event.data.expires_at,
          pendingEmail: event.data.email ?? null,
          pendingEmailKey: event.data.email_key ?? null,
        },
      }
    case 'EmailVerified':
      return { ...state, emailVerified: true, emailVerification: null }
    case 'PasskeyRegistered':
    case 'PasskeyRenamed':
    case 'PasskeyRemoved':
    case 'PasskeyUsed':
    case 'PasskeySignCountRegressed':
      return { ...state, passkeys: evolvePasskeys(state.passkeys, event) }
    case 'PasswordRemoved':
      // No password, so no way to set one by a reset token issued before.
      return { ...state, passwordHash: '', resetTokens: [] }
    case 'AccountDeleted':
      return { status: 'erased', id: state.id }
  }
}
