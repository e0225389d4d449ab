/**
 * Lockout policy, in two tiers (OWASP's authentication cheat sheet, NIST SP 800-63B §5.2.2):
 *
 * - per (client, username): 5 consecutive failures throttle that client for that username for
 *   15 minutes, doubling with each later throttle up to a day. Others, the owner on their own
 *   devices included, are not affected. Unknown usernames are throttled alike, so the answer
 *   tells nothing about whether an account exists.
 * - per account: 20 consecutive failures from any clients lock the account automatically
 *   (15 minutes, doubling up to a day). Such a lock stops new password logins only; sessions
 *   already open keep working, and an admin can lift it at any time.
 */
export const MAX_CONSECUTIVE_FAILURES = 5
export const ACCOUNT_LOCK_THRESHOLD = 20
export const FIRST_LOCK_MINUTES = 15
const MAX_LOCK_MINUTES = 24 * 60

export function automaticLockMinutes(previousAutomaticLocks: number): number {
  return Math.min(FIRST_LOCK_MINUTES * 2 ** previousAutomaticLocks, MAX_LOCK_MINUTES)
}
