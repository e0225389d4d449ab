import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  hashOpaqueToken,
  hashRefreshToken,
  isOpaqueTokenShape,
  newOpaqueToken,
  newRefreshToken,
  sameHash,
} from '../../src/security/refresh-tokens.ts'

describe('opaque tokens', () => {
  it('carries 256 random bits as base64url and stores only its SHA-256', () => {
    const { token, hash } = newRefreshToken()
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(Buffer.from(token, 'base64url')).toHaveLength(32)
    expect(hash).toBe(createHash('sha256').update(token).digest('hex'))
    expect(hashRefreshToken(token)).toBe(hash)
    expect(hashOpaqueToken(token)).toBe(hash)
    expect(isOpaqueTokenShape(token)).toBe(true)
  })

  it('hashes a known vector (FIPS 180-2 "abc")', () => {
    expect(hashRefreshToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  })

  it('never repeats', () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => newOpaqueToken().token))
    expect(tokens.size).toBe(1000)
  })

  it('recognises only the shape it issues', () => {
    for (const bad of ['', 'short', `${newOpaqueToken().token}x`, `${'a'.repeat(42)}=`, 42, null]) {
      expect(isOpaqueTokenShape(bad)).toBe(false)
    }
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
