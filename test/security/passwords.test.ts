import { argon2id, argon2Verify } from 'hash-wasm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Argon2Params,
  createPasswordHasher,
  hasNativeArgon2,
  type PasswordHasher,
} from '../../src/security/passwords.ts'

// phc-winner-argon2 reference vector (src/test.c): argon2id v1.3, m=2^16, t=2, p=1, "password"/"somesalt".
const referencePhc = '$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc'
const phcShape = /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/
const heavy: Argon2Params = { memoryKiB: 65536, passes: 3, parallelism: 1 }

// Node >= 24.7 and Bun have node:crypto argon2; Deno 2 has not, and hashes with hash-wasm in worker
// threads. Each runtime must have what it is known to have: a Node or Bun without it fails here
// rather than quietly hashing on the slower backend.
const onDeno = 'deno' in process.versions
const expectedBackend = onDeno ? 'wasm' : 'native'
const backends = onDeno ? (['wasm'] as const) : (['native', 'wasm'] as const)

const hashers: PasswordHasher[] = []
function hasher(backend: 'native' | 'wasm' | 'auto', params?: Argon2Params): PasswordHasher {
  const created = createPasswordHasher({ backend, params })
  hashers.push(created)
  return created
}
afterAll(async () => {
  await Promise.all(hashers.map((h) => h.close()))
})

async function ticksWhile(work: () => Promise<unknown>): Promise<number> {
  let ticks = 0
  const timer = setInterval(() => ticks++, 2)
  try {
    await work()
  } finally {
    clearInterval(timer)
  }
  return ticks
}

it(`picks the ${expectedBackend} backend on this runtime (a Node needs >= 24.7: use \`npm test\`, not the machine node)`, () => {
  expect(hasNativeArgon2()).toBe(!onDeno)
  expect(hasher('auto').backend).toBe(expectedBackend)
  expect(hasher('wasm').backend).toBe('wasm')
  if (onDeno) expect(() => createPasswordHasher({ backend: 'native' })).toThrow(/not available/)
})

describe.each(backends)('%s backend', (backend) => {
  const passwords = hasher(backend)

  it('writes an argon2id PHC string with the default parameters', async () => {
    expect(await passwords.hash('correct horse')).toMatch(phcShape)
  })

  it('salts every hash', async () => {
    const [a, b] = await Promise.all([passwords.hash('same'), passwords.hash('same')])
    expect(a).not.toBe(b)
  })

  it('verifies the right password only', async () => {
    const phc = await passwords.hash('correct horse')
    expect(await passwords.verify(phc, 'correct horse')).toBe(true)
    expect(await passwords.verify(phc, 'correct horsE')).toBe(false)
    expect(await passwords.verify(phc, '')).toBe(false)
  })

  it('refuses to hash an empty password, and never verifies one', async () => {
    await expect(passwords.hash('')).rejects.toThrow(RangeError)
    const nulPhc = await passwords.hash('\0')
    expect(await passwords.verify(nulPhc, '\0')).toBe(true)
    expect(await passwords.verify(nulPhc, '')).toBe(false)
  })

  it('hashes unicode as UTF-8', async () => {
    const phc = await passwords.hash('pässwörd 🔑')
    expect(await argon2Verify({ password: 'pässwörd 🔑', hash: phc })).toBe(true)
  })

  it('verifies the reference vector (older parameters still verify)', async () => {
    expect(await passwords.verify(referencePhc, 'password')).toBe(true)
    expect(await passwords.verify(referencePhc, 'passwore')).toBe(false)
  })

  it('returns false, without throwing, on malformed PHC strings', async () => {
    const good = await passwords.hash('pw')
    const [, , , , salt, hash] = good.split('$')
    const malformed = [
      '',
      'not a hash',
      '$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy',
      good.replace('$argon2id$', '$argon2i$'),
      good.replace('$v=19$', '$v=16$'),
      good.replace('$v=19$', '$'),
      good.replace('m=19456,t=2,p=1', 't=2,m=19456,p=1'),
      good.replace('m=19456', 'm=0'),
      good.replace('m=19456', 'm=019456'),
      good.replace('m=19456', 'm=99999999'),
      good.replace('t=2', 't=1000'),
      good.replace('p=1', 'p=9999'),
      `${good}=`,
      `${good} `,
      `${good}$`,
      good.replace(`$${salt}$`, '$c2FsdA$'),
      good.replace(`$${hash}`, `$${hash.slice(0, 10)}`),
      good.replace(`$${hash}`, `$${hash.slice(0, -1)}!`),
      good.replace(`$${salt}$`, `$${salt.slice(0, -1)}-$`),
    ]
    for (const phc of malformed) {
      expect(await passwords.verify(phc, 'pw'), phc).toBe(false)
    }
  })

  it('keeps the event loop running while 4 hashes run', async () => {
    const heavyHasher = hasher(backend, heavy)
    const ticks = await ticksWhile(() => Promise.all([1, 2, 3, 4].map((n) => heavyHasher.hash(`pw${n}`))))
    // Hashing on the main thread lets the 2 ms timer fire at most between hashes (see the control below).
    expect(ticks).toBeGreaterThanOrEqual(20)
  })

  it('spends a full verification on dummyVerify', async () => {
    await expect(passwords.dummyVerify('whatever')).resolves.toBeUndefined()
  })
})

it('control: the same 4 hashes on the main thread starve the timer', async () => {
  const salt = new Uint8Array(16)
  const ticks = await ticksWhile(async () => {
    for (const n of [1, 2, 3, 4]) {
      await argon2id({
        password: `pw${n}`,
        salt,
        memorySize: heavy.memoryKiB,
        iterations: heavy.passes,
        parallelism: heavy.parallelism,
        hashLength: 32,
      })
    }
  })
  expect(ticks).toBeLessThan(20)
})

// Needs both backends: not on Deno (see the top), where the wasm one is held to hash-wasm above.
describe.skipIf(onDeno)('backends are interchangeable', () => {
  let native: PasswordHasher
  let wasm: PasswordHasher
  beforeAll(() => {
    native = hasher('native')
    wasm = hasher('wasm')
  })

  it('native hashes verify with wasm, and wasm hashes with native', async () => {
    const [fromNative, fromWasm] = await Promise.all([native.hash('s3cret pass'), wasm.hash('s3cret pass')])
    expect(await wasm.verify(fromNative, 's3cret pass')).toBe(true)
    expect(await native.verify(fromWasm, 's3cret pass')).toBe(true)
    expect(await wasm.verify(fromNative, 's3cret pasS')).toBe(false)
    expect(await native.verify(fromWasm, 's3cret pasS')).toBe(false)
  })

  it("agree with hash-wasm's own encoding for a fixed salt", async () => {
    const expected = await argon2id({
      password: 's3cret pass',
      salt: Uint8Array.from({ length: 16 }, (_, i) => i),
      memorySize: 19456,
      iterations: 2,
      parallelism: 1,
      hashLength: 32,
      outputType: 'encoded',
    })
    expect(expected).toMatch(phcShape)
    expect(await native.verify(expected, 's3cret pass')).toBe(true)
    expect(await wasm.verify(expected, 's3cret pass')).toBe(true)
    expect(await argon2Verify({ password: 's3cret pass', hash: await native.hash('s3cret pass') })).toBe(true)
  })
})

describe('needsRehash', () => {
  const current = hasher('auto')
  const stronger = hasher('auto', { memoryKiB: 65536, passes: 3, parallelism: 1 })

  it('is false for a hash made with the current parameters', async () => {
    expect(current.needsRehash(await current.hash('pw'))).toBe(false)
  })

  it('is true when the parameters differ', async () => {
    const phc = await current.hash('pw')
    expect(stronger.needsRehash(phc)).toBe(true)
    expect(current.needsRehash(referencePhc)).toBe(true)
    expect(current.needsRehash(phc.replace('t=2', 't=3'))).toBe(true)
  })

  it('is true for anything that is not an argon2id PHC string', () => {
    expect(
      current.needsRehash('$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaA'),
    ).toBe(true)
    expect(current.needsRehash('$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy')).toBe(true)
    expect(current.needsRehash('')).toBe(true)
  })
})

describe('createPasswordHasher', () => {
  it('refuses unsupported parameters', () => {
    expect(() => createPasswordHasher({ params: { memoryKiB: 4, passes: 2, parallelism: 1 } })).toThrow(
      RangeError,
    )
    expect(() => createPasswordHasher({ params: { memoryKiB: 19456, passes: 0, parallelism: 1 } })).toThrow(
      RangeError,
    )
  })

  it('refuses to work after close', async () => {
    const closing = createPasswordHasher({ backend: 'wasm' })
    await closing.close()
    await expect(closing.hash('pw')).rejects.toThrow(/closed/)
  })
})
