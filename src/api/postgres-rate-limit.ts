/**
 * The rate limiter (rate-limit.ts) in a table of the shared PostgreSQL database, so that every
 * instance on that database counts the same requests: one row per (client, route) holding its
 * one-minute fixed window, counted by one atomic upsert. Windows that ended more than a minute
 * ago are pruned on about 1 % of the hits.
 */
import { createIfMissing, type SqlPool } from '../eventstore/sql-pool.ts'
import { MAX_CLIENT_CHARS, WINDOW_MS } from './rate-limit.ts'

const PRUNE_SHARE = 0.01

export async function createPostgresRateLimiter(
  pool: SqlPool,
  limitPerMinute: number,
  now: () => number = Date.now,
  random: () => number = Math.random,
) {
  await createIfMissing(
    pool,
    `
      CREATE TABLE IF NOT EXISTS rate_limit_windows (
        client text NOT NULL,
        route text NOT NULL,
        window_start bigint NOT NULL,
        count integer NOT NULL,
        PRIMARY KEY (client, route)
      )`,
  )

  return {
    /** Seconds to wait, or 0 when the request may go ahead. */
    async hit(client: string, route: string): Promise<number> {
      if (limitPerMinute <= 0) return 0
      const t = now()
      if (random() < PRUNE_SHARE) {
        await pool.query('DELETE FROM rate_limit_windows WHERE window_start < $1', [t - 2 * WINDOW_MS])
      }
      // NUL cannot be stored in text; a client address never holds one anyway.
      const name = (client.length > MAX_CLIENT_CHARS ? client.slice(0, MAX_CLIENT_CHARS) : client).replaceAll(
        '\u0000',
        '',
      )
      const { rows } = await pool.query(
        `INSERT INTO rate_limit_windows AS w (client, route, window_start, count) VALUES ($1, $2, $3, 1)
         ON CONFLICT (client, route) DO UPDATE SET
           window_start = CASE WHEN $3 - w.window_start >= $4 THEN $3 ELSE w.window_start END,
           count = CASE WHEN $3 - w.window_start >= $4 THEN 1 ELSE w.count + 1 END
         RETURNING window_start, count`,
        [name, route, t, WINDOW_MS],
      )
      const start = Number(rows[0]?.window_start)
      const count = Number(rows[0]?.count)
      return count > limitPerMinute ? Math.max(1, Math.ceil((start + WINDOW_MS - t) / 1000)) : 0
    },
  }
}
