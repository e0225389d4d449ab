/**
 * The login throttle (login-throttle.ts) in a table of the shared PostgreSQL database, so that
 * every instance on that database counts the same failures: 50 parallel wrong passwords spread
 * over any number of instances give exactly 5 verdicts, then 423.
 *
 * Each step is one atomic statement on the row of its (client, username) key; the row lock that
 * PostgreSQL takes for `INSERT ... ON CONFLICT DO UPDATE` and `UPDATE` orders concurrent steps, so
 * the reservation check and the reservation itself cannot interleave with another instance's.
 *
 * Reservations are the times (ms) the attempts entered, not a counter: an instance that crashes
 * mid-attempt leaves its reservations behind, and those older than RESERVATION_TTL_MS are ignored
 * (and dropped by the next step on the row). A step that ends a reservation removes the newest
 * one, so a left-over reservation ages out as soon as possible.
 *
 * Keys and usernames are stored as SHA-256 digests: PostgreSQL text cannot hold the NUL that
 * separates a key's parts, and the table then holds no usernames to erase.
 *
 * Rows untouched for ROW_TTL_MS and not blocked are pruned now and then (the in-memory throttle
 * bounds its entries instead); the longest block is a day, so nothing current goes.
 */
import { createHash } from 'node:crypto'
import { automaticLockMinutes, MAX_CONSECUTIVE_FAILURES } from '../../domain/lockout.ts'
import { createIfMissing, type SqlPool } from '../eventstore/sql-pool.ts'
import { type ThrottleKey, withGuard } from './login-throttle.ts'

/** Longer than any attempt takes (a password hash, a few writes); older reservations are stale. */
export const RESERVATION_TTL_MS = 60_000
const ROW_TTL_MS = 2 * 24 * 60 * 60_000
const PRUNE_SHARE = 0.01

/** Block lengths in minutes by the number of earlier blocks, up to the cap (then the last one). */
function blockMinutesTable(): number[] {
  const table = [automaticLockMinutes(0)]
  for (let blocks = 1; blocks < 64; blocks++) {
    const minutes = automaticLockMinutes(blocks)
    if (minutes === table[table.length - 1]) break
    table.push(minutes)
  }
  return table
}

/** The reservations of row `t` that are still fresh at $now ($now is the statement's parameter). */
const fresh = (now: string) =>
  `ARRAY(SELECT r FROM unnest(t.reservations) r WHERE r > ${now} - ${RESERVATION_TTL_MS})`
/** The fresh reservations but the newest one. */
const lessNewest = (now: string) =>
  `ARRAY(SELECT r FROM unnest(t.reservations) r WHERE r > ${now} - ${RESERVATION_TTL_MS} ORDER BY r DESC OFFSET 1)`

export async function createPostgresLoginThrottle(
  pool: SqlPool,
  nowMs: () => number,
  random: () => number = Math.random,
) {
  await createIfMissing(
    pool,
    `CREATE TABLE IF NOT EXISTS login_throttle (
      key bytea PRIMARY KEY,
      username bytea NOT NULL,
      failures integer NOT NULL DEFAULT 0,
      blocks integer NOT NULL DEFAULT 0,
      blocked_until bigint NOT NULL DEFAULT 0,
      reservations bigint[] NOT NULL DEFAULT '{}',
      touched_at bigint NOT NULL
    )`,
  )
  await createIfMissing(
    pool,
    'CREATE INDEX IF NOT EXISTS login_throttle_username ON login_throttle (username)',
  )
  const blockMinutes = blockMinutesTable()
  const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest()
  const usernameOf = (key: ThrottleKey): Buffer => digest(key.slice(key.indexOf('\u0000') + 1))

  async function prune(t: number): Promise<void> {
    await pool.query('DELETE FROM login_throttle WHERE touched_at < $1 AND blocked_until < $2', [
      t - ROW_TTL_MS,
      t,
    ])
  }

  const throttle = withGuard({
    async enter(key: ThrottleKey): Promise<number> {
      const t = nowMs()
      if (random() < PRUNE_SHARE) await prune(t)
      // Reserve when not blocked and fewer than the limit are failed or in flight; else no row.
      const reserved = await pool.query(
        `INSERT INTO login_throttle AS t (key, username, reservations, touched_at)
         VALUES ($1, $2, ARRAY[$3::bigint], $3)
         ON CONFLICT (key) DO UPDATE SET
           reservations = ${fresh('$3')} || $3::bigint,
           touched_at = $3
         WHERE t.blocked_until <= $3
           AND t.failures + cardinality(${fresh('$3')}) < ${MAX_CONSECUTIVE_FAILURES}
         RETURNING 1`,
        [digest(key), usernameOf(key), t],
      )
      if (reserved.rows.length > 0) return 0
      const { rows } = await pool.query('SELECT blocks, blocked_until FROM login_throttle WHERE key = $1', [
        digest(key),
      ])
      const row = rows[0]
      // Gone in between (a success or an unlock cleared it): try again on a clean slate.
      if (!row) return throttle.enter(key)
      const blockedUntil = Number(row.blocked_until)
      if (blockedUntil > t) return Math.max(1, Math.ceil((blockedUntil - t) / 1000))
      return automaticLockMinutes(Number(row.blocks)) * 60
    },
    async failed(key: ThrottleKey): Promise<void> {
      const t = nowMs()
      // The reservation becomes a failure; the limit-th failure blocks for the next block length.
      await pool.query(
        `INSERT INTO login_throttle AS t (key, username, failures, touched_at)
         VALUES ($1, $2, 1, $3)
         ON CONFLICT (key) DO UPDATE SET
           reservations = ${lessNewest('$3')},
           failures = CASE WHEN t.failures + 1 >= $4 THEN 0 ELSE t.failures + 1 END,
           blocked_until = CASE WHEN t.failures + 1 >= $4
             THEN $3 + ($5::integer[])[LEAST(t.blocks, cardinality($5::integer[]) - 1) + 1] * 60000::bigint
             ELSE t.blocked_until END,
           blocks = CASE WHEN t.failures + 1 >= $4 THEN t.blocks + 1 ELSE t.blocks END,
           touched_at = $3`,
        [digest(key), usernameOf(key), t, MAX_CONSECUTIVE_FAILURES, blockMinutes],
      )
    },
    async succeeded(key: ThrottleKey): Promise<void> {
      await pool.query('DELETE FROM login_throttle WHERE key = $1', [digest(key)])
    },
    async forgetUsername(username: string): Promise<void> {
      await pool.query('DELETE FROM login_throttle WHERE username = $1', [digest(username.toLowerCase())])
    },
    async released(key: ThrottleKey): Promise<void> {
      const t = nowMs()
      await pool.query(
        `UPDATE login_throttle t SET reservations = ${lessNewest('$2::bigint')} WHERE key = $1`,
        [digest(key), t],
      )
    },
  })
  return throttle
}
