/**
 * Each stream is a hash chain: an event's hash is SHA-256 over the previous event's hash and
 * the event as stored (personal fields in their encrypted form), so erasing a data key leaves
 * the chain verifiable. Canonical JSON (sorted keys) makes the hash independent of the adapter.
 */
import { createHash } from 'node:crypto'
import type { EventMetadata, NewEvent, RecordedEvent } from './event-store.ts'

export const GENESIS_HASH = '0'.repeat(64)

/**
 * RFC 8785 (JSON Canonicalization Scheme) on I-JSON, byte for byte the output of the
 * `canonicalize` package; outside I-JSON it writes what JSON.stringify writes (a lone surrogate
 * as its `\udxxx` escape, NaN as null) where the package throws. Stored events hold client text
 * with lone surrogates, and their hashes must keep verifying, so this stays ours:
 * test/eventstore/canonical-json.test.ts holds it to the RFC's examples and to the package.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
}

type HashInput = {
  stream_id: string
  revision: number
  type: string
  data: Record<string, unknown>
  metadata: Omit<EventMetadata, 'hash'>
}

export function eventHash(event: HashInput): string {
  const { stream_id, revision, type, data, metadata } = event
  const body = canonicalJson({ stream_id, revision, type, data, metadata })
  return createHash('sha256').update(metadata.prev_hash).update('\n').update(body).digest('hex')
}

/** Gives new events their `prev_hash` and `hash`, continuing a stream from its head. */
export function chainEvents(
  stream: string,
  firstRevision: number,
  headHash: string,
  events: NewEvent[],
): { type: string; data: Record<string, unknown>; metadata: EventMetadata }[] {
  let prev = headHash
  return events.map((event, i) => {
    const metadata = { ...event.metadata, prev_hash: prev }
    const hash = eventHash({
      stream_id: stream,
      revision: firstRevision + i,
      type: event.type,
      data: event.data,
      metadata,
    })
    prev = hash
    return { type: event.type, data: event.data, metadata: { ...metadata, hash } }
  })
}

export type ChainBreak = {
  stream_id: string
  revision: number
  reason: 'hash_mismatch' | 'prev_hash_mismatch' | 'revision_gap'
}

/** Verifies a whole stream; returns the first broken event, or null when the chain holds. */
export function verifyChain(events: RecordedEvent[]): ChainBreak | null {
  let prev = GENESIS_HASH
  for (const [i, event] of events.entries()) {
    const at = { stream_id: event.stream_id, revision: event.revision }
    if (event.revision !== i) return { ...at, reason: 'revision_gap' }
    if (event.metadata.prev_hash !== prev) return { ...at, reason: 'prev_hash_mismatch' }
    const { hash, ...rest } = event.metadata
    if (eventHash({ ...event, metadata: rest }) !== hash) return { ...at, reason: 'hash_mismatch' }
    prev = hash
  }
  return null
}
