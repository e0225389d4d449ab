/**
 * Fields that identify a person. They are stored encrypted under the account's data key, so
 * destroying the key erases them while the events (and their hash chain) stay.
 */
export const PERSONAL_FIELDS: Readonly<Record<string, readonly string[]>> = {
  // The HMAC keys of the username and email are personal too: with the uniqueness secret, a key
  // lets anyone test a guess of the value. Encrypted, they go with the account's data key.
  AccountRegistered: ['username', 'email', 'full_name', 'password_hash', 'username_key', 'email_key'],
  LoginFailed: ['ip_address', 'user_agent'],
  EmailChanged: ['email', 'email_key', 'previous_email_key'],
  AccountDeleted: ['username_key', 'email_key'],
  FullNameChanged: ['full_name'],
  PasswordChanged: ['password_hash'],
  TotpEnrollmentStarted: ['secret'],
  SessionStarted: ['ip_address', 'user_agent'],
}

export const ERASED = '[erased]'
