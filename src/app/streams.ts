/**
 * Stream names, built and read only here. Uniqueness streams are keyed by an HMAC so no personal
 * data sits in a name.
 */
export const accountStream = (userId: number): string => `user-${userId}`
export const sessionStream = (sessionId: number): string => `session-${sessionId}`
export const claimStream = (kind: ClaimKind, key: string): string => `${kind}-${key}`
export const sequenceStream = (name: 'user' | 'session'): string => `sequence-${name}`

export type ClaimKind = 'username' | 'email'

const ACCOUNT_STREAM = /^user-([0-9]{1,16})$/
const SESSION_STREAM = /^session-([0-9]{1,16})$/
const CLAIM_STREAM = /^(username|email)-(.+)$/

/** The user id of an account stream (`user-<id>`), or null for any other stream. */
export function accountIdOf(streamId: string): number | null {
  const match = ACCOUNT_STREAM.exec(streamId)
  return match ? Number(match[1]) : null
}

/** The session id of a session stream (`session-<id>`), or null for any other stream. */
export function sessionIdOf(streamId: string): number | null {
  const match = SESSION_STREAM.exec(streamId)
  return match ? Number(match[1]) : null
}

/** The kind and key of a uniqueness claim stream, or null for any other stream. */
export function claimOf(streamId: string): { kind: ClaimKind; key: string } | null {
  const match = CLAIM_STREAM.exec(streamId)
  return match ? { kind: match[1] as ClaimKind, key: match[2] } : null
}

/** Whose data key encrypts an account's personal fields. */
export const dataKeyOwner = (userId: number): string => `user-${userId}`
