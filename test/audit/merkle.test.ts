/**
 * The Merkle proofs (src/audit/merkle.ts) against a second implementation written here straight
 * from RFC 9162 §2.1, and the standalone verifier (scripts/verify-proof.ts) against both.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createHash, generateKeyPairSync, type JsonWebKey, type KeyObject, sign } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  type InclusionProof,
  verifyConsistency,
  verifyInclusion,
  verifyTreeHead,
} from '../../scripts/verify-proof.ts'
import {
  consistencyProof,
  EMPTY_ROOT,
  inclusionProof,
  largestPowerOfTwoBelow,
  leafHash,
  nodeHash,
  rootOf,
  type SubtreeHash,
  subtreeHashFrom,
} from '../../src/audit/merkle.ts'

const SCRIPT = resolve(import.meta.dirname, '../../scripts/verify-proof.ts')
const MAX = 64

// --- The reference: RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1 as written, over arrays of leaf hashes.
const sha256 = (...parts: Buffer[]): Buffer => createHash('sha256').update(Buffer.concat(parts)).digest()
const split = (n: number): number => {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}
function mth(d: Buffer[]): Buffer {
  if (d.length === 0) return sha256()
  if (d.length === 1) return d[0]
  const k = split(d.length)
  return sha256(Buffer.from([1]), mth(d.slice(0, k)), mth(d.slice(k)))
}
function path(m: number, d: Buffer[]): Buffer[] {
  if (d.length === 1) return []
  const k = split(d.length)
  return m < k
    ? [...path(m, d.slice(0, k)), mth(d.slice(k))]
    : [...path(m - k, d.slice(k)), mth(d.slice(0, k))]
}
function subproof(m: number, d: Buffer[], b: boolean): Buffer[] {
  if (m === d.length) return b ? [] : [mth(d)]
  const k = split(d.length)
  return m <= k
    ? [...subproof(m, d.slice(0, k), b), mth(d.slice(k))]
    : [...subproof(m - k, d.slice(k), false), mth(d.slice(0, k))]
}
const proof = (m: number, d: Buffer[]): Buffer[] => subproof(m, d, true)

// What a verifier can tell of a tree size from a proof: only which side each element goes on
// (and, for consistency, whether the old root starts the path). Sizes that give the same shape
// give the same root from the same proof, so only the signed tree head binds the size.
function pathShape(m: number, n: number): string {
  if (n === 1) return ''
  const k = split(n)
  return m < k ? `${pathShape(m, k)}R` : `${pathShape(m - k, n - k)}L`
}
function proofShape(m: number, n: number, b = true): string {
  if (m === n) return b ? 'old root' : 'subtree'
  const k = split(n)
  return m <= k ? `${proofShape(m, k, b)}R` : `${proofShape(m - k, n - k, false)}L`
}

// --- The leaves: event hashes as the store keeps them, and the table storage would answer from.
const eventHashes = Array.from({ length: MAX }, (_, i) =>
  createHash('sha256').update(`event ${i}`).digest('hex'),
)
const leaves = eventHashes.map((hash) => sha256(Buffer.from([0]), Buffer.from(hash, 'hex')))
const hex = (hashes: Buffer[]): string[] => hashes.map((hash) => hash.toString('hex'))

type Request = { level: number; index: number }
/** An oracle over the first `size` leaves that fails the test on any request storage could not answer. */
function oracle(size: number): { subtree: SubtreeHash; requests: Request[] } {
  const requests: Request[] = []
  const subtree = subtreeHashFrom((level, index) => {
    requests.push({ level, index })
    const width = 2 ** level
    if (
      !Number.isInteger(level) ||
      level < 0 ||
      !Number.isInteger(index) ||
      index < 0 ||
      (index + 1) * width > size
    ) {
      throw new Error(`not an aligned perfect subtree of a tree of ${size}: level ${level}, index ${index}`)
    }
    return mth(leaves.slice(index * width, (index + 1) * width))
  })
  return { subtree, requests }
}

describe('hashes', () => {
  it('hashes the empty tree to SHA-256 of nothing (RFC 9162 §2.1.1)', () => {
    expect(EMPTY_ROOT.toString('hex')).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    )
    expect(rootOf(0, oracle(0).subtree).equals(EMPTY_ROOT)).toBe(true)
  })

  it('prefixes leaves with 0x00 and nodes with 0x01', () => {
    expect(leafHash(eventHashes[3]).equals(leaves[3])).toBe(true)
    expect(leafHash(eventHashes[3].toUpperCase()).equals(leaves[3])).toBe(true)
    expect(nodeHash(leaves[0], leaves[1]).equals(mth(leaves.slice(0, 2)))).toBe(true)
    expect(() => leafHash('abc')).toThrow()
    expect(() => leafHash('zz'.repeat(32))).toThrow()
  })

  it('splits at the largest power of two below n', () => {
    expect([2, 3, 4, 5, 8, 9, 2 ** 40 + 1].map(largestPowerOfTwoBelow)).toEqual([1, 2, 2, 4, 4, 8, 2 ** 40])
    expect(() => largestPowerOfTwoBelow(1)).toThrow()
  })

  it('gives the root of every size, asking only for aligned perfect subtrees inside the tree', () => {
    for (let size = 1; size <= MAX; size++) {
      const { subtree, requests } = oracle(size)
      expect(rootOf(size, subtree).equals(mth(leaves.slice(0, size))), `size ${size}`).toBe(true)
      // One stored hash per 1-bit of the size: the perfect subtrees the tree is made of.
      expect(requests.length).toBe(size.toString(2).replaceAll('0', '').length)
    }
  })
})

describe('inclusion proofs', () => {
  it('match the RFC for every index of every tree of 1 to 64 leaves, and verify', () => {
    for (let size = 1; size <= MAX; size++) {
      const d = leaves.slice(0, size)
      const root = mth(d).toString('hex')
      for (let index = 0; index < size; index++) {
        const proof = inclusionProof(index, size, oracle(size).subtree)
        expect(hex(proof), `index ${index} of ${size}`).toEqual(hex(path(index, d)))
        const answer = { leaf_index: index, tree_size: size, audit_path: hex(proof) }
        expect(verifyInclusion({ ...answer, leaf_hash: leaves[index].toString('hex') }, root)).toBe(true)
        expect(verifyInclusion({ ...answer, event_hash: eventHashes[index] }, root)).toBe(true)
      }
    }
  })

  it('are refused with any byte of the path flipped, or for another index, size or root', () => {
    let rejectedSizes = 0
    for (let size = 1; size <= 33; size++) {
      const root = mth(leaves.slice(0, size)).toString('hex')
      for (let index = 0; index < size; index++) {
        const auditPath = hex(inclusionProof(index, size, oracle(size).subtree))
        const good = {
          leaf_index: index,
          tree_size: size,
          leaf_hash: leaves[index].toString('hex'),
          audit_path: auditPath,
        }
        const refused = (changed: Partial<InclusionProof>, against = root): void =>
          expect(verifyInclusion({ ...good, ...changed }, against), JSON.stringify(changed)).toBe(false)
        auditPath.forEach((element, i) => {
          for (const byte of [0, 17, 31]) {
            const flipped = Buffer.from(element, 'hex')
            flipped[byte] ^= 0x01
            refused({ audit_path: auditPath.with(i, flipped.toString('hex')) })
          }
        })
        for (let other = 0; other < size + 2; other++) if (other !== index) refused({ leaf_index: other })
        for (let other = 0; other <= size + 3; other++) {
          if (other === size) continue
          const same = other > index && pathShape(index, other) === pathShape(index, size)
          expect(verifyInclusion({ ...good, tree_size: other }, root), `size ${other}`).toBe(same)
          if (!same) rejectedSizes++
        }
        refused({ leaf_hash: leaves[(index + 1) % MAX].toString('hex') })
        refused({ event_hash: eventHashes[(index + 1) % MAX] })
        refused({}, mth(leaves.slice(0, size + 1)).toString('hex'))
        refused(
          {},
          root.replace(/^./, (c) => (c === '0' ? '1' : '0')),
        )
        refused({ audit_path: [...auditPath, leaves[0].toString('hex')] })
        refused({ audit_path: [leaves[0].toString('hex'), ...auditPath] })
        if (auditPath.length > 0) {
          refused({ audit_path: auditPath.slice(0, -1) })
          refused({ audit_path: auditPath.slice(1) })
        }
        refused({ audit_path: [...auditPath, 'not hex'] })
        refused({ leaf_hash: 'ab' })
        refused({ leaf_index: -1 })
        refused({ leaf_index: index + 0.5 })
      }
    }
    // Most wrong sizes are refused by the proof itself; the rest are the signed head's job.
    expect(rejectedSizes).toBeGreaterThan(2000)
  })

  it('are refused when the leaf hash and the event hash given disagree, or neither is given', () => {
    const root = mth(leaves.slice(0, 5)).toString('hex')
    const auditPath = hex(inclusionProof(2, 5, oracle(5).subtree))
    const proof = { leaf_index: 2, tree_size: 5, audit_path: auditPath }
    expect(
      verifyInclusion({ ...proof, leaf_hash: leaves[2].toString('hex'), event_hash: eventHashes[2] }, root),
    ).toBe(true)
    expect(
      verifyInclusion({ ...proof, leaf_hash: leaves[2].toString('hex'), event_hash: eventHashes[3] }, root),
    ).toBe(false)
    expect(verifyInclusion(proof, root)).toBe(false)
    // The event hash itself is not its leaf hash: a proof cannot be replayed for an inner node.
    expect(verifyInclusion({ ...proof, leaf_hash: eventHashes[2] }, root)).toBe(false)
  })

  it('refuse an index outside the tree', () => {
    expect(() => inclusionProof(5, 5, oracle(5).subtree)).toThrow(RangeError)
    expect(() => inclusionProof(0, 0, oracle(0).subtree)).toThrow(RangeError)
    expect(() => inclusionProof(-1, 5, oracle(5).subtree)).toThrow(RangeError)
  })
})

describe('consistency proofs', () => {
  it('match the RFC for every 1 <= m <= n <= 64, and verify', () => {
    for (let n = 1; n <= MAX; n++) {
      const secondRoot = mth(leaves.slice(0, n)).toString('hex')
      for (let m = 1; m <= n; m++) {
        const firstRoot = mth(leaves.slice(0, m)).toString('hex')
        const got = consistencyProof(m, n, oracle(n).subtree)
        expect(hex(got), `${m} -> ${n}`).toEqual(m === n ? [] : hex(proof(m, leaves.slice(0, n))))
        expect(
          verifyConsistency({ first: m, second: n, proof: hex(got) }, firstRoot, secondRoot),
          `${m} -> ${n}`,
        ).toBe(true)
      }
    }
  })

  it('are refused with any byte flipped, other sizes or roots, or a path cut or lengthened', () => {
    let rejectedSizes = 0
    for (let n = 1; n <= 33; n++) {
      const secondRoot = mth(leaves.slice(0, n)).toString('hex')
      for (let m = 1; m <= n; m++) {
        const firstRoot = mth(leaves.slice(0, m)).toString('hex')
        const good = { first: m, second: n, proof: hex(consistencyProof(m, n, oracle(n).subtree)) }
        const refused = (changed: Partial<typeof good>, roots = [firstRoot, secondRoot]): void =>
          expect(
            verifyConsistency({ ...good, ...changed }, roots[0], roots[1]),
            `${m} -> ${n} ${JSON.stringify(changed)}`,
          ).toBe(false)
        good.proof.forEach((element, i) => {
          const flipped = Buffer.from(element, 'hex')
          flipped[i % 32] ^= 0x80
          refused({ proof: good.proof.with(i, flipped.toString('hex')) })
        })
        for (let other = 1; other <= n + 2; other++) if (other !== m) refused({ first: other })
        for (let other = 1; other <= n + 2; other++) {
          if (other === n) continue
          const same = other > m && proofShape(m, other) === proofShape(m, n)
          expect(
            verifyConsistency({ ...good, second: other }, firstRoot, secondRoot),
            `second ${other}`,
          ).toBe(same)
          if (!same) rejectedSizes++
        }
        refused({}, [mth(leaves.slice(1, m + 1)).toString('hex'), secondRoot])
        refused({}, [firstRoot, mth(leaves.slice(0, n + 1)).toString('hex')])
        refused({ proof: [...good.proof, leaves[0].toString('hex')] })
        if (good.proof.length > 0) {
          refused({ proof: good.proof.slice(0, -1) })
          refused({ proof: good.proof.slice(1) })
        }
        refused({ first: 0 })
      }
    }
    expect(rejectedSizes).toBeGreaterThan(1000)
  })

  it('from the empty tree are empty, and only the empty root verifies', () => {
    const { subtree } = oracle(7)
    expect(consistencyProof(0, 7, subtree)).toEqual([])
    expect(consistencyProof(0, 0, oracle(0).subtree)).toEqual([])
    const empty = EMPTY_ROOT.toString('hex')
    const root7 = mth(leaves.slice(0, 7)).toString('hex')
    expect(verifyConsistency({ first: 0, second: 7, proof: [] }, empty, root7)).toBe(true)
    expect(verifyConsistency({ first: 0, second: 0, proof: [] }, empty, empty)).toBe(true)
    expect(verifyConsistency({ first: 0, second: 7, proof: [] }, root7, root7)).toBe(false)
    expect(verifyConsistency({ first: 0, second: 7, proof: [root7] }, empty, root7)).toBe(false)
    expect(verifyConsistency({ first: 0, second: 0, proof: [] }, empty, root7)).toBe(false)
    expect(() => consistencyProof(8, 7, subtree)).toThrow(RangeError)
  })
})

describe('subtreeHashFrom in a large tree', () => {
  // Every leaf the same: then the perfect subtree of 2^level leaves has one hash per level, which
  // the fake storage computes in O(level), and the proofs still verify against rootOf.
  const SIZE = 2 ** 20 + 12345
  const perLevel = [leafHash('ab'.repeat(32))]
  while (perLevel.length <= 21) perLevel.push(nodeHash(perLevel.at(-1)!, perLevel.at(-1)!))
  function storage(): { subtree: SubtreeHash; requests: () => number } {
    let requests = 0
    const subtree = subtreeHashFrom((level, index) => {
      requests++
      if (!Number.isInteger(index) || (index + 1) * 2 ** level > SIZE) {
        throw new Error(`level ${level}, index ${index}`)
      }
      return perLevel[level]
    })
    return { subtree, requests: () => requests }
  }
  const bound = 4 * Math.log2(SIZE)

  it.each([0, 1, 777, 2 ** 19, 2 ** 20 - 1, 2 ** 20, 2 ** 20 + 12000, SIZE - 1])(
    'asks for O(log n) stored hashes for the inclusion of leaf %i in 2^20 + 12345 leaves',
    (index) => {
      const { subtree, requests } = storage()
      const auditPath = inclusionProof(index, SIZE, subtree)
      const root = rootOf(SIZE, subtree)
      expect(requests()).toBeLessThan(bound)
      const answer = { leaf_index: index, tree_size: SIZE, leaf_hash: perLevel[0].toString('hex') }
      expect(verifyInclusion({ ...answer, audit_path: hex(auditPath) }, root.toString('hex'))).toBe(true)
    },
  )

  it.each([1, 3, 12345, 2 ** 19 + 777, 2 ** 20, 2 ** 20 + 1, SIZE - 1])(
    'asks for O(log n) stored hashes for the consistency of %i leaves with 2^20 + 12345',
    (first) => {
      const { subtree, requests } = storage()
      const got = consistencyProof(first, SIZE, subtree)
      const secondRoot = rootOf(SIZE, subtree)
      expect(requests()).toBeLessThan(bound)
      const firstRoot = rootOf(first, storage().subtree)
      expect(
        verifyConsistency(
          { first, second: SIZE, proof: hex(got) },
          hex([firstRoot])[0],
          hex([secondRoot])[0],
        ),
      ).toBe(true)
    },
  )
})

// --- Signed tree heads.
const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
function compactJws(header: object, payload: unknown, key: KeyObject | null, es256 = false): string {
  const input = `${b64url(header)}.${b64url(payload)}`
  if (!key) return `${input}.`
  const signature = es256
    ? sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
    : sign(null, Buffer.from(input), key)
  return `${input}.${signature.toString('base64url')}`
}
function ed25519(kid: string): { privateKey: KeyObject; jwk: JsonWebKey } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'EdDSA', use: 'sig' } }
}

describe('verifyTreeHead', () => {
  const key = ed25519('key-1')
  const other = ed25519('key-2')
  const jwks = { keys: [other.jwk, key.jwk] }
  const header = { alg: 'EdDSA', typ: 'checkpoint+jws', kid: 'key-1' }
  const head = { tree_size: 42, root_hash: leaves[0].toString('hex'), issued_at: '2025-01-01T00:00:00.000Z' }

  it('accepts a head signed by the key its kid names', () => {
    expect(verifyTreeHead(compactJws(header, head, key.privateKey), jwks)).toEqual(head)
    expect(
      verifyTreeHead(compactJws(header, { ...head, tree_size: 0, extra: 1 }, key.privateKey), jwks),
    ).toEqual({
      ...head,
      tree_size: 0,
    })
  })

  it('accepts ES256 with raw r||s signatures', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'ec-1' }
    const jws = compactJws({ alg: 'ES256', typ: 'checkpoint+jws', kid: 'ec-1' }, head, privateKey, true)
    expect(verifyTreeHead(jws, { keys: [jwk] })).toEqual(head)
    // The same key named as EdDSA is not the algorithm it was made for.
    const mislabelled = compactJws(
      { alg: 'EdDSA', typ: 'checkpoint+jws', kid: 'ec-1' },
      head,
      privateKey,
      true,
    )
    expect(verifyTreeHead(mislabelled, { keys: [jwk] })).toBeNull()
  })

  it('refuses alg none, another typ, another key, a changed payload and an unknown kid', () => {
    expect(verifyTreeHead(compactJws({ ...header, alg: 'none' }, head, null), jwks)).toBeNull()
    expect(verifyTreeHead(compactJws({ ...header, alg: 'none' }, head, key.privateKey), jwks)).toBeNull()
    expect(verifyTreeHead(compactJws({ ...header, alg: 'HS256' }, head, key.privateKey), jwks)).toBeNull()
    expect(verifyTreeHead(compactJws({ ...header, typ: 'JWT' }, head, key.privateKey), jwks)).toBeNull()
    expect(verifyTreeHead(compactJws({ alg: 'EdDSA', kid: 'key-1' }, head, key.privateKey), jwks)).toBeNull()
    expect(verifyTreeHead(compactJws(header, head, other.privateKey), jwks)).toBeNull()
    expect(verifyTreeHead(compactJws({ ...header, kid: 'key-3' }, head, key.privateKey), jwks)).toBeNull()
    expect(
      verifyTreeHead(compactJws({ alg: 'EdDSA', typ: 'checkpoint+jws' }, head, key.privateKey), jwks),
    ).toBeNull()
    expect(verifyTreeHead(compactJws({ ...header, crit: ['b64'] }, head, key.privateKey), jwks)).toBeNull()
    const [h, , s] = compactJws(header, head, key.privateKey).split('.')
    expect(verifyTreeHead(`${h}.${b64url({ ...head, tree_size: 43 })}.${s}`, jwks)).toBeNull()
    expect(verifyTreeHead(`${h}.${b64url(head)}.${s}.`, jwks)).toBeNull()
    expect(verifyTreeHead('', jwks)).toBeNull()
    expect(verifyTreeHead(compactJws(header, head, key.privateKey), { keys: [] })).toBeNull()
    expect(
      verifyTreeHead(compactJws(header, head, key.privateKey), { keys: [{ ...key.jwk, alg: 'ES256' }] }),
    ).toBeNull()
  })

  it('refuses a signed payload that is not a tree head', () => {
    for (const payload of [
      { ...head, tree_size: -1 },
      { ...head, tree_size: 1.5 },
      { ...head, tree_size: '42' },
      { ...head, root_hash: 'abc' },
      { ...head, issued_at: 1 },
      { tree_size: 1, root_hash: head.root_hash },
      [head],
      null,
    ]) {
      expect(
        verifyTreeHead(compactJws(header, payload, key.privateKey), jwks),
        JSON.stringify(payload),
      ).toBeNull()
    }
  })
})

describe('the command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'verify-proof-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const key = ed25519('cli-key')
  const size = 11
  const d = leaves.slice(0, size)
  const write = (name: string, content: unknown): string => {
    const file = join(dir, name)
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content))
    return file
  }
  const headOf = (n: number) =>
    compactJws(
      { alg: 'EdDSA', typ: 'checkpoint+jws', kid: 'cli-key' },
      {
        tree_size: n,
        root_hash: mth(leaves.slice(0, n)).toString('hex'),
        issued_at: '2025-01-01T00:00:00.000Z',
      },
      key.privateKey,
    )
  const jwksFile = write('jwks.json', { keys: [key.jwk] })
  const headFile = write('head.jws', `${headOf(size)}\n`)
  const inclusion = {
    leaf_index: 6,
    tree_size: size,
    leaf_hash: leaves[6].toString('hex'),
    audit_path: hex(path(6, d)),
  }
  const run = (...args: string[]) => {
    const result = spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', timeout: 60_000 })
    return { ...result, json: () => JSON.parse(result.stdout) }
  }

  it('exits 0 for a proof that verifies and 1 for one that does not', () => {
    const ok = run('--jwks', jwksFile, '--head', headFile, '--inclusion', write('good.json', inclusion))
    expect(ok.status, ok.stderr).toBe(0)
    expect(ok.json()).toMatchObject({
      ok: true,
      head: { tree_size: size },
      inclusion: { ok: true, leaf_index: 6 },
    })
    expect(ok.stdout.trim().split('\n')).toHaveLength(1)

    const bad = run(
      '--jwks',
      jwksFile,
      '--head',
      headFile,
      '--inclusion',
      write('bad.json', { ...inclusion, leaf_index: 7 }),
    )
    expect(bad.status, bad.stderr).toBe(1)
    expect(bad.json()).toMatchObject({ ok: false, inclusion: { ok: false } })
  })

  it('checks consistency with an older head, and that the inclusion proof is for the head', () => {
    const consistency = { first: 5, second: size, proof: hex(proof(5, d)) }
    const old = write('old.jws', headOf(5))
    const ok = run(
      '--jwks',
      jwksFile,
      '--head',
      headFile,
      '--consistency',
      write('c.json', consistency),
      '--old-head',
      old,
    )
    expect(ok.status, ok.stderr).toBe(0)
    expect(ok.json()).toMatchObject({ ok: true, consistency: { ok: true, first: 5, second: size } })

    const otherOld = write('old6.jws', headOf(6))
    const bad = run(
      '--jwks',
      jwksFile,
      '--head',
      headFile,
      '--consistency',
      write('c.json', consistency),
      '--old-head',
      otherOld,
    )
    expect(bad.status).toBe(1)

    const forOldHead = {
      leaf_index: 2,
      tree_size: 5,
      leaf_hash: leaves[2].toString('hex'),
      audit_path: hex(path(2, d.slice(0, 5))),
    }
    const stale = run('--jwks', jwksFile, '--head', headFile, '--inclusion', write('stale.json', forOldHead))
    expect(stale.status).toBe(1)
    expect(
      run('--jwks', jwksFile, '--head', old, '--inclusion', write('stale.json', forOldHead)).status,
    ).toBe(0)

    const forged = write('forged.jws', headOf(size).replace(/\.[^.]+$/, '.AAAA'))
    expect(run('--jwks', jwksFile, '--head', forged).status).toBe(1)
  })

  it('exits 2 on bad usage', () => {
    for (const args of [
      [],
      ['--head', headFile],
      ['--jwks', jwksFile, '--head', headFile, '--bogus'],
      ['--jwks', jwksFile, '--head', headFile, '--consistency', write('c2.json', {})],
      ['--jwks', join(dir, 'missing.json'), '--head', headFile],
      ['--jwks', jwksFile, '--head', headFile, '--inclusion', write('notjson.json', '{')],
    ]) {
      const result = run(...args)
      expect(result.status, args.join(' ')).toBe(2)
      expect(result.stderr).toContain('usage: node verify-proof.ts')
    }
  })

  it('fetches the JWKS from a URL', async () => {
    const server = createServer((_request, response) => response.end(JSON.stringify({ keys: [key.jwk] })))
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`
      const child = spawn(process.execPath, [SCRIPT, '--jwks', url, '--head', headFile], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stdout = ''
      child.stdout.on('data', (chunk) => {
        stdout += chunk
      })
      const code = await new Promise((done) => child.on('close', done))
      expect(code).toBe(0)
      expect(JSON.parse(stdout)).toMatchObject({ ok: true, head: { tree_size: size } })
    } finally {
      server.close()
    }
  })

  it('needs nothing but Node built-ins', () => {
    const imports = [...readFileSync(SCRIPT, 'utf8').matchAll(/^import .* from '([^']+)'/gm)].map((m) => m[1])
    expect(imports.length).toBeGreaterThan(0)
    for (const specifier of imports) expect(specifier).toMatch(/^node:/)
    expect(readFileSync(SCRIPT, 'utf8')).not.toMatch(/\bimport\(|require\(/)
  })
})
