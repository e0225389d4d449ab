/**
 * Between the domain and the store: encrypts personal fields on the way in, decrypts them on
 * the way out ("[erased]" once the account's key is destroyed), and refuses unknown event types.
 *
 * An event's personal fields travel together, sealed in one `personal_data` value: one AES-GCM
 * call per event instead of one per field (a replay decrypted 160k fields for 20k accounts, at
 * about 5 µs each, most of it the cipher's setup), and the fields of one event cannot be
 * swapped with each other. Events written before carry each field encrypted on its own (or, for
 * fields that became personal later, in clear); they are read as they were stored.
 */
import { DomainError } from '../../domain/errors.ts'
import { DOMAIN_EVENT_TYPES, type DomainEvent } from '../../domain/events.ts'
import { ERASED, PERSONAL_FIELDS } from '../../domain/personal-data.ts'
import type { Recorded, RecordedEvent } from '../eventstore/event-store.ts'
import { DataKeyDestroyedError, ENCRYPTED_PREFIX } from '../security/data-keys.ts'
import { accountIdOf, dataKeyOwner } from './streams.ts'

export interface FieldCipher {
  isErased(owner: string): boolean
  ensureKey(owner: string): void
  encrypt(owner: string, plaintext: string): string
  decrypt(owner: string, value: string): string | null
  /** A shared store fetches what the synchronous methods need: a key before encrypting... */
  prepare?(owner: string): Promise<void>
  /** ...and the keys and tombstones of a batch before decrypting it. */
  preload?(owners: string[]): Promise<void>
}

/** The stored field that holds an event's personal fields, encrypted together. */
export const SEALED_FIELD = 'personal_data'

/** Events of the service's own streams: id sequences, settings, roster lock, uniqueness claims. */
const OTHER_EVENT_TYPES = [
  'IdReserved',
  'SettingsFingerprinted',
  'RosterLockTaken',
  'RosterLockReleased',
  'UniqueValueClaimed',
  'UniqueValueReleased',
] as const
const otherEventTypes: ReadonlySet<string> = new Set(OTHER_EVENT_TYPES)

/** What `decode` lets through: a domain event with typed data, or one of the service's own. */
export type DecodedEvent =
  | Recorded<DomainEvent>
  | (RecordedEvent & { type: (typeof OTHER_EVENT_TYPES)[number] })

export class UnknownEventTypeError extends Error {
  constructor(event: { stream_id: string; revision: number; type: string }) {
    super(
      `unknown event type "${event.type}" at ${event.stream_id}@${event.revision}: ` +
        'this version of the service cannot read the store (was it written by a newer version?)',
    )
    this.name = 'UnknownEventTypeError'
  }
}

export function isKnownEventType(type: string): boolean {
  return DOMAIN_EVENT_TYPES.has(type) || otherEventTypes.has(type)
}

/** The account whose data key covers an event's personal fields. */
export function ownerOf(event: { stream_id: string; data: Record<string, unknown> }): number | null {
  const userId = accountIdOf(event.stream_id)
  if (userId !== null) return userId
  return typeof event.data.user_id === 'number' ? event.data.user_id : null
}

export function createEventCodec(cipher: FieldCipher) {
  return {
    /** Before `encode`: makes the owner's key usable when one of these event types has personal fields. */
    async prepare(userId: number, types: readonly string[]): Promise<void> {
      if (!cipher.prepare || !types.some((type) => PERSONAL_FIELDS.has(type))) return
      try {
        await cipher.prepare(dataKeyOwner(userId))
      } catch (error) {
        // As `encode`: an erased account takes no new personal data.
        if (error instanceof DataKeyDestroyedError)
          throw new DomainError('ACCOUNT_NOT_FOUND', 'User not found')
        throw error
      }
    },

    /** Before `decode`: loads the keys (and tombstones) of the events' owners. */
    async preload(events: readonly RecordedEvent[]): Promise<void> {
      if (!cipher.preload) return
      const owners = new Set<string>()
      for (const event of events) {
        if (!PERSONAL_FIELDS.has(event.type)) continue
        const userId = ownerOf(event)
        if (userId !== null) owners.add(dataKeyOwner(userId))
      }
      if (owners.size > 0) await cipher.preload([...owners])
    },

    encode(userId: number, type: string, data: Record<string, unknown>): Record<string, unknown> {
      const fields = PERSONAL_FIELDS.get(type)
      if (!fields) return data
      const owner = dataKeyOwner(userId)
      // An erased account takes no new personal data: its key is gone for good.
      if (cipher.isErased(owner)) throw new DomainError('ACCOUNT_NOT_FOUND', 'User not found')
      cipher.ensureKey(owner)
      const encoded: Record<string, unknown> = {}
      const personal: Record<string, unknown> = {}
      for (const [field, value] of Object.entries(data)) {
        if (fields.includes(field)) personal[field] = value
        else encoded[field] = value
      }
      encoded[SEALED_FIELD] = cipher.encrypt(owner, JSON.stringify(personal))
      return encoded
    },

    decode(event: RecordedEvent): DecodedEvent {
      if (!isKnownEventType(event.type)) throw new UnknownEventTypeError(event)
      const fields = PERSONAL_FIELDS.get(event.type)
      // A known type's data is what the domain wrote for it: the cast is the typed boundary.
      if (!fields) return event as DecodedEvent
      const userId = ownerOf(event)
      const owner = userId === null ? null : dataKeyOwner(userId)
      const { [SEALED_FIELD]: sealed, ...data } = event.data
      if (typeof sealed === 'string') {
        const plaintext = owner === null ? null : cipher.decrypt(owner, sealed)
        // Erased: every personal field the type declares reads "[erased]", so not even which
        // of them the person had filled in is left.
        const personal = plaintext === null ? null : (JSON.parse(plaintext) as Record<string, unknown>)
        for (const field of fields) {
          if (personal === null) data[field] = ERASED
          else if (personal[field] !== undefined) data[field] = personal[field]
        }
      } else {
        for (const field of fields) {
          const value = data[field]
          // Not encrypted: a field that became personal later (the HMAC keys), in an event
          // written before. History cannot be rewritten; it stays as it was stored.
          if (typeof value !== 'string' || !value.startsWith(ENCRYPTED_PREFIX)) continue
          data[field] = owner === null ? ERASED : (cipher.decrypt(owner, value) ?? ERASED)
        }
      }
      return { ...event, data } as DecodedEvent
    },
  }
}

export type EventCodec = ReturnType<typeof createEventCodec>
