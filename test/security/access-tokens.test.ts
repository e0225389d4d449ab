import { createHmac, generateKeyPairSync, type KeyObject, randomUUID, sign } from 'node:crypto'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { beforeEach, describe, expect, it } from 'vitest'
import { createTokenService, type TokenService } from '../../src/security/access-tokens.ts'
import { loadSigningKeys, type SigningKeys } from '../../src/security/signing-keys.ts'
import { tempDir } from '../support/temp.ts'

const ISSUER = 'https://auth.test'
const AUDIENCE = 'auth-service'
const T0 = Date.UTC(2030, 0, 1) // ms

const b64url = (value: string | Uint8Array): string => Buffer.from(value).toString('base64url')
const encodeJson = (value: object): string => b64url(JSON.stringify(value))

/** Builds a compact JWS by hand and signs it with an Ed25519 KeyObject. */
function forgeEdDSA(header: object, payload: object, key: KeyObject): string {
  const input = `${encodeJson(header)}.${encodeJson(payload)}`
  return `${input}.${b64url(sign(null, Buffer.from(input), key))}`
}

let privateKey: KeyObject
let keys: SigningKeys
let service: TokenService
let clock: number

beforeEach(async () => {
  const pair = generateKeyPairSync('ed25519')
  privateKey = pair.privateKey
  const dataDir = tempDir('access-tokens')
  const privateKeyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  keys = await loadSigningKeys({ dataDir, privateKeyPem })
  clock = T0
  service = createTokenService({
    keys,
    issuer: ISSUER,
    audience: AUDIENCE,
    accessTtlSeconds: 900,
    now: () => clock,
  })
})

const user = { sub: '42', sid: 'session-1', role: 'user', amr: ['pwd'] }

function validClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = Math.floor(clock / 1000)
  return { iss: ISSUER, aud: AUDIENCE, ...user, iat, exp: iat + 900, jti: randomUUID(), ...overrides }
}
const accessHeader = (): object => ({ alg: 'EdDSA', kid: keys.current.kid, typ: 'at+jwt' })

describe('access tokens', () => {
  it('issues a token with the agreed header and claims', async () => {
    const { token, expiresIn, jti } = await service.issueAccess(user)
    const [header, payload] = token
      .split('.')
      .slice(0, 2)
      .map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()))
    expect(header).toEqual({ alg: 'EdDSA', kid: keys.current.kid, typ: 'at+jwt' })
    const iat = T0 / 1000
    expect(payload).toEqual({ iss: ISSUER, aud: AUDIENCE, ...user, iat, exp: iat + 900, jti })
    expect(expiresIn).toBe(900)
    expect(await service.verifyAccess(token)).toEqual(payload)
  })

  it('verifies with any JWT library given the JWKS', async () => {
    const { token } = await service.issueAccess(user)
    const jwks = createLocalJWKSet(JSON.parse(JSON.stringify(keys.jwks())))
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: ISSUER,
      audience: AUDIENCE,
      currentDate: new Date(clock),
    })
    expect(payload.sub).toBe('42')
    expect(protectedHeader.kid).toBe(keys.current.kid)
  })

  it('accepts a hand-signed token with valid claims (the forging helper is sound)', async () => {
    expect(await service.verifyAccess(forgeEdDSA(accessHeader(), validClaims(), privateKey))).not.toBeNull()
  })

  it('refuses alg none', async () => {
    const header = { alg: 'none', kid: keys.current.kid, typ: 'at+jwt' }
    expect(await service.verifyAccess(`${encodeJson(header)}.${encodeJson(validClaims())}.`)).toBeNull()
  })

  it('refuses HS256 signed with the public key bytes as the secret', async () => {
    const jwk = keys.jwks().keys[0]
    const secrets = [
      Buffer.from(jwk.x!, 'base64url'),
      Buffer.from(JSON.stringify(jwk)),
      Buffer.from(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()),
    ]
    for (const secret of secrets) {
      const header = { alg: 'HS256', kid: keys.current.kid, typ: 'at+jwt' }
      const input = `${encodeJson(header)}.${encodeJson(validClaims())}`
      const mac = createHmac('sha256', secret).update(input).digest('base64url')
      expect(await service.verifyAccess(`${input}.${mac}`)).toBeNull()
    }
  })

  it('refuses a tampered payload or signature', async () => {
    const { token } = await service.issueAccess(user)
    const [h, p, s] = token.split('.')
    const elevated = encodeJson({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), role: 'admin' })
    expect(await service.verifyAccess(`${h}.${elevated}.${s}`)).toBeNull()
    const sig = Buffer.from(s, 'base64url')
    sig[10] ^= 1
    expect(await service.verifyAccess(`${h}.${p}.${b64url(sig)}`)).toBeNull()
    expect(await service.verifyAccess(`${h}.${p}`)).toBeNull()
    expect(await service.verifyAccess('')).toBeNull()
    expect(await service.verifyAccess('a.b.c')).toBeNull()
  })

  it('refuses a token signed by another key, even under our kid', async () => {
    const stranger = generateKeyPairSync('ed25519').privateKey
    expect(await service.verifyAccess(forgeEdDSA(accessHeader(), validClaims(), stranger))).toBeNull()
  })

  it('refuses an unknown or missing kid', async () => {
    const unknown = { alg: 'EdDSA', kid: 'unknown', typ: 'at+jwt' }
    const missing = { alg: 'EdDSA', typ: 'at+jwt' }
    expect(await service.verifyAccess(forgeEdDSA(unknown, validClaims(), privateKey))).toBeNull()
    expect(await service.verifyAccess(forgeEdDSA(missing, validClaims(), privateKey))).toBeNull()
  })

  it('refuses an expired token, allowing at most 5 s of clock skew', async () => {
    const { token } = await service.issueAccess(user)
    clock = T0 + 904_000
    expect(await service.verifyAccess(token)).not.toBeNull()
    clock = T0 + 906_000
    expect(await service.verifyAccess(token)).toBeNull()
  })

  it('refuses a token that is not yet valid (nbf in the future)', async () => {
    const nbf = Math.floor(clock / 1000) + 60
    expect(
      await service.verifyAccess(forgeEdDSA(accessHeader(), validClaims({ nbf }), privateKey)),
    ).toBeNull()
  })

  it('refuses a wrong issuer or audience', async () => {
    for (const overrides of [{ iss: 'https://evil.test' }, { aud: 'other-service' }, { iss: undefined }]) {
      expect(
        await service.verifyAccess(forgeEdDSA(accessHeader(), validClaims(overrides), privateKey)),
      ).toBeNull()
    }
  })

  it('refuses a wrong or missing typ', async () => {
    for (const typ of ['JWT', 'challenge+jwt', 'checkpoint+jws', undefined]) {
      const header = { alg: 'EdDSA', kid: keys.current.kid, typ }
      expect(await service.verifyAccess(forgeEdDSA(header, validClaims(), privateKey))).toBeNull()
    }
  })

  it('refuses claims of the wrong shape', async () => {
    for (const overrides of [
      { sid: 7 },
      { role: undefined },
      { amr: 'pwd' },
      { sub: 42 },
      { purpose: '2fa' },
    ]) {
      expect(
        await service.verifyAccess(forgeEdDSA(accessHeader(), validClaims(overrides), privateKey)),
      ).toBeNull()
    }
  })
})

describe('key rotation', () => {
  it('keeps verifying a token signed by the previous key', async () => {
    const dataDir = tempDir('access-rotation')
    const ring = await loadSigningKeys({ dataDir })
    const tokens = createTokenService({
      keys: ring,
      issuer: ISSUER,
      audience: AUDIENCE,
      accessTtlSeconds: 900,
    })
    const old = await tokens.issueAccess(user)
    const oldKid = ring.current.kid
    await ring.rotate()
    const fresh = await tokens.issueAccess(user)
    expect(JSON.parse(Buffer.from(fresh.token.split('.')[0], 'base64url').toString()).kid).toBe(
      ring.current.kid,
    )
    expect(ring.current.kid).not.toBe(oldKid)
    expect(await tokens.verifyAccess(old.token)).not.toBeNull()
    expect(await tokens.verifyAccess(fresh.token)).not.toBeNull()
    // Once the old key leaves the ring its tokens stop verifying, cached or not.
    await ring.rotate()
    await ring.rotate()
    expect(ring.publicKey(oldKid)).toBeUndefined()
    expect(await tokens.verifyAccess(old.token)).toBeNull()
  })
})

describe('challenge tokens', () => {
  it('round-trips with purpose 2fa and data', async () => {
    const { token, expiresIn } = await service.issueChallenge({ sub: '42', amr: ['pwd'], data: { n: 1 } })
    expect(expiresIn).toBe(300)
    const claims = await service.verifyChallenge(token)
    expect(claims).toMatchObject({ sub: '42', amr: ['pwd'], purpose: '2fa', data: { n: 1 } })
    expect(claims!.exp - claims!.iat).toBe(300)
  })

  it('expires after its own ttl', async () => {
    const { token } = await service.issueChallenge({ sub: '42', amr: ['pwd'], ttlSeconds: 60 })
    clock = T0 + 70_000
    expect(await service.verifyChallenge(token)).toBeNull()
  })

  it('is never accepted as an access token, and an access token never as a challenge', async () => {
    const challenge = await service.issueChallenge({ sub: '42', amr: ['pwd'] })
    const access = await service.issueAccess(user)
    expect(await service.verifyAccess(challenge.token)).toBeNull()
    expect(await service.verifyChallenge(access.token)).toBeNull()
    // Right typ, wrong purpose, still refused.
    const header = { alg: 'EdDSA', kid: keys.current.kid, typ: 'challenge+jwt' }
    expect(await service.verifyChallenge(forgeEdDSA(header, validClaims(), privateKey))).toBeNull()
  })
})

describe('verified-signature cache', () => {
  it('returns the same claims object for the same token, frozen', async () => {
    const { token } = await service.issueAccess(user)
    const first = await service.verifyAccess(token)
    const second = await service.verifyAccess(token)
    expect(second).toBe(first)
    expect(Object.isFrozen(first)).toBe(true)
    expect(Object.isFrozen(first!.amr)).toBe(true)
  })

  it('does not outlive the token', async () => {
    const { token } = await service.issueAccess(user)
    expect(await service.verifyAccess(token)).not.toBeNull()
    clock = T0 + 3_600_000
    expect(await service.verifyAccess(token)).toBeNull()
  })

  it('never lends a cached signature to another token', async () => {
    const { token } = await service.issueAccess(user)
    expect(await service.verifyAccess(token)).not.toBeNull()
    const [header, payload, signature] = token.split('.')
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
    const promoted = encodeJson({ ...claims, role: 'admin' })
    expect(await service.verifyAccess(`${header}.${promoted}.${signature}`)).toBeNull()
    expect(await service.verifyAccess(`${header}.${payload}x.${signature}`)).toBeNull()
    // The genuine token is still a hit afterwards.
    expect((await service.verifyAccess(token))?.role).toBe(claims.role)
  })

  it('is bounded', async () => {
    const small = createTokenService({
      keys,
      issuer: ISSUER,
      audience: AUDIENCE,
      accessTtlSeconds: 900,
      now: () => clock,
      cacheSize: 2,
    })
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => small.issueAccess(user)))
    const claimsA = await small.verifyAccess(a.token)
    await small.verifyAccess(b.token)
    await small.verifyAccess(c.token) // evicts a
    const again = await small.verifyAccess(a.token)
    expect(again).toEqual(claimsA)
    expect(again).not.toBe(claimsA)
  })
})

describe('checkpoints', () => {
  it('round-trips a payload', async () => {
    const payload = { position: '123', hash: 'abc' }
    const jws = await service.signCheckpoint(payload)
    expect(JSON.parse(Buffer.from(jws.split('.')[0], 'base64url').toString())).toEqual({
      alg: 'EdDSA',
      kid: keys.current.kid,
      typ: 'checkpoint+jws',
    })
    expect(await service.verifyCheckpoint(jws)).toEqual(payload)
  })

  it('refuses tampering and other kinds of token', async () => {
    const jws = await service.signCheckpoint({ position: '1' })
    const [h, , s] = jws.split('.')
    expect(await service.verifyCheckpoint(`${h}.${encodeJson({ position: '2' })}.${s}`)).toBeNull()
    expect(await service.verifyCheckpoint((await service.issueAccess(user)).token)).toBeNull()
    expect(await service.verifyAccess(jws)).toBeNull()
    const none = `${encodeJson({ alg: 'none', typ: 'checkpoint+jws', kid: keys.current.kid })}.${encodeJson({})}.`
    expect(await service.verifyCheckpoint(none)).toBeNull()
    expect(await service.verifyCheckpoint('garbage')).toBeNull()
  })
})
