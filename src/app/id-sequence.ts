/** Integer ids from a sequence stream: the id is the revision of its reservation event, plus one. */
import { randomUUID } from 'node:crypto'
import type { EventStore } from '../eventstore/event-store.ts'
import { sequenceStream } from './streams.ts'

export async function reserveId(store: EventStore, name: 'user' | 'session', now: Date): Promise<number> {
  const result = await store.append(
    sequenceStream(name),
    [
      {
        type: 'IdReserved',
        data: {},
        metadata: {
          event_id: randomUUID(),
          schema_version: 1,
          occurred_at: now.toISOString(),
          actor_id: null,
          correlation_id: null,
          causation_id: null,
        },
      },
    ],
    'any',
  )
  return result.next_expected_revision + 1
}
