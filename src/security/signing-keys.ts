/**
 * Ed25519 signing keys for access tokens and checkpoints. Either one key given by the
 * environment (PKCS8 PEM) plus, optionally, public keys that are only accepted (the previous
 * key after a rotation, or the next one before it: how instances sharing a store rotate without
 * refusing each other's tokens), or keys generated on first start and kept in
 * `<dataDir>/keys/signing-keys.json` (0600): the current key plus previous ones, which stay in
 * the JWKS so tokens they signed keep verifying until they expire.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
} from 'node:crypto'
import { chmod, link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { calculateJwkThumbprint, importJWK, type JWK } from 'jose'

export type SigningKeys = {
  /** The key new tokens are signed with; changes on `rotate()`. */
  readonly current: { kid: string; privateKey: CryptoKey }
  /** Public keys only, current first, as served at `/.well-known/jwks.json`. */
  jwks(): { keys: JWK[] }
  publicKey(kid: string): CryptoKey | undefined
  /** Makes a new current key; the old one stays as previous (at most `MAX_KEYS` in all). */
  rotate(): Promise<void>
}

/** Current plus previous keys kept. Rotating more often than once per token lifetime drops live keys. */
export const MAX_KEYS = 3

type PrivateJwk = { kty: 'OKP'; crv: 'Ed25519'; x: string; d: string }
type StoredKey = { kid: string; created_at: string; private_jwk: PrivateJwk }
type KeysFile = { version: 1; current: StoredKey; previous: StoredKey[] }
type LoadedKey = { stored: StoredKey; privateKey: CryptoKey; publicKey: CryptoKey; publicJwk: JWK }
type VerifyingKey = { kid: string; publicKey: CryptoKey; publicJwk: JWK }

export function signingKeysPath(dataDir: string): string {
  return join(dataDir, 'keys', 'signing-keys.json')
}

export async function loadSigningKeys(options: {
  dataDir: string
  privateKeyPem?: string
  /** Further public keys (concatenated SPKI PEM blocks) to accept; only with `privateKeyPem`. */
  verifyPublicKeysPem?: string
}): Promise<SigningKeys> {
  if (options.privateKeyPem !== undefined) {
    const key = await loadKey({ private_jwk: pemToJwk(options.privateKeyPem), created_at: now() })
    const accepted = await Promise.all(splitPem(options.verifyPublicKeysPem ?? '').map(loadPublicKey))
    return keyRing(
      [key],
      null,
      accepted.filter((extra) => extra.kid !== key.stored.kid),
    )
  }
  if (options.verifyPublicKeysPem)
    throw new Error(
      'JWT_VERIFY_PUBLIC_KEYS_PEM needs JWT_PRIVATE_KEY_PEM: generated keys rotate by themselves',
    )
  const path = signingKeysPath(options.dataDir)
  const file = (await readKeysFile(path)) ?? (await createKeysFile(path))
  const loaded = await loadFileKeys(path, file)
  return keyRing(loaded, path, [])
}

function keyRing(initial: LoadedKey[], path: string | null, accepted: VerifyingKey[]): SigningKeys {
  let ring = initial
  let rotation: Promise<void> = Promise.resolve()

  async function rotateNow(): Promise<void> {
    if (path === null) {
      throw new Error('The signing key is given by the environment; rotate it by changing the environment')
    }
    const fresh = await loadKey({ private_jwk: newPrivateJwk(), created_at: now() })
    const next = [fresh, ...ring].slice(0, MAX_KEYS)
    // Persist before switching: a token signed by a key that is not on disk would stop
    // verifying after a restart.
    await writeAtomic(path, serialize(next), 'replace')
    ring = next
  }

  return {
    get current() {
      return { kid: ring[0].stored.kid, privateKey: ring[0].privateKey }
    },
    jwks: () => ({ keys: [...ring, ...accepted].map((k) => ({ ...k.publicJwk })) }),
    publicKey: (kid) =>
      ring.find((k) => k.stored.kid === kid)?.publicKey ?? accepted.find((k) => k.kid === kid)?.publicKey,
    rotate(): Promise<void> {
      // Serialized so two concurrent rotations cannot lose each other's key.
      const run = rotation.then(rotateNow)
      rotation = run.catch(() => undefined)
      return run
    },
  }
}

function newPrivateJwk(): PrivateJwk {
  return toPrivateJwk(generateKeyPairSync('ed25519').privateKey)
}

function pemToJwk(pem: string): PrivateJwk {
  let key: KeyObject
  try {
    key = createPrivateKey({ key: pem, format: 'pem' })
  } catch (cause) {
    throw new Error('The signing private key is not a valid PKCS8 PEM', { cause })
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`The signing private key must be Ed25519, not ${key.asymmetricKeyType}`)
  }
  return toPrivateJwk(key)
}

function splitPem(pems: string): string[] {
  return pems.match(/-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/g) ?? []
}

async function loadPublicKey(pem: string): Promise<VerifyingKey> {
  let key: KeyObject
  try {
    key = createPublicKey({ key: pem, format: 'pem' })
  } catch (cause) {
    throw new Error('A key in JWT_VERIFY_PUBLIC_KEYS_PEM is not a valid PEM public key', { cause })
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`The keys in JWT_VERIFY_PUBLIC_KEYS_PEM must be Ed25519, not ${key.asymmetricKeyType}`)
  }
  const { x } = key.export({ format: 'jwk' })
  const jwk: JWK = { kty: 'OKP', crv: 'Ed25519', x }
  const kid = await calculateJwkThumbprint(jwk, 'sha256')
  return {
    kid,
    publicKey: (await importJWK(jwk, 'EdDSA')) as CryptoKey,
    publicJwk: { ...jwk, kid, alg: 'EdDSA', use: 'sig' },
  }
}

function toPrivateJwk(key: KeyObject): PrivateJwk {
  const jwk = key.export({ format: 'jwk' })
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x!, d: jwk.d! }
}

function now(): string {
  return new Date().toISOString()
}

/** A new key gets its kid here (RFC 7638 thumbprint); a stored one must already carry exactly that kid. */
async function loadKey(stored: Omit<StoredKey, 'kid'> & { kid?: string }): Promise<LoadedKey> {
  const { kty, crv, x, d } = stored.private_jwk
  // Derive the public half from `d` instead of trusting `x`: a mismatched pair would sign
  // tokens that no one can verify.
  const derived = createPublicKey(createPrivateKey({ key: { kty, crv, x, d }, format: 'jwk' })).export({
    format: 'jwk',
  })
  if (derived.x !== x) throw new Error('public key "x" does not match private key "d"')
  const publicJwk: JWK = { kty, crv, x }
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256')
  if (stored.kid !== undefined && stored.kid !== kid)
    throw new Error(`kid ${stored.kid} is not the key's thumbprint`)
  // Non-extractable: the CryptoKey handles cannot be exported again from the process.
  const privateKey = (await importJWK({ kty, crv, x, d }, 'EdDSA', { extractable: false })) as CryptoKey
  const publicKey = (await importJWK(publicJwk, 'EdDSA')) as CryptoKey
  return {
    stored: { kid, created_at: stored.created_at, private_jwk: { kty, crv, x, d } },
    privateKey,
    publicKey,
    publicJwk: { ...publicJwk, kid, alg: 'EdDSA', use: 'sig' },
  }
}

async function readKeysFile(path: string): Promise<KeysFile | null> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new Error(`Cannot read signing keys file ${path}`, { cause: error })
  }
  try {
    return parseKeysFile(JSON.parse(text))
  } catch (cause) {
    throw corrupt(path, cause)
  }
}

async function loadFileKeys(path: string, file: KeysFile): Promise<LoadedKey[]> {
  try {
    return await Promise.all([file.current, ...file.previous].map(loadKey))
  } catch (cause) {
    throw corrupt(path, cause)
  }
}

function corrupt(path: string, cause: unknown): Error {
  const reason = cause instanceof Error ? cause.message : String(cause)
  // Never regenerate over it: that would silently invalidate every issued token and lose the key.
  return new Error(
    `Signing keys file ${path} is corrupt (${reason}); restore it from a backup or remove it`,
    {
      cause,
    },
  )
}

function parseKeysFile(value: unknown): KeysFile {
  const file = value as KeysFile
  if (typeof file !== 'object' || file === null || file.version !== 1) throw new Error('unknown format')
  if (!Array.isArray(file.previous)) throw new Error('"previous" is not an array')
  for (const key of [file.current, ...file.previous]) {
    const jwk = key?.private_jwk
    const valid =
      typeof key?.kid === 'string' &&
      typeof key.created_at === 'string' &&
      jwk?.kty === 'OKP' &&
      jwk.crv === 'Ed25519' &&
      typeof jwk.x === 'string' &&
      typeof jwk.d === 'string'
    if (!valid) throw new Error('a key entry is malformed')
  }
  return file
}

async function createKeysFile(path: string): Promise<KeysFile> {
  const key = await loadKey({ private_jwk: newPrivateJwk(), created_at: now() })
  const written = await writeAtomic(path, serialize([key]), 'create')
  if (written) return JSON.parse(serialize([key])) as KeysFile
  // Another process created it first: use its keys so both sign with the same key.
  const theirs = await readKeysFile(path)
  if (theirs === null) throw new Error(`Signing keys file ${path} vanished while being created`)
  return theirs
}

function serialize(keys: LoadedKey[]): string {
  const file: KeysFile = { version: 1, current: keys[0].stored, previous: keys.slice(1).map((k) => k.stored) }
  return `${JSON.stringify(file, null, 2)}\n`
}

/**
 * Writes a secret file so that readers see either the old or the new whole file: a 0600 temp
 * file, fsynced, then renamed ('replace') or hard-linked ('create', which fails instead of
 * overwriting a file someone else just created). Returns false when 'create' lost that race.
 */
async function writeAtomic(path: string, data: string, mode: 'create' | 'replace'): Promise<boolean> {
  const dir = dirname(path)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await chmod(dir, 0o700) // the directory holds private keys: owner only, even if it existed
  const temp = `${path}.${process.pid}.${randomUUID()}.tmp`
  const handle = await open(temp, 'wx', 0o600)
  try {
    await handle.writeFile(data)
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    if (mode === 'replace') {
      await rename(temp, path)
    } else {
      try {
        await link(temp, path)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
        throw error
      }
    }
  } finally {
    await unlink(temp).catch(() => undefined)
  }
  const dirHandle = await open(dir, 'r')
  await dirHandle.sync().finally(() => dirHandle.close()) // make the new directory entry durable
  return true
}
