/**
 * A lock shared by every instance of one store, held through the `admin-roster` stream: taking
 * it is an append with the expected revision, so of two instances only one can take it, and
 * giving it back is another append. What the holder changes in between (an admin's power, the
 * first admin) is therefore decided one at a time across the whole service, and it is history:
 * who took power from whom, and when. A holder that crashed loses the lock when its lease ends.
 */
import { DomainError } from '../../domain/errors.ts'
import { type EventStore, type NewEvent, WrongExpectedRevisionError } from '../eventstore/event-store.ts'
import { eventMetadata } from './event-metadata.ts'

export const ROSTER_STREAM = 'admin-roster'
const LEASE_MS = 5_000
/** Longer than a lease: a change waiting behind a holder that crashed gets the lock, not a 409. */
const WAIT_MS = 8_000
const RETRY_MS = 15

export type RosterChange = { action: string; admin_id: number | null; user_id: number | null }

export function createRosterLock(store: EventStore, now: () => Date, stream = ROSTER_STREAM) {
  const event = (type: string, data: Record<string, unknown>): NewEvent => ({
    type,
    data,
    metadata: eventMetadata(now(), { actorId: typeof data.admin_id === 'number' ? data.admin_id : null }),
  })

  async function acquire(change: RosterChange): Promise<number> {
    const deadline = Date.now() + WAIT_MS
    for (;;) {
      const last = (await store.readStream(stream)).at(-1)
      const held =
        last?.type === 'RosterLockTaken' && Date.parse(last.data.lease_until as string) > now().getTime()
      if (!held) {
        const lease_until = new Date(now().getTime() + LEASE_MS).toISOString()
        try {
          const result = await store.append(
            stream,
            [event('RosterLockTaken', { ...change, lease_until })],
            last ? last.revision : 'no_stream',
          )
          return result.next_expected_revision
        } catch (error) {
          if (!(error instanceof WrongExpectedRevisionError)) throw error
        }
      }
      if (Date.now() > deadline)
        throw new DomainError('CONCURRENT_CHANGE', 'Another admin change is in progress; retry')
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS))
    }
  }

  return {
    /** Runs `run` while holding the lock; the lock is given back whatever `run` does. */
    async hold<T>(change: RosterChange, run: () => Promise<T>): Promise<T> {
      const revision = await acquire(change)
      try {
        return await run()
      } finally {
        // Expected revision: a holder whose lease ran out and was taken over gives back nothing.
        await store.append(stream, [event('RosterLockReleased', {})], revision).catch(() => {})
      }
    },
  }
}

export type RosterLock = ReturnType<typeof createRosterLock>
