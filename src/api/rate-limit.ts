/** Per-client, per-route fixed windows of one minute, in memory (flow state, not events). */
export function createRateLimiter(limitPerMinute: number, now: () => number = Date.now) {
  const windows = new Map<string, { start: number; count: number }>()
  let lastSweep = now()

  return {
    /** Seconds to wait, or 0 when the request may go ahead. */
    hit(client: string, route: string): number {
      if (limitPerMinute <= 0) return 0
      const t = now()
      if (t - lastSweep > 60_000) {
        for (const [key, w] of windows) if (t - w.start >= 60_000) windows.delete(key)
        lastSweep = t
      }
      const key = `${client} ${route}`
      let w = windows.get(key)
      if (!w || t - w.start >= 60_000) {
        w = { start: t, count: 0 }
        windows.set(key, w)
      }
      w.count++
      return w.count > limitPerMinute ? Math.max(1, Math.ceil((w.start + 60_000 - t) / 1000)) : 0
    },
  }
}

export type RateLimiter = ReturnType<typeof createRateLimiter>
