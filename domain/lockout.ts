/** Lockout policy: 5 consecutive failures lock for 15 minutes; each later automatic lock doubles. */
export const MAX_CONSECUTIVE_FAILURES = 5
export const FIRST_LOCK_MINUTES = 15
const MAX_LOCK_MINUTES = 24 * 60

export function automaticLockMinutes(previousAutomaticLocks: number): number {
  return Math.min(FIRST_LOCK_MINUTES * 2 ** previousAutomaticLocks, MAX_LOCK_MINUTES)
}
