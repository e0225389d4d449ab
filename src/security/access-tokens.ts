/**
 * Signs and verifies the service's JWTs and JWSs with the Ed25519 keys: access tokens
 * (`at+jwt`), 2FA challenge tokens (`challenge+jwt`) and projection checkpoints
 * (`checkpoint+jws`). Each kind is told apart by its `typ` header, so none is accepted as
 * another. Verification returns null for any bad token and never throws.
 */
import { randomUUID } from 'node:crypto'
import {
  CompactSign,
  compactVerify,
  type JWSHeaderParameters,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from 'jose'
import { LRUCache } from 'lru-cache'
import type { SigningKeys } from './signing-keys.ts'

export type AccessClaims = Readonly<{
  iss: string
  aud: string
  sub: string
  sid: string
  role: string
  amr: readonly string[]
  iat: number
  exp: number
  jti: string
}>

export type ChallengeClaims = Readonly<{
  iss: string
  aud: string
  sub: string
  amr: readonly string[]
  purpose: '2fa'
  iat: number
  exp: number
  jti: string
  data: Readonly<Record<string, unknown>>
}>

export type IssuedToken = { token: string; expiresIn: number; jti: string }

export type TokenService = {
  issueAccess(claims: {
    sub: string
    sid: string
    role: string
    amr: readonly string[]
  }): Promise<IssuedToken>
  /** `data` is signed, not encrypted: it must hold nothing secret. */
  issueChallenge(claims: {
    sub: string
    amr: readonly ['pwd']
    ttlSeconds?: number
    data?: Record<string, unknown>
  }): Promise<IssuedToken>
  verifyAccess(token: string): Promise<AccessClaims | null>
  verifyChallenge(token: string): Promise<ChallengeClaims | null>
  signCheckpoint(payload: object): Promise<string>
  verifyCheckpoint(jws: string): Promise<Record<string, unknown> | null>
}

export type TokenServiceOptions = {
  keys: SigningKeys
  issuer: string
  audience: string
  accessTtlSeconds: number
  /** Milliseconds since the epoch, like `Date.now`. */
  now?: () => number
  /** Bound of the verified-signature cache. */
  cacheSize?: number
}

const ACCESS_TYP = 'at+jwt'
const CHALLENGE_TYP = 'challenge+jwt'
const CHECKPOINT_TYP = 'checkpoint+jws'
// Only EdDSA: this alone refuses `alg: none` and HS256 forged with the public key as secret.
const ALGORITHMS = ['EdDSA']
const CLOCK_TOLERANCE_SECONDS = 5
// Longer than any token we issue; refusing early keeps garbage from reaching the parser.
const MAX_TOKEN_LENGTH = 8192

export function createTokenService(options: TokenServiceOptions): TokenService {
  const { keys, issuer, audience, accessTtlSeconds } = options
  const now = options.now ?? Date.now
  const cache = verifiedCache(options.cacheSize ?? 10_000)
  const nowSeconds = (): number => Math.floor(now() / 1000)

  // Unknown or missing kid → throw inside jose → verification fails → null.
  const resolveKey = (header: JWSHeaderParameters): CryptoKey => {
    const key = typeof header.kid === 'string' ? keys.publicKey(header.kid) : undefined
    if (key === undefined) throw new Error('unknown kid')
    return key
  }

  async function sign(payload: JWTPayload, typ: string, sub: string, ttl: number): Promise<IssuedToken> {
    const { kid, privateKey } = keys.current
    const iat = nowSeconds()
    const jti = randomUUID()
    const token = await new SignJWT(payload)
      .setProtectedHeader({ alg: 'EdDSA', kid, typ })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject(sub)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ttl)
      .setJti(jti)
      .sign(privateKey)
    return { token, expiresIn: ttl, jti }
  }

  async function verify(token: string, typ: string): Promise<{ payload: JWTPayload; kid: string } | null> {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return null
    try {
      const { payload, protectedHeader } = await jwtVerify(token, resolveKey, {
        algorithms: ALGORITHMS,
        issuer,
        audience,
        typ,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: new Date(now()),
        requiredClaims: ['sub', 'iat', 'exp', 'jti'],
      })
      return { payload, kid: protectedHeader.kid! }
    } catch {
      return null
    }
  }

  return {
    issueAccess: ({ sub, sid, role, amr }) =>
      sign({ sid, role, amr: [...amr] }, ACCESS_TYP, sub, accessTtlSeconds),

    issueChallenge: ({ sub, amr, ttlSeconds = 300, data = {} }) =>
      sign({ purpose: '2fa', amr: [...amr], data }, CHALLENGE_TYP, sub, ttlSeconds),

    async verifyAccess(token) {
      const hit = cache.get(token, nowSeconds())
      // A hit still needs its key in the ring: a key dropped by rotation takes its tokens with it.
      if (hit && keys.publicKey(hit.kid) !== undefined) return hit.claims
      const verified = await verify(token, ACCESS_TYP)
      const claims = verified && accessClaims(verified.payload)
      if (!verified || !claims) return null
      cache.set(token, claims, verified.kid, nowSeconds())
      return claims
    },

    async verifyChallenge(token) {
      const verified = await verify(token, CHALLENGE_TYP)
      return verified && challengeClaims(verified.payload)
    },

    async signCheckpoint(payload) {
      const { kid, privateKey } = keys.current
      return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
        .setProtectedHeader({ alg: 'EdDSA', kid, typ: CHECKPOINT_TYP })
        .sign(privateKey)
    },

    async verifyCheckpoint(jws) {
      if (typeof jws !== 'string') return null
      try {
        const { payload, protectedHeader } = await compactVerify(jws, resolveKey, { algorithms: ALGORITHMS })
        // compactVerify has no typ option; without this check an access token would pass as a checkpoint.
        if (protectedHeader.typ !== CHECKPOINT_TYP) return null
        const value: unknown = JSON.parse(new TextDecoder().decode(payload))
        return isRecord(value) ? value : null
      } catch {
        return null
      }
    },
  }
}

function accessClaims(p: JWTPayload): AccessClaims | null {
  // Belt and braces against confusion: a challenge carries `purpose`, an access token never does.
  if (p.purpose !== undefined) return null
  if (!hasCommonClaims(p) || typeof p.sid !== 'string' || typeof p.role !== 'string') return null
  const { iss, aud, sub, sid, role, amr, iat, exp, jti } = p
  return deepFreeze({ iss, aud, sub, sid, role, amr, iat, exp, jti })
}

function challengeClaims(p: JWTPayload): ChallengeClaims | null {
  if (p.purpose !== '2fa' || !hasCommonClaims(p)) return null
  const data = p.data === undefined ? {} : p.data
  if (!isRecord(data)) return null
  const { iss, aud, sub, amr, iat, exp, jti } = p
  return deepFreeze({ iss, aud, sub, amr, purpose: '2fa', iat, exp, jti, data })
}

type CommonClaims = {
  iss: string
  aud: string
  sub: string
  amr: string[]
  iat: number
  exp: number
  jti: string
}

function hasCommonClaims(p: JWTPayload): p is JWTPayload & CommonClaims {
  return (
    typeof p.iss === 'string' &&
    typeof p.aud === 'string' &&
    typeof p.sub === 'string' &&
    typeof p.iat === 'number' &&
    typeof p.exp === 'number' &&
    typeof p.jti === 'string' &&
    Array.isArray(p.amr) &&
    p.amr.every((m) => typeof m === 'string')
  )
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Cached claims are shared between callers, so no caller may change them for the others. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}

type CacheEntry = { token: string; claims: AccessClaims; kid: string }

/**
 * Token string → claims whose signature was already checked, valid until the token's `exp`.
 * Only the signature check is cached; revocation is decided against the read model.
 * Keyed by the signature alone (hashing a fresh 86-character string per request rather than the
 * whole token), but a hit needs the entire token to be the one that was verified.
 * Bounded: when full, the least recently used entry goes (lru-cache).
 */
function verifiedCache(maxEntries: number): {
  get(token: string, nowSeconds: number): CacheEntry | undefined
  set(token: string, claims: AccessClaims, kid: string, nowSeconds: number): void
} {
  const entries = new LRUCache<string, CacheEntry>({ max: Math.max(1, maxEntries) })
  const keyOf = (token: string): string => token.slice(token.lastIndexOf('.') + 1)
  return {
    get(token, nowSeconds) {
      const key = keyOf(token)
      const entry = entries.get(key)
      if (entry === undefined || entry.token !== token) return undefined
      if (nowSeconds < entry.claims.exp) return entry
      entries.delete(key)
      return undefined
    },
    set(token, claims, kid, nowSeconds) {
      if (maxEntries <= 0 || nowSeconds >= claims.exp) return
      entries.set(keyOf(token), { token, claims, kid })
    },
  }
}
