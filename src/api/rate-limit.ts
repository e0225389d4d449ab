/**
 * Per-client, per-route fixed windows of one minute, in memory (flow state, not events).
 *
 * Memory is bounded whatever the clients send (with TRUST_PROXY=1 a client names its own address
 * in X-Forwarded-For, so it can make up any number of them): at most `maxEntries` windows, each
 * keyed by at most MAX_CLIENT_CHARS of the client address. The map is kept in the order the
 * windows started, so the one to evict when a new client arrives at the cap is the oldest — except
 * that a window still refusing its client is moved to the back (up to MAX_SKIPS of them per
 * eviction), so a flood of fresh clients does not hand a limited client a fresh allowance.
 *
 * The trade-off of a fixed cap: a limited client keeps its window through any number of others
 * coming and going, unless the flood itself consists of more than `maxEntries` windows that are
 * over their limit within the same minute; then the oldest of those are forgotten and may start
 * again. A client able to produce that many addresses can already escape a per-address limit by
 * rotating addresses, so the cap takes nothing from the limit that a real address gets.
 */
import { LRUCache } from 'lru-cache'

export const DEFAULT_MAX_ENTRIES = 100_000
export const WINDOW_MS = 60_000
/** Longer than any IPv6 address with a zone; longer made-up "addresses" share a window. */
export const MAX_CLIENT_CHARS = 100
/** How many refusing windows one eviction moves to the back before it evicts whatever is first. */
const MAX_SKIPS = 8

type Window = { start: number; count: number }

export function createRateLimiter(
  limitPerMinute: number,
  now: () => number = Date.now,
  maxEntries: number = DEFAULT_MAX_ENTRIES,
) {
  // Kept in order by lru-cache: `set` puts a window at the back, `peek` reads it where it is, and
  // evictOne makes room before lru-cache would evict on its own. (A Map with its first key deleted
  // over and over took 50–80 µs per new client at the cap: each `keys().next()` skips the holes
  // that earlier deletions left at the front until the table is rehashed.)
  const windows = new LRUCache<string, Window>({ max: Math.max(1, maxEntries) })
  let lastSweep = now()

  /** Makes room for one window: drops the oldest, sparing up to MAX_SKIPS that still refuse. */
  function evictOne(t: number): void {
    for (let skipped = 0; ; skipped++) {
      const key = windows.rkeys().next().value
      if (key === undefined) return
      const w = windows.peek(key)!
      windows.delete(key)
      const refusing = w.count > limitPerMinute && t - w.start < WINDOW_MS
      if (!refusing || skipped >= MAX_SKIPS) return
      windows.set(key, w)
    }
  }

  return {
    /** Seconds to wait, or 0 when the request may go ahead. */
    hit(client: string, route: string): number {
      if (limitPerMinute <= 0) return 0
      const t = now()
      if (t - lastSweep > WINDOW_MS) {
        const expired: string[] = []
        for (const key of windows.rkeys()) if (t - windows.peek(key)!.start >= WINDOW_MS) expired.push(key)
        for (const key of expired) windows.delete(key)
        lastSweep = t
      }
      const key = `${client.length > MAX_CLIENT_CHARS ? client.slice(0, MAX_CLIENT_CHARS) : client} ${route}`
      let w = windows.peek(key)
      if (!w || t - w.start >= WINDOW_MS) {
        // A new window goes to the back, so the windows stay in the order they started.
        if (!w && windows.size >= maxEntries) evictOne(t)
        w = { start: t, count: 0 }
        windows.set(key, w)
      }
      w.count++
      return w.count > limitPerMinute ? Math.max(1, Math.ceil((w.start + WINDOW_MS - t) / 1000)) : 0
    },

    /** How many windows are held (for tests and the memory bound). */
    get size(): number {
      return windows.size
    },
  }
}

/** Either limiter: in memory (above) or in the shared PostgreSQL database (postgres-rate-limit.ts). */
export type RateLimiter = {
  /** Seconds to wait, or 0 when the request may go ahead. */
  hit(client: string, route: string): number | Promise<number>
}
