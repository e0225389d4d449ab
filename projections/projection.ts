/** A projection applies one (decrypted) event to its read-model tables through a narrow writer. */
import type { AccountEvent } from '../domain/account.events.ts'
import type { DomainEvent } from '../domain/events.ts'
import type { SessionEvent } from '../domain/session.events.ts'
import { accountIdOf, sessionIdOf } from '../src/app/streams.ts'
import type { Recorded, RecordedEvent } from '../src/eventstore/event-store.ts'

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
  /**
   * Columns added to a table of `schema` after read-model files were written with it: opening an
   * older file adds the missing ones (`ALTER TABLE … ADD COLUMN`), so it needs no rebuild. Only for
   * a column whose default is what replaying the older events would give it (the events that set
   * it are newer than any file without it). The CREATE statement in `schema` has them too.
   */
  addedColumns?: readonly AddedColumn[]
}

export type AddedColumn = { table: string; column: string; definition: string }

type Handler<E extends DomainEvent> = (event: Recorded<E>, db: ReadModelWriter) => void
export type Handlers = { [T in DomainEvent['type']]?: Handler<Extract<DomainEvent, { type: T }>> }

/** A projection from one handler per event type: the types it handles are the handlers' names. */
export function projectionOf(
  definition: Omit<Projection, 'handles' | 'apply'> & { on: Handlers },
): Projection {
  const { on, ...rest } = definition
  const handlers = on as Record<string, Handler<DomainEvent>>
  return {
    ...rest,
    handles: new Set(Object.keys(on)),
    // Projections see decoded events only: the codec refused every type it does not know.
    apply: (event, db) => handlers[event.type](event as Recorded<DomainEvent>, db),
  }
}

/** The account an account event belongs to, from its stream's name. */
export function accountOf(event: Recorded<AccountEvent>): number {
  const id = accountIdOf(event.stream_id)
  if (id === null) throw new Error(`${event.type} in ${event.stream_id}, which is no account stream`)
  return id
}

/** The session a session event belongs to, from its stream's name. */
export function sessionOf(event: Recorded<SessionEvent>): number {
  const id = sessionIdOf(event.stream_id)
  if (id === null) throw new Error(`${event.type} in ${event.stream_id}, which is no session stream`)
  return id
}
