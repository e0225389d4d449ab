/** Stream names. Uniqueness streams are keyed by an HMAC so no personal data sits in a name. */
export const accountStream = (userId: number): string => `user-${userId}`
export const sessionStream = (sessionId: number): string => `session-${sessionId}`
export const claimStream = (kind: 'username' | 'email', key: string): string => `${kind}-${key}`
export const sequenceStream = (name: 'user' | 'session'): string => `sequence-${name}`

export function streamOwner(streamId: string): number | null {
  const match = /^user-(\d+)$/.exec(streamId)
  return match ? Number(match[1]) : null
}

export const dataKeyOwner = (userId: number): string => `user-${userId}`
