/** What the stores kept beside the PostgreSQL event store (claims, throttle, limits) need of its `pg` pool. */
export type SqlPool = {
  query(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: Record<string, unknown>[]; rowCount?: number | null }>
}

/**
 * Runs a `CREATE ... IF NOT EXISTS`. Two instances starting at once on a new database: IF NOT
 * EXISTS does not stop PostgreSQL from failing the loser on its catalog's unique index, though
 * the table is there.
 */
export async function createIfMissing(pool: SqlPool, sql: string): Promise<void> {
  try {
    await pool.query(sql)
  } catch (error) {
    const code = (error as { code?: string }).code
    if (code !== '23505' && code !== '42P07') throw error
  }
}
