/**
 * Username and email uniqueness: each normalised value has a stream keyed by its HMAC, and a
 * claim is an append that only one writer can win. A claim left behind by a registration that
 * crashed half-way (its owner never got an account) is taken over after a grace period, and one
 * left by a deleted account at once.
 */
import { createHmac, randomUUID } from 'node:crypto'
import { type EventStore, type NewEvent, WrongExpectedRevisionError } from '../eventstore/event-store.ts'
import { accountStream, claimStream } from './streams.ts'

const ABANDONED_AFTER_MS = 60_000
const MAX_ATTEMPTS = 5

export type ClaimKind = 'username' | 'email'

export function normalise(kind: ClaimKind, value: string): string {
  const trimmed = value.normalize('NFKC').trim()
  return kind === 'email' ? trimmed.toLowerCase() : trimmed.toLowerCase()
}

export function createUniqueClaims(
  store: EventStore,
  secret: Uint8Array,
  now: () => Date = () => new Date(),
) {
  const keyOf = (kind: ClaimKind, value: string): string =>
    createHmac('sha256', secret)
      .update(`${kind}:${normalise(kind, value)}`)
      .digest('base64url')

  const event = (type: string, ownerId: number): NewEvent => ({
    type,
    data: { owner_id: ownerId },
    metadata: {
      event_id: randomUUID(),
      schema_version: 1,
      occurred_at: now().toISOString(),
      actor_id: null,
      correlation_id: null,
      causation_id: null,
    },
  })

  /** The holder never got an account (a crash mid-registration) or was deleted before releasing it. */
  async function isAbandoned(ownerId: number, claimedAt: string): Promise<boolean> {
    const owner = await store.readStream(accountStream(ownerId))
    if (owner.at(-1)?.type === 'AccountDeleted') return true
    return owner.length === 0 && now().getTime() - Date.parse(claimedAt) >= ABANDONED_AFTER_MS
  }

  return {
    keyOf,

    /** True when `ownerId` now holds the value (also when it already did). */
    async claim(kind: ClaimKind, key: string, ownerId: number): Promise<boolean> {
      const stream = claimStream(kind, key)
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const events = await store.readStream(stream)
        const last = events.at(-1)
        const holder = last?.type === 'UniqueValueClaimed' ? (last.data.owner_id as number) : null
        if (holder === ownerId) return true
        const toAppend: NewEvent[] = []
        if (holder !== null && last) {
          if (!(await isAbandoned(holder, last.metadata.occurred_at))) return false
          toAppend.push(event('UniqueValueReleased', holder))
        }
        toAppend.push(event('UniqueValueClaimed', ownerId))
        try {
          await store.append(stream, toAppend, last ? last.revision : 'no_stream')
          return true
        } catch (error) {
          if (!(error instanceof WrongExpectedRevisionError)) throw error
        }
      }
      return false
    },

    async release(kind: ClaimKind, key: string, ownerId: number): Promise<void> {
      const stream = claimStream(kind, key)
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const last = (await store.readStream(stream)).at(-1)
        if (last?.type !== 'UniqueValueClaimed' || last.data.owner_id !== ownerId) return
        try {
          await store.append(stream, [event('UniqueValueReleased', ownerId)], last.revision)
          return
        } catch (error) {
          if (!(error instanceof WrongExpectedRevisionError)) throw error
        }
      }
    },
  }
}

export type UniqueClaims = ReturnType<typeof createUniqueClaims>
