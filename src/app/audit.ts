/**
 * What auditors get: an account's full history (its stream and its sessions' streams) with
 * personal fields decrypted or "[erased]", the hash chain of every stream, signed checkpoints
 * that catch a rewritten stream even when its hashes were recomputed, and time travel.
 */
import { accountDecider } from '../../domain/account.decider.ts'
import type { AccountEvent } from '../../domain/account.events.ts'
import type { Account } from '../../domain/account.ts'
import { verifyConsistency } from '../../scripts/verify-proof.ts'
import { consistencyProof, inclusionProof, leafHash, rootOf } from '../audit/merkle.ts'
import type { EventStore, RecordedEvent } from '../eventstore/event-store.ts'
import { eventHash, GENESIS_HASH, verifyChain } from '../eventstore/hash-chain.ts'
import type { Leaf, MerkleTree } from '../readstore/merkle-tree.ts'
import type { TokenService } from '../security/access-tokens.ts'
import type { EventCodec } from './event-codec.ts'
import { accountStream, sessionStream } from './streams.ts'

export type AuditEvent = {
  stream: string
  revision: number
  type: string
  occurred_at: string
  actor_id: number | null
  data: Record<string, unknown>
  hash: string
}

/** The first release's checkpoint: every stream's head. Still verified, no longer issued. */
export type StreamCheckpointPayload = {
  issued_at: string
  streams: Record<string, { revision: number; hash: string }>
}

/** A signed tree head: the size and root of the log-wide Merkle tree (RFC 9162) at a time. */
export type TreeHead = { tree_size: number; root_hash: string; issued_at: string }

export type CheckpointBreak = { stream: string; revision: number; reason: string }

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

export type InclusionProof = {
  leaf_index: number
  tree_size: number
  leaf_hash: string
  audit_path: string[]
}

/** Events read at a time by a verify; it gives the event loop a turn every few milliseconds. */
const VERIFY_BATCH = 100
const VERIFY_SLICE_MS = 4
/** Stream heads a verify keeps in memory for the chain links (a bound for a million streams). */
const KEPT_HEADS = 100_000

const hex = (buffer: Buffer): string => buffer.toString('hex')
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

function isTreeHead(value: unknown): value is TreeHead {
  const v = value as TreeHead
  return (
    Number.isSafeInteger(v?.tree_size) &&
    v.tree_size >= 0 &&
    typeof v.root_hash === 'string' &&
    /^[0-9a-f]{64}$/.test(v.root_hash) &&
    typeof v.issued_at === 'string'
  )
}

const SECRET_FIELDS = new Set([
  'password_hash',
  'secret',
  'recovery_code_hashes',
  'token_hash',
  'refresh_token_hash',
])

/** Auditors see that a secret changed, never the secret itself (not even its hash). */
function redactSecrets(data: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(data)) out[key] = SECRET_FIELDS.has(key) ? '[redacted]' : value
  return out
}

function toAuditEvent(event: RecordedEvent): AuditEvent {
  const actor = event.metadata.actor_id
  return {
    stream: event.stream_id,
    revision: event.revision,
    type: event.type,
    occurred_at: event.metadata.occurred_at,
    actor_id: actor === null ? null : Number(actor),
    data: redactSecrets(event.data),
    hash: event.metadata.hash,
  }
}

export function createAudit(deps: {
  store: EventStore
  codec: EventCodec
  tokens: TokenService
  tree: MerkleTree
  sessionIdsOf: (userId: number) => Promise<number[]> | number[]
  now: () => Date
}) {
  const { store, codec, tokens, tree } = deps

  async function userEvents(userId: number): Promise<RecordedEvent[] | null> {
    const account = await store.readStream(accountStream(userId))
    if (account.length === 0) return null
    const sessions = await Promise.all(
      (await deps.sessionIdsOf(userId)).map((id) => store.readStream(sessionStream(id))),
    )
    return [...account, ...sessions.flat()].sort((a, b) =>
      a.position < b.position ? -1 : a.position > b.position ? 1 : 0,
    )
  }

  function head(): TreeHead {
    return { tree_size: tree.size, root_hash: hex(tree.root()), issued_at: deps.now().toISOString() }
  }

  /** RFC 9162 §2.1.3 inclusion proof of one leaf in the tree of `size` leaves. */
  function inclusionOf(leafIndex: number, size: number, eventHash: string): InclusionProof {
    return {
      leaf_index: leafIndex,
      tree_size: size,
      leaf_hash: hex(leafHash(eventHash)),
      audit_path: inclusionProof(leafIndex, size, tree.subtree()).map(hex),
    }
  }

  async function verifyStreamCheckpoint(
    payload: StreamCheckpointPayload,
  ): Promise<{ ok: boolean; streams_checked: number; first_broken: CheckpointBreak | null }> {
    let first_broken: CheckpointBreak | null = null
    let streams_checked = 0
    for (const [stream, head] of Object.entries(payload.streams)) {
      streams_checked++
      if (first_broken) continue
      const events = await store.readStream(stream)
      const upTo = events.slice(0, head.revision + 1)
      const chainBreak = verifyChain(upTo)
      if (upTo.length !== head.revision + 1) {
        first_broken = { stream, revision: head.revision, reason: 'missing_events' }
      } else if (chainBreak) {
        first_broken = { stream, revision: chainBreak.revision, reason: chainBreak.reason }
      } else if (upTo[head.revision].metadata.hash !== head.hash) {
        first_broken = { stream, revision: head.revision, reason: 'differs_from_checkpoint' }
      }
    }
    return { ok: first_broken === null, streams_checked, first_broken }
  }

  return {
    /** Null when the account never existed. With `proof`, each event's inclusion in `head`. */
    async history(
      userId: number,
      options: { proof?: boolean } = {},
    ): Promise<{
      events: (AuditEvent & { inclusion?: Omit<InclusionProof, 'leaf_hash'> | null })[]
      head: string | null
    } | null> {
      const events = await userEvents(userId)
      if (!events) return null
      await codec.preload(events)
      if (!options.proof) return { events: events.map((e) => toAuditEvent(codec.decode(e))), head: null }
      const treeHead = head()
      return {
        events: events.map((e) => {
          const leaf = tree.leafAtPosition(e.position)
          // An event the read models have not reached yet is in no signed head.
          const inclusion =
            leaf && leaf.leafIndex < treeHead.tree_size
              ? (({ leaf_hash: _, ...rest }) => rest)(
                  inclusionOf(leaf.leafIndex, treeHead.tree_size, leaf.eventHash),
                )
              : null
          return { ...toAuditEvent(codec.decode(e)), inclusion }
        }),
        head: await tokens.signCheckpoint(treeHead),
      }
    },

    /** The account as it was at `asOf`, folded from its events up to then. */
    async stateAt(userId: number, asOf: Date): Promise<Account | null> {
      const events = await store.readStream(accountStream(userId))
      if (events.length === 0) return null
      await codec.preload(events)
      let state = accountDecider.initialState
      for (const event of events) {
        if (Date.parse(event.metadata.occurred_at) > asOf.getTime()) break
        const { type, data } = codec.decode(event)
        state = accountDecider.evolve(state, { type, data } as AccountEvent)
      }
      return state
    },

    /**
     * Walks the log in global order against the Merkle tree and each stream's hash chain: every
     * event hashes to its stored hash, links to its stream's previous event, and is the leaf the
     * tree holds at its index; no leaf of the tree is missing from the log. By default only the
     * events after the last verified tree head; `full` from the first event. Runs in slices that
     * give the event loop a turn, so the service keeps answering.
     */
    async verify(options: { full?: boolean } = {}): Promise<{
      ok: boolean
      streams_checked: number
      events_checked: number
      tree_size: number
      from_leaf: number
      first_broken: LogBreak | null
    }> {
      const size = tree.size
      const verified = tree.lastVerified()
      const extendsVerified =
        verified === null ||
        (verified.size <= size && hex(rootOf(verified.size, tree.subtree())) === verified.rootHash)
      // A tree that no longer extends the last verified head is a finding; the walk then starts
      // from the first event, to find whatever else differs.
      const start = options.full || !extendsVerified || verified === null ? 0 : verified.size
      let from = start === 0 ? 0n : (tree.leafAt(start - 1)?.position ?? 0n)
      let index = start
      let streams_checked = 0
      let first_broken: LogBreak | null = null
      // Each stream's last hash seen in this walk, for the chain links; older ones from the log.
      const heads = new Map<string, { revision: number; hash: string }>()
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
        const batch = await store.readAll({ fromPosition: from, limit: VERIFY_BATCH })
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
          heads.delete(event.stream_id)
          if (heads.size >= KEPT_HEADS) heads.delete(heads.keys().next().value as string)
          heads.set(event.stream_id, { revision: event.revision, hash })
          index++
          // The store's reads are synchronous behind promises: only a macrotask lets others in.
          if (performance.now() - sliceStarted > VERIFY_SLICE_MS) {
            await yieldToLoop()
            sliceStarted = performance.now()
          }
        }
        if (batch.length === 0 && index < size && !first_broken) first_broken = missing(tree.leafAt(index)!)
        if (batch.length > 0) from = batch[batch.length - 1].position
      }
      if (!first_broken && !extendsVerified && verified) {
        first_broken = {
          stream_id: null,
          revision: null,
          position: null,
          leaf_index: Math.min(verified.size, size),
          reason: 'tree_differs_from_verified_head',
        }
      }
      if (!first_broken) tree.markVerified(index, hex(rootOf(index, tree.subtree())))
      return {
        ok: first_broken === null,
        streams_checked,
        events_checked: index - start,
        tree_size: size,
        from_leaf: start,
        first_broken,
      }
    },

    /** A signed tree head: a JWS (key in the JWKS, `typ` `checkpoint+jws`) of a few hundred bytes. */
    checkpoint(): Promise<string> {
      return tokens.signCheckpoint(head())
    },

    async inclusion(
      where: { stream: string; revision: number } | { position: bigint },
      treeSize = tree.size,
    ): Promise<InclusionProof | null> {
      const position =
        'position' in where
          ? where.position
          : (await store.readStream(where.stream, { fromRevision: where.revision })).find(
              (e) => e.revision === where.revision,
            )?.position
      const leaf = position === undefined ? null : tree.leafAtPosition(position)
      if (!leaf || treeSize > tree.size || leaf.leafIndex >= treeSize) return null
      return inclusionOf(leaf.leafIndex, treeSize, leaf.eventHash)
    },

    /** Null when a size is beyond the tree or `first` > `second`. */
    consistency(first: number, second: number): { first: number; second: number; proof: string[] } | null {
      if (first < 0 || first > second || second > tree.size) return null
      return { first, second, proof: consistencyProof(first, second, tree.subtree()).map(hex) }
    },

    /**
     * A tree head: its signature, and that the current log extends it (its root is the root of
     * the first `tree_size` leaves, proved with a consistency proof to the current head: O(log n)
     * stored hashes). A per-stream checkpoint of the first release: as before. Null when the
     * signature does not verify.
     */
    async verifyCheckpoint(
      jws: string,
    ): Promise<
      | { ok: boolean; tree_size: number; first_broken: { tree_size: number; reason: string } | null }
      | { ok: boolean; streams_checked: number; first_broken: CheckpointBreak | null }
      | null
    > {
      const payload = await tokens.verifyCheckpoint(jws)
      if (payload && typeof payload.streams === 'object' && payload.streams !== null) {
        return verifyStreamCheckpoint(payload as StreamCheckpointPayload)
      }
      if (!isTreeHead(payload)) return null
      const size = tree.size
      const broken = (reason: string) => ({
        ok: false,
        tree_size: payload.tree_size,
        first_broken: { tree_size: payload.tree_size, reason },
      })
      if (payload.tree_size > size) return broken('log_shorter_than_tree_head')
      const subtree = tree.subtree()
      const proof = consistencyProof(payload.tree_size, size, subtree)
      const extends_ = verifyConsistency(
        { first: payload.tree_size, second: size, proof: proof.map(hex) },
        payload.root_hash,
        hex(rootOf(size, subtree)),
      )
      return extends_
        ? { ok: true, tree_size: payload.tree_size, first_broken: null }
        : broken('differs_from_tree_head')
    },
  }
}

export type Audit = ReturnType<typeof createAudit>
