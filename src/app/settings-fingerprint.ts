/**
 * Secrets every instance of a store must share are checked against the data already written:
 * the first start records a fingerprint of each (an HMAC of a fixed label, which reveals nothing
 * of the secret) in the `service-settings` stream, and an instance whose secret gives another
 * fingerprint refuses to start, naming the setting, instead of silently writing data the others
 * cannot match (a username claimed twice under two HMAC keys).
 *
 * The token signing key may change (rotation), so it is not fingerprinted but named: the `kid`
 * the last instance started with is recorded, and an instance that would not accept tokens
 * signed with it refuses to start.
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

export class SigningKeyMismatchError extends Error {
  constructor(kid: string) {
    super(
      `JWT_PRIVATE_KEY_PEM does not match the key the other instances of this store sign with ` +
        `(kid ${kid}); give every instance the same key, or, to rotate, first add the new public ` +
        `key to JWT_VERIFY_PUBLIC_KEYS_PEM everywhere, then switch JWT_PRIVATE_KEY_PEM and keep ` +
        `the old public key there`,
    )
    this.name = 'SigningKeyMismatchError'
  }
}

type RecordedSettings = { fingerprints?: Record<string, string>; signing_kid?: string }

/** The signing key an instance signs with, and every kid it accepts (that one included). */
export type SigningKeyIds = { current: string; accepted: string[] }

export function fingerprint(secret: Uint8Array): string {
  return createHmac('sha256', secret).update(LABEL).digest('hex')
}

export async function checkSettingFingerprints(
  store: EventStore,
  secrets: Record<string, Uint8Array>,
  now: () => Date,
  signingKey?: SigningKeyIds,
): Promise<void> {
  const ours = Object.fromEntries(
    Object.entries(secrets).map(([name, secret]) => [name, fingerprint(secret)]),
  )
  for (let attempt = 0; attempt < 3; attempt++) {
    const recorded = (await store.readStream(SETTINGS_STREAM)).at(-1)
    const theirs = (recorded?.data ?? {}) as RecordedSettings
    const fingerprints = theirs.fingerprints ?? {}
    for (const [name, value] of Object.entries(ours))
      if (fingerprints[name] !== undefined && fingerprints[name] !== value)
        throw new SettingMismatchError(name)
    if (signingKey && theirs.signing_kid && !signingKey.accepted.includes(theirs.signing_kid))
      throw new SigningKeyMismatchError(theirs.signing_kid)
    const upToDate =
      Object.keys(ours).every((name) => fingerprints[name] !== undefined) &&
      (!signingKey || theirs.signing_kid === signingKey.current)
    if (recorded && upToDate) return
    const settings: RecordedSettings = { fingerprints: { ...fingerprints, ...ours } }
    const signingKid = signingKey?.current ?? theirs.signing_kid
    if (signingKid) settings.signing_kid = signingKid
    try {
      await store.append(
        SETTINGS_STREAM,
        [{ type: 'SettingsFingerprinted', data: settings, metadata: eventMetadata(now()) }],
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
