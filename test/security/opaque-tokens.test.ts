import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  hashOpaqueToken,
  newIdToken,
  newOpaqueToken,
  parseIdToken,
  readIdToken,
  sameHash,
} from '../../src/security/opaque-tokens.ts'

describe('opaque tokens', () => {
  it('carries 256 random bits as base64url and stores only its SHA-256', () => {
    const { token, hash } = newOpaqueToken()
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(Buffer.from(token, 'base64url')).toHaveLength(32)
    expect(hash).toBe(createHash('sha256').update(token).digest('hex'))
    expect(hashOpaqueToken(token)).toBe(hash)
  })

  it('issues `<id>.<secret>` and reads back the id and the hash of the secret', () => {
    const { token, hash } = newIdToken(7)
    const [id, secret] = token.split('.')
    expect(id).toBe('7')
    expect(hash).toBe(createHash('sha256').update(secret).digest('hex'))
    expect(parseIdToken(token)).toEqual({ id: 7, secret })
    expect(readIdToken(token)).toEqual({ id: 7, hash })
    expect(readIdToken(`7.${secret}x`)).toBeNull()
  })

  it('hashes a known vector (FIPS 180-2 "abc")', () => {
    expect(hashOpaqueToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  })

  it('never repeats', () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => newOpaqueToken().token))
    expect(tokens.size).toBe(1000)
  })

  it('recognises only the shape it issues: a canonical positive id, a dot, 43 base64url characters', () => {
    const secret = newOpaqueToken().token
    expect(parseIdToken(`12.${secret}`)).toEqual({ id: 12, secret })
    const bad = [
      '',
      'short',
      `1.${secret}x`,
      `1.${'a'.repeat(42)}=`,
      `.${secret}`,
      ` 7.${secret}`,
      `7 .${secret}`,
      `1e0.${secret}`,
      `0x1.${secret}`,
      `07.${secret}`,
      `0.${secret}`,
      `-1.${secret}`,
      `+1.${secret}`,
      `1.5.${secret}`,
      `99999999999999999.${secret}`,
      `7.${secret}\n`,
    ]
    for (const token of bad) expect(parseIdToken(token), JSON.stringify(token)).toBeNull()
  })
})

describe('sameHash', () => {
  it('compares in constant time, false on any difference or length mismatch', () => {
    const { hash } = newOpaqueToken()
    expect(sameHash(hash, hash)).toBe(true)
    expect(sameHash(hash, `${hash.slice(0, -1)}${hash.endsWith('0') ? '1' : '0'}`)).toBe(false)
    expect(sameHash(hash, hash.slice(0, -1))).toBe(false)
    expect(sameHash('', '')).toBe(true)
    expect(sameHash('é', 'e')).toBe(false)
  })
})
