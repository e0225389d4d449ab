/** What the stores kept beside the PostgreSQL event store (claims, throttle, limits) need of its `pg` pool. */
export type SqlPool = {
  query(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: Record<string, unknown>[]; rowCount?: number | null }>
}

/**
 * Runs a `CREATE ... IF NOT EXISTS`. Two instances starting at once on a new database: IF NOT
 * EXISTS does not stop PostgreSQL from failing the loser, though the table is there by then. The
 * loser hears of it as a unique violation in the catalog (23505), a duplicate table (42P07) or,
 * for the row type every table gets, a duplicate object (42710: `type "…" already exists`).
 */
const LOST_CREATE_RACE = new Set(['23505', '42P07', '42710'])

export async function createIfMissing(pool: SqlPool, sql: string): Promise<void> {
  try {
    await pool.query(sql)
  } catch (error) {
    if (!LOST_CREATE_RACE.has((error as { code?: string }).code ?? '')) throw error
  }
}
