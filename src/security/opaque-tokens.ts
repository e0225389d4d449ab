/**
 * Opaque bearer secrets (refresh tokens, password-reset tokens) and their one format,
 * `<id>.<secret>`: the id says which stream holds the secret's hash (a session for a refresh
 * token, an account for a reset token). The secret is 256 random bits, handed out once and stored
 * only as a SHA-256 hash, so a leaked read model yields no usable token.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

export type OpaqueToken = { token: string; hash: string }

const TOKEN_BYTES = 32

/** 32 random bytes as base64url (43 characters) and the SHA-256 hex of that string. */
export function newOpaqueToken(): OpaqueToken {
  const token = randomBytes(TOKEN_BYTES).toString('base64url')
  return { token, hash: hashOpaqueToken(token) }
}

// A plain, unsalted SHA-256 is enough here: the input has 256 bits of entropy, so there is
// nothing to brute-force, and lookups by hash stay possible.
export function hashOpaqueToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}

/** A new `<id>.<secret>` token for the stream of `id`, and the hash of its secret to store. */
export function newIdToken(id: number): OpaqueToken {
  const secret = newOpaqueToken()
  return { token: `${id}.${secret.token}`, hash: secret.hash }
}

/** The id of an `<id>.<secret>` token and the hash of its secret; null for any other shape. */
export function readIdToken(token: string): { id: number; hash: string } | null {
  const parsed = parseIdToken(token)
  return parsed && { id: parsed.id, hash: hashOpaqueToken(parsed.secret) }
}

/** Only canonical ids (`^[1-9][0-9]*$`, a safe integer) and 43 base64url characters pass. */
export function parseIdToken(token: string): { id: number; secret: string } | null {
  const match = /^([1-9][0-9]{0,15})\.([A-Za-z0-9_-]{43})$/.exec(token)
  if (!match) return null
  const id = Number(match[1])
  return Number.isSafeInteger(id) ? { id, secret: match[2] } : null
}

/** Constant-time comparison of two hashes; false on length mismatch (a length is no secret). */
export function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8')
  const right = Buffer.from(b, 'utf8')
  return left.length === right.length && timingSafeEqual(left, right)
}
