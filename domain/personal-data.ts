/**
 * Fields that identify a person. They are stored encrypted under the account's data key, so
 * destroying the key erases them while the events (and their hash chain) stay.
 */
export const PERSONAL_FIELDS: Readonly<Record<string, readonly string[]>> = {
  AccountRegistered: ['username', 'email', 'full_name', 'password_hash'],
  LoginFailed: ['ip_address', 'user_agent'],
  EmailChanged: ['email'],
  FullNameChanged: ['full_name'],
  PasswordChanged: ['password_hash'],
  TotpEnrollmentStarted: ['secret'],
  SessionStarted: ['ip_address', 'user_agent'],
}

export const ERASED = '[erased]'
