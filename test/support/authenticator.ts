/**
 * A software WebAuthn authenticator and client for the tests, written from the specifications with
 * node:crypto only, independent of the server's library: CBOR (RFC 8949), COSE EC2 keys (RFC 9053),
 * authenticator data, `none` and `packed` self attestation, assertions (WebAuthn Level 3 §6, §8).
 * It answers the server's options as a browser would (navigator.credentials.create/get plus
 * `toJSON()`), and lets a test break any part: the origin, the RP id, the challenge, the counter,
 * the user handle, the signing key, the flags.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto'

// ------------------------------------------------------------------------------------------ CBOR

export type CborValue = number | boolean | string | Uint8Array | CborValue[] | Map<CborValue, CborValue>

function cborHead(major: number, length: number): Buffer {
  if (length < 24) return Buffer.from([(major << 5) | length])
  if (length < 0x100) return Buffer.from([(major << 5) | 24, length])
  if (length < 0x10000) {
    const out = Buffer.alloc(3)
    out[0] = (major << 5) | 25
    out.writeUInt16BE(length, 1)
    return out
  }
  const out = Buffer.alloc(5)
  out[0] = (major << 5) | 26
  out.writeUInt32BE(length, 1)
  return out
}

/** Definite-length CBOR of integers, booleans, text and byte strings, arrays and maps (in the given order). */
export function cbor(value: CborValue): Buffer {
  if (typeof value === 'boolean') return Buffer.from([value ? 0xf5 : 0xf4])
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || Math.abs(value) > 0xffffffff) throw new Error(`no CBOR for ${value}`)
    return value >= 0 ? cborHead(0, value) : cborHead(1, -1 - value)
  }
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8')
    return Buffer.concat([cborHead(3, bytes.length), bytes])
  }
  if (value instanceof Uint8Array) return Buffer.concat([cborHead(2, value.length), value])
  if (Array.isArray(value)) return Buffer.concat([cborHead(4, value.length), ...value.map(cbor)])
  const parts: Buffer[] = [cborHead(5, value.size)]
  for (const [k, v] of value) parts.push(cbor(k), cbor(v))
  return Buffer.concat(parts)
}

// ------------------------------------------------------------------------------------------ keys

const sha256 = (data: Uint8Array | string): Buffer => createHash('sha256').update(data).digest()
const b64url = (data: Uint8Array): string => Buffer.from(data).toString('base64url')

/** An ES256 public key as a COSE_Key (RFC 9053 §7.1.1): kty EC2, alg ES256, crv P-256, x, y. */
export function coseEc2PublicKey(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' })
  return cbor(
    new Map<CborValue, CborValue>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, Buffer.from(jwk.x!, 'base64url')],
      [-3, Buffer.from(jwk.y!, 'base64url')],
    ]),
  )
}

// ------------------------------------------------------------------------------------------ flags

export const FLAG_UP = 0x01
export const FLAG_UV = 0x04
export const FLAG_BE = 0x08
export const FLAG_BS = 0x10
export const FLAG_AT = 0x40

// ------------------------------------------------------------------------------------------ options

/** The parts of the server's options this authenticator reads. */
export type CreationOptions = {
  challenge: string
  rp: { id?: string; name: string }
  user: { id: string; name: string; displayName: string }
  pubKeyCredParams: { alg: number; type: string }[]
  excludeCredentials?: { id: string }[]
  authenticatorSelection?: { userVerification?: string; residentKey?: string }
}
export type RequestOptions = {
  challenge: string
  rpId?: string
  allowCredentials?: { id: string }[]
  userVerification?: string
}

export type RegistrationResponse = {
  id: string
  rawId: string
  type: 'public-key'
  response: { clientDataJSON: string; attestationObject: string; transports: string[] }
  authenticatorAttachment: 'platform' | 'cross-platform'
  clientExtensionResults: Record<string, unknown>
}
export type AuthenticationResponse = {
  id: string
  rawId: string
  type: 'public-key'
  response: { clientDataJSON: string; authenticatorData: string; signature: string; userHandle?: string }
  authenticatorAttachment: 'platform' | 'cross-platform'
  clientExtensionResults: Record<string, unknown>
}

export type Credential = {
  id: Buffer
  privateKey: KeyObject
  publicKey: KeyObject
  rpId: string
  userHandle: string
  signCount: number
}

/** What the "browser" and the authenticator do, each overridable to build a broken ceremony. */
export type CeremonyOverrides = {
  /** The origin the browser puts in clientDataJSON. */
  origin?: string
  /** The RP id whose hash goes into the authenticator data (default: the options' one). */
  rpId?: string
  /** The challenge echoed in clientDataJSON (default: the options' one). */
  challenge?: string
  /** clientDataJSON's `type`. */
  type?: string
  /** Whether the authenticator verified the user (default: the authenticator's setting). */
  userVerified?: boolean
  /** Sign with this key instead of the credential's own. */
  signWith?: KeyObject
}

export type AuthenticatorSettings = {
  /** Verifies its user (PIN, biometrics) whenever asked: sets UV. */
  userVerification?: boolean
  /** A synced passkey (backup eligible and backed up: BE, BS) rather than a device-bound key. */
  synced?: boolean
  /** Keeps a signature counter (device-bound keys usually do; synced passkeys send 0). */
  counter?: boolean
  /** The attestation statement format of registrations. */
  attestation?: 'none' | 'packed'
  aaguid?: Buffer
}

export class SoftwareAuthenticator {
  readonly credentials: Credential[] = []
  readonly settings: Required<AuthenticatorSettings>

  constructor(settings: AuthenticatorSettings = {}) {
    this.settings = {
      userVerification: settings.userVerification ?? false,
      synced: settings.synced ?? false,
      counter: settings.counter ?? !settings.synced,
      attestation: settings.attestation ?? 'none',
      aaguid: settings.aaguid ?? randomBytes(16),
    }
  }

  /** The last credential made. */
  get credential(): Credential {
    const last = this.credentials.at(-1)
    if (!last) throw new Error('no credential yet')
    return last
  }

  private flags(userVerified: boolean, extra = 0): number {
    let flags = FLAG_UP | extra
    if (userVerified) flags |= FLAG_UV
    if (this.settings.synced) flags |= FLAG_BE | FLAG_BS
    return flags
  }

  private static clientData(type: string, challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }), 'utf8')
  }

  /** navigator.credentials.create() with these options, as `PublicKeyCredential.toJSON()`. */
  create(
    options: CreationOptions,
    origin: string,
    overrides: CeremonyOverrides & { credentialId?: Buffer } = {},
  ): RegistrationResponse {
    if (!options.pubKeyCredParams.some((p) => p.alg === -7)) throw new Error('ES256 not offered')
    const rpId = overrides.rpId ?? options.rp.id ?? new URL(origin).hostname
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const id = overrides.credentialId ?? randomBytes(32)
    const credential: Credential = {
      id,
      privateKey,
      publicKey,
      rpId,
      userHandle: options.user.id,
      signCount: this.settings.counter ? 1 : 0,
    }
    const userVerified = overrides.userVerified ?? this.settings.userVerification
    const counter = Buffer.alloc(4)
    counter.writeUInt32BE(credential.signCount)
    const idLength = Buffer.alloc(2)
    idLength.writeUInt16BE(id.length)
    const authData = Buffer.concat([
      sha256(rpId),
      Buffer.from([this.flags(userVerified, FLAG_AT)]),
      counter,
      this.settings.aaguid,
      idLength,
      id,
      coseEc2PublicKey(publicKey),
    ])
    const clientDataJSON = SoftwareAuthenticator.clientData(
      overrides.type ?? 'webauthn.create',
      overrides.challenge ?? options.challenge,
      overrides.origin ?? origin,
    )
    const attStmt =
      this.settings.attestation === 'packed'
        ? new Map<CborValue, CborValue>([
            ['alg', -7],
            // Self attestation: signed with the credential's own key (WebAuthn §8.2).
            [
              'sig',
              sign(
                'sha256',
                Buffer.concat([authData, sha256(clientDataJSON)]),
                overrides.signWith ?? privateKey,
              ),
            ],
          ])
        : new Map<CborValue, CborValue>()
    const attestationObject = cbor(
      new Map<CborValue, CborValue>([
        ['fmt', this.settings.attestation],
        ['attStmt', attStmt],
        ['authData', authData],
      ]),
    )
    this.credentials.push(credential)
    return {
      id: b64url(id),
      rawId: b64url(id),
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientDataJSON),
        attestationObject: b64url(attestationObject),
        transports: this.settings.synced ? ['hybrid', 'internal'] : ['usb'],
      },
      authenticatorAttachment: this.settings.synced ? 'platform' : 'cross-platform',
      clientExtensionResults: {},
    }
  }

  /**
   * navigator.credentials.get(): the first allowed credential it holds for the RP, or (no
   * allowCredentials: a discoverable login) its newest for the RP, with its user handle.
   */
  get(
    options: RequestOptions,
    origin: string,
    overrides: CeremonyOverrides & {
      credential?: Credential
      /** Sign count to report (default: the next one, or 0 without a counter). */
      signCount?: number
      userHandle?: string | null
    } = {},
  ): AuthenticationResponse {
    const rpId = options.rpId ?? new URL(origin).hostname
    const allowed = options.allowCredentials?.map((c) => c.id)
    const credential =
      overrides.credential ??
      this.credentials.findLast(
        (c) =>
          c.rpId === rpId &&
          (allowed === undefined || allowed.length === 0 || allowed.includes(b64url(c.id))),
      )
    if (!credential) throw new Error('NotAllowedError: no credential for these options')
    if (overrides.signCount !== undefined) credential.signCount = overrides.signCount
    else if (this.settings.counter) credential.signCount += 1
    const userVerified = overrides.userVerified ?? this.settings.userVerification
    const counter = Buffer.alloc(4)
    counter.writeUInt32BE(credential.signCount)
    const authData = Buffer.concat([
      sha256(overrides.rpId ?? credential.rpId),
      Buffer.from([this.flags(userVerified)]),
      counter,
    ])
    const clientDataJSON = SoftwareAuthenticator.clientData(
      overrides.type ?? 'webauthn.get',
      overrides.challenge ?? options.challenge,
      overrides.origin ?? origin,
    )
    const signature = sign(
      'sha256',
      Buffer.concat([authData, sha256(clientDataJSON)]),
      overrides.signWith ?? credential.privateKey,
    )
    // A discoverable login returns the user handle; one with allowCredentials may too.
    const userHandle =
      overrides.userHandle === null ? undefined : (overrides.userHandle ?? credential.userHandle)
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientDataJSON),
        authenticatorData: b64url(authData),
        signature: b64url(signature),
        ...(userHandle === undefined ? {} : { userHandle }),
      },
      authenticatorAttachment: this.settings.synced ? 'platform' : 'cross-platform',
      clientExtensionResults: {},
    }
  }
}

/** The clientDataJSON of a response, decoded. */
export function clientDataOf(response: { response: { clientDataJSON: string } }): Record<string, unknown> {
  return JSON.parse(Buffer.from(response.response.clientDataJSON, 'base64url').toString('utf8'))
}
