/** Domain errors carry a stable code; the API layer maps codes to HTTP and tRPC in one table. */
export type DomainErrorCode =
  | 'ACCOUNT_NOT_FOUND'
  | 'ACCOUNT_LOCKED'
  | 'ACCOUNT_DEACTIVATED'
  | 'INVALID_CREDENTIALS'
  | 'USERNAME_TAKEN'
  | 'EMAIL_TAKEN'
  | 'WRONG_ROLE'
  | 'WEAK_PASSWORD'
  | 'SESSION_NOT_FOUND'
  | 'SESSION_REVOKED'
  | 'REFRESH_TOKEN_INVALID'
  | 'REFRESH_TOKEN_REUSED'
  | 'TWO_FACTOR_ALREADY_ENABLED'
  | 'TWO_FACTOR_NOT_ENABLED'
  | 'TWO_FACTOR_NOT_STARTED'
  | 'TWO_FACTOR_CODE_INVALID'
  | 'TWO_FACTOR_REQUIRED'
  | 'RESET_TOKEN_INVALID'
  | 'EMAIL_VERIFICATION_INVALID'
  | 'EMAIL_NOT_VERIFIED'
  | 'EMAIL_VERIFICATION_THROTTLED'
  | 'PASSKEY_NOT_FOUND'
  | 'PASSKEY_INVALID'
  | 'PASSKEY_CONFLICT'
  | 'ALREADY_IN_STATE'
  | 'CONCURRENT_CHANGE'
  | 'FORBIDDEN'

export class DomainError extends Error {
  readonly code: DomainErrorCode
  /** Seconds until a lock ends, for `Retry-After`. */
  readonly retryAfterSeconds: number | undefined

  constructor(code: DomainErrorCode, message: string, options: { retryAfterSeconds?: number } = {}) {
    super(message)
    this.name = 'DomainError'
    this.code = code
    this.retryAfterSeconds = options.retryAfterSeconds
  }
}

export function isDomainError(error: unknown, code?: DomainErrorCode): error is DomainError {
  return error instanceof DomainError && (code === undefined || error.code === code)
}
