/**
 * The first tier of the lockout (domain/lockout.ts): consecutive failures per (client, username),
 * in memory. An attempt reserves its place before the password is hashed, so parallel guesses
 * cannot all slip past the limit while the first ones are still being verified. Unknown
 * usernames are throttled exactly like known ones.
 */
import { LRUCache } from 'lru-cache'
import { DomainError, isDomainError } from '../../domain/errors.ts'
import { automaticLockMinutes, MAX_CONSECUTIVE_FAILURES } from '../../domain/lockout.ts'

type Entry = { failures: number; inFlight: number; blockedUntil: number; blocks: number }

/** Entries kept at most; the least recently used go first (a client choosing its address controls the count). */
const MAX_ENTRIES = 100_000

export type ThrottleKey = string

export function throttleKey(clientAddress: string | null, username: string): ThrottleKey {
  return `${clientAddress ?? '-'}\u0000${username.toLowerCase()}`
}

export function createLoginThrottle(nowMs: () => number, maxEntries = MAX_ENTRIES) {
  // At maxEntries the least recently used entry goes.
  const entries = new LRUCache<ThrottleKey, Entry>({ max: Math.max(1, maxEntries) })

  function entry(key: ThrottleKey): Entry {
    let e = entries.get(key)
    if (!e) {
      e = { failures: 0, inFlight: 0, blockedUntil: 0, blocks: 0 }
      entries.set(key, e)
    }
    return e
  }

  const blockSeconds = (e: Entry): number => automaticLockMinutes(e.blocks) * 60

  return withGuard({
    /**
     * Reserves an attempt: 0 when it may go ahead, else the seconds to wait. Every reservation
     * must end in exactly one of `failed`, `succeeded` or `released`.
     */
    async enter(key: ThrottleKey): Promise<number> {
      const t = nowMs()
      const e = entry(key)
      if (e.blockedUntil > t) return Math.max(1, Math.ceil((e.blockedUntil - t) / 1000))
      if (e.failures + e.inFlight >= MAX_CONSECUTIVE_FAILURES) return blockSeconds(e)
      e.inFlight++
      return 0
    },
    async failed(key: ThrottleKey): Promise<void> {
      const t = nowMs()
      const e = entry(key)
      e.inFlight = Math.max(0, e.inFlight - 1)
      e.failures++
      if (e.failures >= MAX_CONSECUTIVE_FAILURES) {
        e.blockedUntil = t + blockSeconds(e) * 1000
        e.blocks++
        e.failures = 0
      }
    },
    async succeeded(key: ThrottleKey): Promise<void> {
      entries.delete(key)
    },
    /** Lifts the throttle of every client for one username (an admin unlocked the account). */
    async forgetUsername(username: string): Promise<void> {
      const suffix = `\u0000${username.toLowerCase()}`
      for (const key of [...entries.keys()]) if (key.endsWith(suffix)) entries.delete(key)
    },
    /** The attempt ended without a verdict on the secret (an error, a lock, a deactivated account). */
    async released(key: ThrottleKey): Promise<void> {
      const e = entries.peek(key)
      if (e) e.inFlight = Math.max(0, e.inFlight - 1)
    },
    get size(): number {
      return entries.size
    },
  })
}

/**
 * The steps of the throttle, asynchronous so that the counters can live in memory (above) or in
 * the shared PostgreSQL database (postgres-login-throttle.ts), where instances share them.
 */
export type ThrottleSteps = {
  /**
   * Reserves an attempt: 0 when it may go ahead, else the seconds to wait. Every reservation
   * must end in exactly one of `failed`, `succeeded` or `released`.
   */
  enter(key: ThrottleKey): Promise<number>
  /** A wrong secret: the reservation becomes a failure; the fifth in a row blocks. */
  failed(key: ThrottleKey): Promise<void>
  succeeded(key: ThrottleKey): Promise<void>
  /** Lifts the throttle of every client for one username (an admin unlocked the account). */
  forgetUsername(username: string): Promise<void>
  /** The attempt ended without a verdict on the secret (an error, a lock, a deactivated account). */
  released(key: ThrottleKey): Promise<void>
}

export type LoginThrottle = ThrottleSteps & {
  guard<T>(key: ThrottleKey, attempt: () => Promise<T>, completes: (result: T) => boolean): Promise<T>
}

/**
 * Adds `guard` to the steps: runs one attempt under the throttle: 423 with the seconds left while
 * throttled; a wrong secret (INVALID_CREDENTIALS) counts against it; a result that `completes` the
 * login clears it. A password that only leads to a 2FA challenge completes nothing, or each login
 * would buy more guesses of the code.
 */
export function withGuard<S extends ThrottleSteps>(steps: S): S & LoginThrottle {
  const throttle = steps as S & LoginThrottle
  throttle.guard = async <T>(
    key: ThrottleKey,
    attempt: () => Promise<T>,
    completes: (result: T) => boolean,
  ): Promise<T> => {
    const wait = await steps.enter(key)
    if (wait > 0) {
      throw new DomainError('ACCOUNT_LOCKED', 'Too many failed attempts; try again later', {
        retryAfterSeconds: wait,
      })
    }
    try {
      const result = await attempt()
      if (completes(result)) await steps.succeeded(key)
      else await steps.released(key)
      return result
    } catch (error) {
      if (isDomainError(error, 'INVALID_CREDENTIALS')) await steps.failed(key)
      else await steps.released(key)
      throw error
    }
  }
  return throttle
}
