import { createPrivateKey, generateKeyPairSync } from 'node:crypto'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { CompactSign, calculateJwkThumbprint, compactVerify } from 'jose'
import { beforeEach, describe, expect, it } from 'vitest'
import { loadSigningKeys, MAX_KEYS, signingKeysPath } from '../../src/security/signing-keys.ts'
import { tempDir } from '../support/temp.ts'

// RFC 8037 appendix A: Ed25519 key, its RFC 7638 thumbprint and a deterministic JWS.
const RFC8037 = {
  jwk: {
    kty: 'OKP',
    crv: 'Ed25519',
    d: 'nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A',
    x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo',
  },
  thumbprint: 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k',
  jws: 'eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg',
}

let dataDir: string
beforeEach(async () => {
  dataDir = tempDir('signing-keys')
})

describe('signing keys from the data directory', () => {
  it('generates a key on first start, in a 0600 file in a 0700 directory', async () => {
    const keys = await loadSigningKeys({ dataDir })
    const path = signingKeysPath(dataDir)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect((await stat(dirname(path))).mode & 0o777).toBe(0o700)
    const file = JSON.parse(await readFile(path, 'utf8'))
    expect(file.current.kid).toBe(keys.current.kid)
    expect(file.previous).toEqual([])
    expect(keys.current.kid).toBe(await calculateJwkThumbprint(keys.jwks().keys[0]))
  })

  it('loads the same key on the next start', async () => {
    const first = await loadSigningKeys({ dataDir })
    const second = await loadSigningKeys({ dataDir })
    expect(second.current.kid).toBe(first.current.kid)
    expect(second.jwks()).toEqual(first.jwks())
  })

  it('two processes starting at once end up with one key', async () => {
    const [a, b] = await Promise.all([loadSigningKeys({ dataDir }), loadSigningKeys({ dataDir })])
    expect(a.current.kid).toBe(b.current.kid)
  })

  it('serves only public keys in the JWKS', async () => {
    const keys = await loadSigningKeys({ dataDir })
    const [jwk] = keys.jwks().keys
    expect(jwk).toEqual({
      kty: 'OKP',
      crv: 'Ed25519',
      x: jwk.x,
      kid: keys.current.kid,
      alg: 'EdDSA',
      use: 'sig',
    })
    expect(jwk).not.toHaveProperty('d')
  })

  it('rotates: new current key, old ones kept as previous, at most MAX_KEYS, persisted', async () => {
    const keys = await loadSigningKeys({ dataDir })
    const kids = [keys.current.kid]
    for (let i = 0; i < MAX_KEYS + 1; i++) {
      await keys.rotate()
      kids.unshift(keys.current.kid)
    }
    expect(new Set(kids).size).toBe(kids.length)
    const kept = kids.slice(0, MAX_KEYS)
    expect(keys.jwks().keys.map((k) => k.kid)).toEqual(kept)
    expect(keys.publicKey(kids[MAX_KEYS])).toBeUndefined()
    expect(keys.publicKey(kids[1])).toBeDefined()
    const reloaded = await loadSigningKeys({ dataDir })
    expect(reloaded.jwks().keys.map((k) => k.kid)).toEqual(kept)
    expect((await stat(signingKeysPath(dataDir))).mode & 0o777).toBe(0o600)
  })

  it('concurrent rotations both land', async () => {
    const keys = await loadSigningKeys({ dataDir })
    await Promise.all([keys.rotate(), keys.rotate()])
    expect(keys.jwks().keys).toHaveLength(3)
    expect((await loadSigningKeys({ dataDir })).jwks()).toEqual(keys.jwks())
  })

  it.each([
    ['not JSON', '{"version": 1, "current": '],
    ['wrong shape', '{"version": 1, "current": {"kid": "x"}, "previous": []}'],
    ['unknown version', '{"version": 2}'],
  ])('refuses a corrupt file (%s), naming it, without overwriting it', async (_, content) => {
    const path = signingKeysPath(dataDir)
    await loadSigningKeys({ dataDir })
    await writeFile(path, content)
    await expect(loadSigningKeys({ dataDir })).rejects.toThrow(path)
    expect(await readFile(path, 'utf8')).toBe(content)
  })

  it('refuses a file whose public key or kid does not match the private key', async () => {
    const path = signingKeysPath(dataDir)
    await loadSigningKeys({ dataDir })
    const file = JSON.parse(await readFile(path, 'utf8'))
    const other = JSON.parse(JSON.stringify(file))
    other.current.private_jwk.x = RFC8037.jwk.x
    await writeFile(path, JSON.stringify(other))
    await expect(loadSigningKeys({ dataDir })).rejects.toThrow(/corrupt.*does not match/)
    other.current = { ...file.current, kid: 'not-the-thumbprint' }
    await writeFile(path, JSON.stringify(other))
    await expect(loadSigningKeys({ dataDir })).rejects.toThrow(/corrupt.*thumbprint/)
  })
})

describe('signing key from the environment', () => {
  const pem = createPrivateKey({ key: RFC8037.jwk, format: 'jwk' })
    .export({ format: 'pem', type: 'pkcs8' })
    .toString()

  it('uses the PEM, with the RFC 7638 thumbprint as kid (RFC 8037 A.3)', async () => {
    const keys = await loadSigningKeys({ dataDir, privateKeyPem: pem })
    expect(keys.current.kid).toBe(RFC8037.thumbprint)
    expect(keys.jwks().keys[0].x).toBe(RFC8037.jwk.x)
  })

  it('signs and verifies the RFC 8037 A.4 vector', async () => {
    const keys = await loadSigningKeys({ dataDir, privateKeyPem: pem })
    const payload = new TextEncoder().encode('Example of Ed25519 signing')
    const jws = await new CompactSign(payload)
      .setProtectedHeader({ alg: 'EdDSA' })
      .sign(keys.current.privateKey)
    expect(jws).toBe(RFC8037.jws)
    const { payload: verified } = await compactVerify(RFC8037.jws, keys.publicKey(RFC8037.thumbprint)!)
    expect(new TextDecoder().decode(verified)).toBe('Example of Ed25519 signing')
  })

  it('writes no file and refuses to rotate', async () => {
    const keys = await loadSigningKeys({ dataDir, privateKeyPem: pem })
    await expect(keys.rotate()).rejects.toThrow(/environment/)
    await expect(stat(signingKeysPath(dataDir))).rejects.toThrow(/ENOENT/)
  })

  it('refuses a malformed PEM and a non-Ed25519 key', async () => {
    await expect(loadSigningKeys({ dataDir, privateKeyPem: 'nope' })).rejects.toThrow(/PKCS8/)
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ format: 'pem', type: 'pkcs8' })
      .toString()
    await expect(loadSigningKeys({ dataDir, privateKeyPem: ec })).rejects.toThrow(/Ed25519/)
  })

  it('accepts the public keys of JWT_VERIFY_PUBLIC_KEYS_PEM, after its own in the JWKS, and signs with none of them', async () => {
    const spki = () =>
      generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString()
    const [first, second] = [spki(), spki()]
    const keys = await loadSigningKeys({
      dataDir,
      privateKeyPem: pem,
      verifyPublicKeysPem: `${first}\n${second}`,
    })
    const kids = keys.jwks().keys.map((key) => key.kid)
    expect(kids).toHaveLength(3)
    expect(kids[0]).toBe(RFC8037.thumbprint)
    expect(keys.current.kid).toBe(RFC8037.thumbprint)
    for (const kid of kids) expect(keys.publicKey(kid as string)).toBeDefined()
    expect(keys.jwks().keys.every((key) => !('d' in key))).toBe(true)
  })

  it('refuses verification keys that are not Ed25519 public keys, or that come without a private key', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .publicKey.export({ format: 'pem', type: 'spki' })
      .toString()
    await expect(loadSigningKeys({ dataDir, privateKeyPem: pem, verifyPublicKeysPem: ec })).rejects.toThrow(
      /must be Ed25519/,
    )
    const broken = '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'
    await expect(
      loadSigningKeys({ dataDir, privateKeyPem: pem, verifyPublicKeysPem: broken }),
    ).rejects.toThrow(/not a valid PEM public key/)
    await expect(loadSigningKeys({ dataDir, verifyPublicKeysPem: broken })).rejects.toThrow(
      /needs JWT_PRIVATE_KEY_PEM/,
    )
  })
})
