// Argon2id password hashing to PHC strings. Two interchangeable backends: `native` (node:crypto
// argon2, Node >= 24.7, runs on the libuv threadpool) and `wasm` (hash-wasm in worker threads).
// Neither hashes on the main thread, so a login burst never stalls the event loop.
import * as nodeCrypto from 'node:crypto'
import { type Argon2Input, createArgon2WorkerPool } from './argon2-pool.ts'
import {
  type Argon2Params,
  formatArgon2idPhc,
  isSupportedArgon2Params,
  parseArgon2idPhc,
  sameParams,
} from './phc.ts'

export type { Argon2Params } from './phc.ts'

export type PasswordHasher = {
  /** Which backend derives the hashes (`auto` resolved): logged at start. */
  readonly backend: 'native' | 'wasm'
  hash(password: string): Promise<string>
  verify(phc: string, password: string): Promise<boolean>
  needsRehash(phc: string): boolean
  dummyVerify(password: string): Promise<void>
  close(): Promise<void>
}

export type PasswordBackend = 'native' | 'wasm' | 'auto'

export type PasswordHasherOptions = { backend?: PasswordBackend; params?: Argon2Params }

// OWASP's argon2id baseline, as API.md asks: 19 MiB, 2 passes, 1 lane.
export const defaultArgon2Params: Argon2Params = { memoryKiB: 19456, passes: 2, parallelism: 1 }

const saltLength = 16
const hashLength = 32

type Backend = {
  name: 'native' | 'wasm'
  derive(input: Argon2Input): Promise<Uint8Array>
  close(): Promise<void>
}

/** Node >= 24.7 and Bun have `crypto.argon2`; Deno 2 does not, and hashes with the wasm backend. */
export function hasNativeArgon2(): boolean {
  // A namespace import, so this module still loads on runtimes without the export.
  return typeof nodeCrypto.argon2 === 'function'
}

export function createPasswordHasher(options: PasswordHasherOptions = {}): PasswordHasher {
  const params = options.params ?? defaultArgon2Params
  if (!isSupportedArgon2Params(params)) throw new RangeError('unsupported argon2 parameters')
  const backend = createBackend(options.backend ?? 'auto')
  let closed = false

  function derive(input: Argon2Input): Promise<Uint8Array> {
    if (closed) return Promise.reject(new Error('password hasher is closed'))
    return backend.derive(input)
  }

  async function hash(password: string): Promise<string> {
    // hash-wasm refuses an empty message; refusing it on both backends keeps them interchangeable.
    if (password === '') throw new RangeError('password must not be empty')
    const salt = new Uint8Array(nodeCrypto.randomBytes(saltLength))
    const digest = await derive({ password: utf8(password), salt, params, hashLength })
    return formatArgon2idPhc({ params, salt, hash: digest })
  }

  async function verify(phc: string, password: string): Promise<boolean> {
    const stored = parseArgon2idPhc(phc)
    if (!stored) {
      // No hash at all (a passwordless account has ''): as slow as a wrong password all the same.
      await dummyVerify(password)
      return false
    }
    // Recompute with the stored parameters, so hashes made under older settings still verify.
    // An empty password never matches but still pays for a full derivation (with a stand-in).
    const actual = await derive({
      password: utf8(password === '' ? '\0' : password),
      salt: stored.salt,
      params: stored.params,
      hashLength: stored.hash.length,
    })
    return nodeCrypto.timingSafeEqual(actual, stored.hash) && password !== ''
  }

  function needsRehash(phc: string): boolean {
    const stored = parseArgon2idPhc(phc)
    if (!stored) return true
    return (
      !sameParams(stored.params, params) ||
      stored.salt.length !== saltLength ||
      stored.hash.length !== hashLength
    )
  }

  // Computed once at startup from a random password nobody knows: verifying against it costs
  // what a real verification costs, so an unknown username is not revealed by a faster answer.
  const dummyPhc = hash(nodeCrypto.randomBytes(32).toString('base64'))
  dummyPhc.catch(() => {}) // awaited (and its error seen) in dummyVerify; never an unhandled rejection

  async function dummyVerify(password: string): Promise<void> {
    await verify(await dummyPhc, password)
  }

  async function close(): Promise<void> {
    closed = true
    await backend.close()
  }

  return { backend: backend.name, hash, verify, needsRehash, dummyVerify, close }
}

function createBackend(choice: PasswordBackend): Backend {
  if (choice === 'native' || (choice === 'auto' && hasNativeArgon2())) {
    if (!hasNativeArgon2()) throw new Error('node:crypto argon2 is not available (needs Node >= 24.7)')
    return { name: 'native', derive: deriveNative, close: async () => {} }
  }
  const pool = createArgon2WorkerPool()
  return { name: 'wasm', derive: pool.derive, close: pool.close }
}

function deriveNative({ password, salt, params, hashLength }: Argon2Input): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    nodeCrypto.argon2(
      'argon2id',
      {
        message: password,
        nonce: salt,
        memory: params.memoryKiB,
        passes: params.passes,
        parallelism: params.parallelism,
        tagLength: hashLength,
      },
      (error, key) => (error ? reject(error) : resolve(key)),
    )
  })
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text)
}
