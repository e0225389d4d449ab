/** The one table from domain error codes to transport: tRPC code, HTTP status. */
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server'
import type { DomainErrorCode } from '../../domain/errors.ts'

export const transport: Record<DomainErrorCode, { trpc: TRPC_ERROR_CODE_KEY; http: number }> = {
  ACCOUNT_NOT_FOUND: { trpc: 'NOT_FOUND', http: 404 },
  ACCOUNT_LOCKED: { trpc: 'FORBIDDEN', http: 423 },
  ACCOUNT_DEACTIVATED: { trpc: 'FORBIDDEN', http: 403 },
  INVALID_CREDENTIALS: { trpc: 'UNAUTHORIZED', http: 401 },
  USERNAME_TAKEN: { trpc: 'CONFLICT', http: 409 },
  EMAIL_TAKEN: { trpc: 'CONFLICT', http: 409 },
  WRONG_ROLE: { trpc: 'FORBIDDEN', http: 403 },
  WEAK_PASSWORD: { trpc: 'BAD_REQUEST', http: 422 },
  SESSION_NOT_FOUND: { trpc: 'NOT_FOUND', http: 404 },
  SESSION_REVOKED: { trpc: 'UNAUTHORIZED', http: 401 },
  REFRESH_TOKEN_INVALID: { trpc: 'UNAUTHORIZED', http: 401 },
  REFRESH_TOKEN_REUSED: { trpc: 'UNAUTHORIZED', http: 401 },
  TWO_FACTOR_ALREADY_ENABLED: { trpc: 'BAD_REQUEST', http: 400 },
  TWO_FACTOR_NOT_ENABLED: { trpc: 'BAD_REQUEST', http: 400 },
  TWO_FACTOR_NOT_STARTED: { trpc: 'BAD_REQUEST', http: 400 },
  TWO_FACTOR_CODE_INVALID: { trpc: 'BAD_REQUEST', http: 400 },
  TWO_FACTOR_REQUIRED: { trpc: 'FORBIDDEN', http: 403 },
  RESET_TOKEN_INVALID: { trpc: 'BAD_REQUEST', http: 400 },
  EMAIL_VERIFICATION_INVALID: { trpc: 'BAD_REQUEST', http: 400 },
  EMAIL_NOT_VERIFIED: { trpc: 'FORBIDDEN', http: 403 },
  EMAIL_VERIFICATION_THROTTLED: { trpc: 'TOO_MANY_REQUESTS', http: 429 },
  PASSKEY_NOT_FOUND: { trpc: 'NOT_FOUND', http: 404 },
  PASSKEY_INVALID: { trpc: 'BAD_REQUEST', http: 400 },
  PASSKEY_CONFLICT: { trpc: 'CONFLICT', http: 409 },
  ALREADY_IN_STATE: { trpc: 'BAD_REQUEST', http: 400 },
  CONCURRENT_CHANGE: { trpc: 'CONFLICT', http: 409 },
  FORBIDDEN: { trpc: 'FORBIDDEN', http: 403 },
}

/** HTTP statuses for tRPC codes that do not come from a domain error. */
export const httpStatusOf: Partial<Record<TRPC_ERROR_CODE_KEY, number>> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE_CONTENT: 422,
  TOO_MANY_REQUESTS: 429,
  SERVICE_UNAVAILABLE: 503,
}

/** Carried as a TRPCError cause so both transports can set `Retry-After`. */
export class RateLimited extends Error {
  readonly retryAfterSeconds: number
  constructor(retryAfterSeconds: number) {
    super('Too many requests, slow down')
    this.name = 'RateLimited'
    this.retryAfterSeconds = retryAfterSeconds
  }
}
