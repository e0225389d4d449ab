/** Integer ids from a sequence stream: the id is the revision of its reservation event, plus one. */
import type { EventStore } from '../eventstore/event-store.ts'
import { eventMetadata } from './event-metadata.ts'
import { sequenceStream } from './streams.ts'

export async function reserveId(store: EventStore, name: 'user' | 'session', now: Date): Promise<number> {
  const result = await store.append(
    sequenceStream(name),
    [
      {
        type: 'IdReserved',
        data: {},
        metadata: eventMetadata(now),
      },
    ],
    'any',
  )
  return result.next_expected_revision + 1
}
