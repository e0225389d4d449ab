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

/**
 * Refresh tokens are `<session id>.<secret>`, reset tokens `<user id>.<secret>`: the id says which
 * stream holds the secret's hash. Only canonical ids (`^[1-9][0-9]*$`, a safe integer) pass.
 */
export function parseIdToken(token: string): { id: number; secret: string } | null {
  const match = /^([1-9][0-9]{0,15})\.([A-Za-z0-9_-]{43})$/.exec(token)
  if (!match) return null
  const id = Number(match[1])
  return Number.isSafeInteger(id) ? { id, secret: match[2] } : null
}

export function formatIdToken(id: number, secret: string): string {
  return `${id}.${secret}`
}

/** Constant-time comparison of two hashes; false on length mismatch (a length is no secret). */
export function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8')
  const right = Buffer.from(b, 'utf8')
  return left.length === right.length && timingSafeEqual(left, right)
}
