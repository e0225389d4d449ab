/**
 * What auditors get: an account's full history (its stream and its sessions' streams) with
 * personal fields decrypted or "[erased]", the hash chain of every stream, signed checkpoints
 * that catch a rewritten stream even when its hashes were recomputed, and time travel.
 */
import { accountDecider } from '../../domain/account.decider.ts'
import type { AccountEvent } from '../../domain/account.events.ts'
import type { Account } from '../../domain/account.ts'
import type { EventStore, RecordedEvent } from '../eventstore/event-store.ts'
import { type ChainBreak, verifyChain } from '../eventstore/hash-chain.ts'
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

export type CheckpointPayload = {
  issued_at: string
  streams: Record<string, { revision: number; hash: string }>
}

export type CheckpointBreak = { stream: string; revision: number; reason: string }

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
  sessionIdsOf: (userId: number) => Promise<number[]> | number[]
  now: () => Date
}) {
  const { store, codec, tokens } = deps

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

  return {
    /** Null when the account never existed. */
    async history(userId: number): Promise<AuditEvent[] | null> {
      const events = await userEvents(userId)
      return events ? events.map((e) => toAuditEvent(codec.decode(e))) : null
    },

    /** The account as it was at `asOf`, folded from its events up to then. */
    async stateAt(userId: number, asOf: Date): Promise<Account | null> {
      const events = await store.readStream(accountStream(userId))
      if (events.length === 0) return null
      let state = accountDecider.initialState
      for (const event of events) {
        if (Date.parse(event.metadata.occurred_at) > asOf.getTime()) break
        const { type, data } = codec.decode(event)
        state = accountDecider.evolve(state, { type, data } as AccountEvent)
      }
      return state
    },

    async verify(): Promise<{
      ok: boolean
      streams_checked: number
      events_checked: number
      first_broken: ChainBreak | null
    }> {
      let events_checked = 0
      let first_broken: ChainBreak | null = null
      const streams = await store.listStreams()
      for (const stream of streams) {
        const events = await store.readStream(stream)
        events_checked += events.length
        first_broken ??= verifyChain(events)
      }
      return { ok: first_broken === null, streams_checked: streams.length, events_checked, first_broken }
    },

    async checkpoint(): Promise<string> {
      const streams: CheckpointPayload['streams'] = {}
      for (const stream of await store.listStreams()) {
        const last = (await store.readStream(stream)).at(-1)
        if (last) streams[stream] = { revision: last.revision, hash: last.metadata.hash }
      }
      const payload: CheckpointPayload = { issued_at: deps.now().toISOString(), streams }
      return tokens.signCheckpoint(payload)
    },

    /** Null when the checkpoint's signature does not verify. */
    async verifyCheckpoint(
      jws: string,
    ): Promise<{ ok: boolean; streams_checked: number; first_broken: CheckpointBreak | null } | null> {
      const payload = (await tokens.verifyCheckpoint(jws)) as CheckpointPayload | null
      if (!payload || typeof payload.streams !== 'object' || payload.streams === null) return null
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
    },
  }
}

export type Audit = ReturnType<typeof createAudit>
