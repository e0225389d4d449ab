/**
 * Keeps the read models up to date: catches up from the checkpoint in large transactions,
 * then follows the live subscription. Callers can wait until a given position is applied.
 */

import type { DecodedEvent, EventCodec } from '../app/event-codec.ts'
import type { EventStore, RecordedEvent, Subscription } from '../eventstore/event-store.ts'
import type { ReadStore } from './read-store.ts'

const CATCH_UP_BATCH = 2000

export type ProjectionRunner = ReturnType<typeof createProjectionRunner>

export function createProjectionRunner(options: {
  store: EventStore
  readStore: ReadStore
  codec: EventCodec
  onError?: (error: unknown) => void
}) {
  const { store, readStore, codec } = options
  let position = readStore.checkpoint()
  let subscription: Subscription | null = null
  let failure: unknown = null
  const waiters = new Set<{ position: bigint; resolve: () => void; reject: (e: unknown) => void }>()
  const listeners = new Set<(event: DecodedEvent) => void>()

  async function advance(events: RecordedEvent[]): Promise<void> {
    // Keys and tombstones of the batch's owners, for the synchronous decode (a shared key store).
    await codec.preload(events)
    const decoded = events.map((e) => codec.decode(e))
    readStore.applyBatch(decoded)
    position = events[events.length - 1].position
    for (const event of decoded) for (const listener of listeners) listener(event)
    for (const waiter of waiters) {
      if (position >= waiter.position) {
        waiters.delete(waiter)
        waiter.resolve()
      }
    }
  }

  function fail(error: unknown): void {
    failure = error
    for (const waiter of waiters) waiter.reject(error)
    waiters.clear()
    options.onError?.(error)
  }

  async function catchUp(): Promise<number> {
    const fromScratch = position === 0n
    if (fromScratch) readStore.suspendIndexes()
    let applied = 0
    try {
      for (;;) {
        const batch = await store.readAll({ fromPosition: position, limit: CATCH_UP_BATCH })
        if (batch.length === 0) return applied
        await advance(batch)
        applied += batch.length
      }
    } finally {
      if (fromScratch) readStore.resumeIndexes()
    }
  }

  /** Read models written before the Merkle tree existed: give it the events they already hold. */
  async function backfillTree(): Promise<void> {
    const tree = readStore.tree
    let from = tree.size === 0 ? 0n : (tree.leafAt(tree.size - 1)?.position ?? 0n)
    while (from < position) {
      const batch = (await store.readAll({ fromPosition: from, limit: CATCH_UP_BATCH })).filter(
        (e) => e.position <= position,
      )
      if (batch.length === 0) return
      readStore.addLeaves(batch)
      from = batch[batch.length - 1].position
    }
  }

  return {
    get position(): bigint {
      return position
    },
    get failure(): unknown {
      return failure
    },

    /** Catches up, then follows live events. Rejects if an event cannot be applied. */
    async start(): Promise<void> {
      await backfillTree()
      await catchUp()
      subscription = store.subscribeAll(position, (event) => advance([event]), fail)
      await subscription.caughtUp
    },

    async stop(): Promise<void> {
      await subscription?.close()
      subscription = null
    },

    /** Drops the read models and replays every event; returns how many were applied. */
    async rebuild(): Promise<number> {
      await this.stop()
      readStore.reset()
      position = 0n
      const applied = await catchUp()
      subscription = store.subscribeAll(position, (event) => advance([event]), fail)
      await subscription.caughtUp
      return applied
    },

    /** Resolves once the read models include the event at `target`. */
    waitFor(target: bigint | null): Promise<void> {
      if (target === null || position >= target) return Promise.resolve()
      if (failure) return Promise.reject(failure)
      return new Promise((resolve, reject) => waiters.add({ position: target, resolve, reject }))
    },

    onApplied(listener: (event: DecodedEvent) => void): () => void {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
}
