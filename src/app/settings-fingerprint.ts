/**
 * Secrets every instance of a store must share are checked against the data already written:
 * the first start records a fingerprint of each (an HMAC of a fixed label, which reveals nothing
 * of the secret) in the `service-settings` stream, and an instance whose secret gives another
 * fingerprint refuses to start, naming the setting, instead of silently writing data the others
 * cannot match (a username claimed twice under two HMAC keys).
 */
import { createHmac } from 'node:crypto'
import { type EventStore, WrongExpectedRevisionError } from '../eventstore/event-store.ts'
import { eventMetadata } from './event-metadata.ts'

export const SETTINGS_STREAM = 'service-settings'
const LABEL = 'auth-service settings fingerprint v1'

export class SettingMismatchError extends Error {
  constructor(setting: string) {
    super(
      `${setting} does not match the one the data in this store was written with; ` +
        `give every instance the same ${setting} (or point it at its own store)`,
    )
    this.name = 'SettingMismatchError'
  }
}

export function fingerprint(secret: Uint8Array): string {
  return createHmac('sha256', secret).update(LABEL).digest('hex')
}

export async function checkSettingFingerprints(
  store: EventStore,
  secrets: Record<string, Uint8Array>,
  now: () => Date,
): Promise<void> {
  const ours = Object.fromEntries(
    Object.entries(secrets).map(([name, secret]) => [name, fingerprint(secret)]),
  )
  for (let attempt = 0; attempt < 3; attempt++) {
    const recorded = (await store.readStream(SETTINGS_STREAM)).at(-1)
    if (recorded) {
      const theirs = (recorded.data as { fingerprints?: Record<string, string> }).fingerprints ?? {}
      for (const [name, value] of Object.entries(ours))
        if (theirs[name] !== undefined && theirs[name] !== value) throw new SettingMismatchError(name)
      if (Object.keys(ours).every((name) => theirs[name] !== undefined)) return
    }
    try {
      await store.append(
        SETTINGS_STREAM,
        [
          {
            type: 'SettingsFingerprinted',
            data: { fingerprints: { ...(recorded?.data.fingerprints as object), ...ours } },
            metadata: eventMetadata(now()),
          },
        ],
        recorded ? recorded.revision : 'no_stream',
      )
      return
    } catch (error) {
      // Another instance recorded them first: compare with what it wrote.
      if (!(error instanceof WrongExpectedRevisionError)) throw error
    }
  }
}

/** A store's identity: the id of its first settings event (null for a store never started). */
export async function storeIdentity(store: EventStore): Promise<string | null> {
  const [first] = await store.readStream(SETTINGS_STREAM)
  return first ? first.metadata.event_id : null
}
