/** A projection applies one (decrypted) event to its read-model tables through a narrow writer. */
import type { RecordedEvent } from '../src/eventstore/event-store.ts'

export type SqlValue = string | number | bigint | null

export interface ReadModelWriter {
  run(sql: string, ...params: SqlValue[]): void
  get<T>(sql: string, ...params: SqlValue[]): T | undefined
}

export type Projection = {
  name: string
  /** CREATE statements; `rebuild` drops `tables` and runs these again. */
  schema: string
  tables: readonly string[]
  handles: ReadonlySet<string>
  apply(event: RecordedEvent, db: ReadModelWriter): void
  /**
   * For a replay from the first event: `suspend` turns off an index kept row by row, `resume`
   * builds it in one pass at the end (several times cheaper). Both must be safe to run again,
   * and the index must work if a crash skips `resume`.
   */
  bulkLoad?: { suspend: string; resume: string }
}

export const str = (value: unknown): string | null => (typeof value === 'string' ? value : null)
