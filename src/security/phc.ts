// Argon2id PHC strings: `$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>`, base64 without padding.

export type Argon2Params = { memoryKiB: number; passes: number; parallelism: number }

export type Argon2idHash = { params: Argon2Params; salt: Uint8Array; hash: Uint8Array }

// Bounds for parsing: a corrupted or planted record must not be able to make one verification
// allocate gigabytes or run for minutes. Far above anything this service writes.
const maxMemoryKiB = 1024 * 1024
const maxPasses = 64
const maxParallelism = 64
const saltBytes = { min: 8, max: 64 }
const hashBytes = { min: 16, max: 64 }

const phcPattern =
  /^\$argon2id\$v=19\$m=([1-9][0-9]{0,9}),t=([1-9][0-9]{0,9}),p=([1-9][0-9]{0,9})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/

export function isSupportedArgon2Params(params: Argon2Params): boolean {
  const { memoryKiB, passes, parallelism } = params
  if (![memoryKiB, passes, parallelism].every((n) => Number.isSafeInteger(n) && n >= 1)) return false
  if (memoryKiB > maxMemoryKiB || passes > maxPasses || parallelism > maxParallelism) return false
  // Argon2 needs at least 8 blocks of 1 KiB per lane.
  return memoryKiB >= 8 * parallelism
}

export function formatArgon2idPhc({ params, salt, hash }: Argon2idHash): string {
  const { memoryKiB, passes, parallelism } = params
  return `$argon2id$v=19$m=${memoryKiB},t=${passes},p=${parallelism}$${toB64(salt)}$${toB64(hash)}`
}

export function parseArgon2idPhc(phc: string): Argon2idHash | null {
  const match = phcPattern.exec(phc)
  if (!match) return null
  const params = { memoryKiB: Number(match[1]), passes: Number(match[2]), parallelism: Number(match[3]) }
  if (!isSupportedArgon2Params(params)) return null
  const salt = fromB64(match[4])
  const hash = fromB64(match[5])
  if (!salt || salt.length < saltBytes.min || salt.length > saltBytes.max) return null
  if (!hash || hash.length < hashBytes.min || hash.length > hashBytes.max) return null
  return { params, salt, hash }
}

export function sameParams(a: Argon2Params, b: Argon2Params): boolean {
  return a.memoryKiB === b.memoryKiB && a.passes === b.passes && a.parallelism === b.parallelism
}

function toB64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64').replace(/=+$/, '')
}

function fromB64(text: string): Uint8Array | null {
  const bytes = new Uint8Array(Buffer.from(text, 'base64'))
  // Buffer decoding is lenient; only the canonical encoding of some bytes is accepted.
  return toB64(bytes) === text ? bytes : null
}
