/**
 * Opaque bearer secrets (refresh tokens, password-reset tokens): 256 random bits, handed out
 * once and stored only as a SHA-256 hash, so a leaked read model yields no usable token.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

export type OpaqueToken = { token: string; hash: string }

const TOKEN_BYTES = 32

/** 32 random bytes as base64url (43 characters) and the SHA-256 hex of that string. */
export function newOpaqueToken(): OpaqueToken {
  const token = randomBytes(TOKEN_BYTES).toString('base64url')
  return { token, hash: hashOpaqueToken(token) }
}

export function newRefreshToken(): OpaqueToken {
  return newOpaqueToken()
}

// A plain, unsalted SHA-256 is enough here: the input has 256 bits of entropy, so there is
// nothing to brute-force, and lookups by hash stay possible.
export function hashOpaqueToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}

export function hashRefreshToken(token: string): string {
  return hashOpaqueToken(token)
}

/** True when `token` has the shape we issue; lets callers refuse garbage before any lookup. */
export function isOpaqueTokenShape(token: unknown): token is string {
  return typeof token === 'string' && /^[A-Za-z0-9_-]{43}$/.test(token)
}

/** Constant-time comparison of two hashes; false on length mismatch (a length is no secret). */
export function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8')
  const right = Buffer.from(b, 'utf8')
  return left.length === right.length && timingSafeEqual(left, right)
}
