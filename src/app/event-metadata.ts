/** The envelope every appended event gets (the store adds `prev_hash` and `hash`). */
import { randomUUID } from 'node:crypto'
import type { NewEvent } from '../eventstore/event-store.ts'

export type Provenance = {
  actorId: number | null
  correlationId?: string | null
  causationId?: string | null
}

export function eventMetadata(
  occurredAt: Date | string,
  who: Provenance = { actorId: null },
): NewEvent['metadata'] {
  return {
    event_id: randomUUID(),
    schema_version: 1,
    occurred_at: typeof occurredAt === 'string' ? occurredAt : occurredAt.toISOString(),
    actor_id: who.actorId === null ? null : String(who.actorId),
    correlation_id: who.correlationId ?? null,
    causation_id: who.causationId ?? null,
  }
}
