/**
 * What auditors get: an account's full history (its stream and its sessions' streams) with
 * personal fields decrypted or "[erased]", the hash chain of every stream, signed checkpoints
 * that catch a rewritten stream even when its hashes were recomputed, and time travel.
 */
import { accountDecider } from '../../domain/account.decider.ts'
import type { AccountEvent } from '../../domain/account.events.ts'
import type { Account } from '../../domain/account.ts'
import { verifyConsistency } from '../../scripts/verify-proof.ts'
import { type LogBreak, type WalkRange, type WalkResult, walkLog } from '../audit/log-walk.ts'
import { consistencyProof, inclusionProof, leafHash, rootOf } from '../audit/merkle.ts'
import type { EventStore, RecordedEvent } from '../eventstore/event-store.ts'
import { verifyChain } from '../eventstore/hash-chain.ts'
import type { MerkleTree } from '../readstore/merkle-tree.ts'
import type { TokenService } from '../security/access-tokens.ts'
import type { EventCodec } from './event-codec.ts'
import { accountStream, sessionStream } from './streams.ts'

export type { LogBreak }

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

export type InclusionProof = {
  leaf_index: number
  tree_size: number
  leaf_hash: string
  audit_path: string[]
}

/** A verify on the loop gives it a turn every few milliseconds. */
const VERIFY_SLICE_MS = 4
/** Longer walks run in a worker when the runtime offers one (its start costs ~100 ms). */
const OFF_LOOP_ABOVE = 20_000

const hex = (buffer: Buffer): string => buffer.toString('hex')

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
  /** Runs a verify's walk off the service's event loop (a worker with its own connections). */
  walkOffLoop?: (range: WalkRange) => Promise<WalkResult>
  /** Walks longer than this many events go off the loop (default OFF_LOOP_ABOVE). */
  offLoopAbove?: number
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
     * events after the last verified tree head; `full` from the first event. Never holds the
     * event loop for long: a worker walks long ranges, short ones run in slices.
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
      const range = { start, size }
      // Long walks go off the loop when the runtime offers it; short ones run here in slices.
      const walk =
        deps.walkOffLoop && size - start > (deps.offLoopAbove ?? OFF_LOOP_ABOVE)
          ? await deps.walkOffLoop(range)
          : await walkLog({ store, tree }, range, VERIFY_SLICE_MS)
      let { first_broken } = walk
      const index = start + walk.checked
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
        streams_checked: walk.streams_checked,
        events_checked: walk.checked,
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
