/**
 * The walk behind a verify: the log in global order against the Merkle tree and each stream's
 * hash chain. Every event hashes to its stored hash, links to its stream's previous event, and
 * is the leaf the tree holds at its index; no leaf of the tree is missing from the log. Runs on
 * the service's loop in slices (`sliceMs`) or, for long walks, in a worker (verify-worker.ts).
 */
import { LRUCache } from 'lru-cache'
import type { EventStore, RecordedEvent } from '../eventstore/event-store.ts'
import { eventHash, GENESIS_HASH } from '../eventstore/hash-chain.ts'
import type { Leaf, MerkleTree } from '../readstore/merkle-tree.ts'

/**
 * Where the log first disagrees with the chain rules or with the Merkle tree. When the tree no
 * longer extends the head the last verify reached (it was rebuilt from a rewritten log), the
 * break names that head's size and no event.
 */
export type LogBreak = {
  stream_id: string | null
  revision: number | null
  position: string | null
  leaf_index: number
  reason:
    | 'hash_mismatch'
    | 'prev_hash_mismatch'
    | 'differs_from_tree'
    | 'missing_events'
    | 'tree_differs_from_verified_head'
}

/** Leaves `start` (inclusive) to `size` (exclusive) of the tree. */
export type WalkRange = { start: number; size: number }

export type WalkResult = {
  /** Leaves checked and found right, from `start` on. */
  checked: number
  streams_checked: number
  first_broken: LogBreak | null
}

/** Events read at a time. */
const BATCH = 100
/** Stream heads kept in memory for the chain links (a bound for a million streams). */
const KEPT_HEADS = 100_000

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

export async function walkLog(
  deps: { store: EventStore; tree: MerkleTree },
  { start, size }: WalkRange,
  /** Give the event loop a turn after this many milliseconds of work; omit in a worker. */
  sliceMs?: number,
): Promise<WalkResult> {
  const { store, tree } = deps
  let from = start === 0 ? 0n : (tree.leafAt(start - 1)?.position ?? 0n)
  let index = start
  let streams_checked = 0
  let first_broken: LogBreak | null = null
  // Each stream's last hash seen in this walk, for the chain links; older ones from the log.
  const heads = new LRUCache<string, { revision: number; hash: string }>({ max: KEPT_HEADS })
  const previousHash = async (event: RecordedEvent): Promise<string | undefined> => {
    const head = heads.get(event.stream_id)
    if (head?.revision === event.revision - 1) return head.hash
    const [previous] = await store.readStream(event.stream_id, { fromRevision: event.revision - 1 })
    return previous?.revision === event.revision - 1 ? previous.metadata.hash : undefined
  }
  /** A leaf of the tree whose event is no longer in the log. */
  const missing = (leaf: Leaf): LogBreak => ({
    stream_id: leaf.streamId,
    revision: leaf.revision,
    position: String(leaf.position),
    leaf_index: leaf.leafIndex,
    reason: 'missing_events',
  })
  const at = (e: RecordedEvent, reason: LogBreak['reason']): LogBreak => ({
    stream_id: e.stream_id,
    revision: e.revision,
    position: String(e.position),
    leaf_index: index,
    reason,
  })
  let sliceStarted = performance.now()
  while (index < size && !first_broken) {
    const batch = await store.readAll({ fromPosition: from, limit: BATCH })
    const leaves = tree.leaves(index, batch.length)
    for (const [i, event] of batch.entries()) {
      if (index >= size) break
      const leaf = leaves[i]
      if (leaf && leaf.position < event.position) {
        first_broken = missing(leaf)
        break
      }
      if (
        !leaf ||
        leaf.position !== event.position ||
        leaf.streamId !== event.stream_id ||
        leaf.revision !== event.revision ||
        leaf.eventHash !== event.metadata.hash
      ) {
        first_broken = at(event, 'differs_from_tree')
        break
      }
      const { hash, ...rest } = event.metadata
      if (eventHash({ ...event, metadata: rest }) !== hash) {
        first_broken = at(event, 'hash_mismatch')
        break
      }
      const previous = event.revision === 0 ? GENESIS_HASH : await previousHash(event)
      if (event.metadata.prev_hash !== previous) {
        first_broken = at(event, 'prev_hash_mismatch')
        break
      }
      if (event.revision === 0) streams_checked++
      heads.set(event.stream_id, { revision: event.revision, hash })
      index++
      // The store's reads are synchronous behind promises: only a macrotask lets others in.
      if (sliceMs !== undefined && performance.now() - sliceStarted > sliceMs) {
        await yieldToLoop()
        sliceStarted = performance.now()
      }
    }
    if (batch.length === 0 && index < size && !first_broken) first_broken = missing(tree.leafAt(index)!)
    if (batch.length > 0) from = batch[batch.length - 1].position
  }
  return { checked: index - start, streams_checked, first_broken }
}
