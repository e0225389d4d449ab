import type { Event, Role, TextFieldDeclarations } from './event.ts'

export type AccountRegistered = Event<
  'AccountRegistered',
  {
    user_id: number
    username: string
    email: string
    full_name: string | null
    company_name: string | null
    role: Role
    password_hash: string
    username_key: string
    email_key: string
  }
>
export type LoginFailed = Event<
  'LoginFailed',
  { reason: 'password' | 'second_factor' | 'passkey'; ip_address: string | null; user_agent: string | null }
>
export type FailedLoginsCleared = Event<'FailedLoginsCleared', Record<string, never>>
export type AccountLocked = Event<
  'AccountLocked',
  { reason: 'admin' | 'too_many_failures'; note: string | null; until: string | null }
>
export type AccountUnlocked = Event<'AccountUnlocked', Record<string, never>>
export type AccountDeactivated = Event<'AccountDeactivated', Record<string, never>>
export type AccountActivated = Event<'AccountActivated', Record<string, never>>
export type RoleChanged = Event<'RoleChanged', { role: Role; previous_role: Role }>
export type EmailChanged = Event<
  'EmailChanged',
  { email: string; email_key: string; previous_email_key: string }
>
export type FullNameChanged = Event<'FullNameChanged', { full_name: string | null }>
export type PasswordChanged = Event<
  'PasswordChanged',
  { password_hash: string; reason: 'user' | 'reset' | 'rehash' }
>
export type SessionsRevoked = Event<
  'SessionsRevoked',
  {
    reason: 'password_changed' | 'password_reset' | 'locked' | 'deactivated' | 'role_changed' | 'deleted'
    except_session_id: number | null
  }
>
export type TotpEnrollmentStarted = Event<'TotpEnrollmentStarted', { secret: string }>
export type TotpEnabled = Event<'TotpEnabled', { recovery_code_hashes: string[]; step: number }>
export type TotpDisabled = Event<'TotpDisabled', Record<string, never>>
/** `challenge_id`: the 2FA challenge it completed (absent before challenges were recorded). */
export type TotpCodeAccepted = Event<'TotpCodeAccepted', { step: number; challenge_id?: string }>
export type RecoveryCodeUsed = Event<'RecoveryCodeUsed', { index: number; challenge_id?: string }>
export type PasswordResetRequested = Event<
  'PasswordResetRequested',
  { token_hash: string; expires_at: string }
>
export type PasswordResetCompleted = Event<'PasswordResetCompleted', { token_hash: string }>
export type AccountDeleted = Event<'AccountDeleted', { username_key: string; email_key: string }>
/**
 * A single-use token that confirms an email address, stored as a hash; it voids any earlier one.
 * Without `email` it confirms the account's current address; with `email` and its `email_key`, a
 * change to that address which takes effect only when confirmed (REQUIRE_VERIFIED_EMAIL=1).
 */
export type EmailVerificationRequested = Event<
  'EmailVerificationRequested',
  { token_hash: string; expires_at: string; email?: string; email_key?: string }
>
/** The account's current address is confirmed (for a pending change, after its EmailChanged). */
export type EmailVerified = Event<'EmailVerified', { token_hash: string }>
/**
 * A WebAuthn credential added to the account (domain/passkeys.ts). The credential id, its public
 * key and the user handle identify the person's authenticator: personal, so erasure destroys them.
 * `challenge_id` is the registration challenge it consumed.
 */
export type PasskeyRegistered = Event<
  'PasskeyRegistered',
  {
    passkey_id: number
    name: string
    credential_id: string
    public_key: string
    user_handle: string
    sign_count: number
    transports: string[]
    aaguid: string
    device_type: 'singleDevice' | 'multiDevice'
    backed_up: boolean
    user_verified: boolean
    attestation_format: string
    challenge_id: string
    challenge_expires_at: string
  }
>
export type PasskeyRenamed = Event<'PasskeyRenamed', { passkey_id: number; name: string }>
export type PasskeyRemoved = Event<'PasskeyRemoved', { passkey_id: number }>
/** A login with the passkey: its new sign counter, and the challenge it consumed. */
export type PasskeyUsed = Event<
  'PasskeyUsed',
  {
    passkey_id: number
    sign_count: number
    user_verified: boolean
    backed_up: boolean
    challenge_id: string
    challenge_expires_at: string
  }
>
/** A validly signed assertion whose sign counter did not move forward (a cloned authenticator?): refused. */
export type PasskeySignCountRegressed = Event<
  'PasskeySignCountRegressed',
  {
    passkey_id: number
    stored_sign_count: number
    presented_sign_count: number
    ip_address: string | null
    user_agent: string | null
  }
>
/** The account became passwordless: it logs in with its passkeys only. */
export type PasswordRemoved = Event<'PasswordRemoved', Record<string, never>>

export type AccountEvent =
  | AccountRegistered
  | LoginFailed
  | FailedLoginsCleared
  | AccountLocked
  | AccountUnlocked
  | AccountDeactivated
  | AccountActivated
  | RoleChanged
  | EmailChanged
  | FullNameChanged
  | PasswordChanged
  | SessionsRevoked
  | TotpEnrollmentStarted
  | TotpEnabled
  | TotpDisabled
  | TotpCodeAccepted
  | RecoveryCodeUsed
  | PasswordResetRequested
  | PasswordResetCompleted
  | AccountDeleted
  | PasskeyRegistered
  | PasskeyRenamed
  | PasskeyRemoved
  | PasskeyUsed
  | PasskeySignCountRegressed
  | PasswordRemoved
  | EmailVerificationRequested
  | EmailVerified

/**
 * Every text field of every account event, personal or not. The HMAC keys of the username and
 * email are personal too: with the uniqueness secret, a key lets anyone test a guess of the value.
 */
export const ACCOUNT_EVENT_FIELDS = {
  AccountRegistered: {
    username: 'personal',
    email: 'personal',
    full_name: 'personal',
    company_name: 'safe',
    role: 'safe',
    password_hash: 'personal',
    username_key: 'personal',
    email_key: 'personal',
  },
  LoginFailed: { reason: 'safe', ip_address: 'personal', user_agent: 'personal' },
  FailedLoginsCleared: {},
  AccountLocked: { reason: 'safe', note: 'safe', until: 'safe' },
  AccountUnlocked: {},
  AccountDeactivated: {},
  AccountActivated: {},
  RoleChanged: { role: 'safe', previous_role: 'safe' },
  EmailChanged: { email: 'personal', email_key: 'personal', previous_email_key: 'personal' },
  FullNameChanged: { full_name: 'personal' },
  PasswordChanged: { password_hash: 'personal', reason: 'safe' },
  SessionsRevoked: { reason: 'safe' },
  TotpEnrollmentStarted: { secret: 'personal' },
  TotpEnabled: { recovery_code_hashes: 'safe' },
  TotpDisabled: {},
  TotpCodeAccepted: { challenge_id: 'safe' },
  RecoveryCodeUsed: { challenge_id: 'safe' },
  PasswordResetRequested: { token_hash: 'safe', expires_at: 'safe' },
  PasswordResetCompleted: { token_hash: 'safe' },
  AccountDeleted: { username_key: 'personal', email_key: 'personal' },
  PasskeyRegistered: {
    name: 'personal',
    credential_id: 'personal',
    public_key: 'personal',
    user_handle: 'personal',
    transports: 'safe',
    aaguid: 'safe',
    device_type: 'safe',
    attestation_format: 'safe',
    challenge_id: 'safe',
    challenge_expires_at: 'safe',
  },
  PasskeyRenamed: { name: 'personal' },
  PasskeyRemoved: {},
  PasskeyUsed: { challenge_id: 'safe', challenge_expires_at: 'safe' },
  PasskeySignCountRegressed: { ip_address: 'personal', user_agent: 'personal' },
  PasswordRemoved: {},
  EmailVerificationRequested: {
    token_hash: 'safe',
    expires_at: 'safe',
    email: 'personal',
    email_key: 'personal',
  },
  EmailVerified: { token_hash: 'safe' },
} as const satisfies TextFieldDeclarations<AccountEvent>
