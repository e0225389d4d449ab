/**
 * WebAuthn challenges that need no server-side storage until they are used: the challenge handed
 * to the authenticator is itself a short-lived JWT signed with the service's Ed25519 key
 * (`typ: webauthn-challenge+jwt`), naming what it was issued for (registration: the account, the
 * session and the user handle; login: an HMAC of the username asked for, if any). The
 * authenticator signs over it, the browser echoes it in `clientDataJSON`, and the service verifies
 * its own signature, so a challenge it did not issue, or issued for another ceremony, caller or
 * username, or expired, is refused. That the challenge is used once is recorded where it is
 * consumed: its `jti` goes into the account stream with the registration or the login
 * (domain/passkeys.ts), on every instance. A random `jti` (122 bits) and the signature make each
 * challenge unpredictable, as WebAuthn requires (at least 16 random bytes).
 *
 * Any instance sharing the signing key verifies any other's challenges, like access tokens.
 */
import { randomUUID } from 'node:crypto'
import { type JWSHeaderParameters, jwtVerify, SignJWT } from 'jose'
import type { SigningKeys } from './signing-keys.ts'

const CHALLENGE_TYP = 'webauthn-challenge+jwt'
// A challenge we issued is ~400 characters; anything much longer is not one.
const MAX_CHALLENGE_LENGTH = 2048

export type ChallengePurpose = 'passkey_register' | 'passkey_login'

export type PasskeyChallenge = {
  purpose: ChallengePurpose
  jti: string
  expiresAt: Date
  /** Registration: the account, the session that asked and the user handle offered. */
  sub?: string
  sid?: string
  uh?: string
  /** Login with a username: an opaque binding to it (see src/app/passkeys.ts). */
  usr?: string
}

export type IssuedChallenge = { challenge: string; jti: string; expiresAt: Date }

export type ChallengeService = {
  issue(
    purpose: ChallengePurpose,
    claims: Partial<Pick<PasskeyChallenge, 'sub' | 'sid' | 'uh' | 'usr'>>,
  ): Promise<IssuedChallenge>
  /** The challenge as `clientDataJSON` carries it (base64url of our JWT), or null if it is none of ours. */
  verify(challengeBase64Url: string, purpose: ChallengePurpose): Promise<PasskeyChallenge | null>
}

export function createChallengeService(options: {
  keys: SigningKeys
  issuer: string
  audience: string
  ttlSeconds: number
  /** Milliseconds since the epoch, like `Date.now`. */
  now: () => number
}): ChallengeService {
  const { keys, issuer, audience, ttlSeconds, now } = options

  const resolveKey = (header: JWSHeaderParameters): CryptoKey => {
    const key = typeof header.kid === 'string' ? keys.publicKey(header.kid) : undefined
    if (key === undefined) throw new Error('unknown kid')
    return key
  }

  return {
    async issue(purpose, claims) {
      const { kid, privateKey } = keys.current
      const iat = Math.floor(now() / 1000)
      const exp = iat + ttlSeconds
      const jti = randomUUID()
      const payload: Record<string, string> = { purpose }
      for (const [name, value] of Object.entries(claims)) if (typeof value === 'string') payload[name] = value
      const challenge = await new SignJWT(payload)
        .setProtectedHeader({ alg: 'EdDSA', kid, typ: CHALLENGE_TYP })
        .setIssuer(issuer)
        .setAudience(audience)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .setJti(jti)
        .sign(privateKey)
      return { challenge, jti, expiresAt: new Date(exp * 1000) }
    },

    async verify(challengeBase64Url, purpose) {
      if (typeof challengeBase64Url !== 'string' || challengeBase64Url.length > MAX_CHALLENGE_LENGTH)
        return null
      if (!/^[A-Za-z0-9_-]+$/.test(challengeBase64Url)) return null
      const token = Buffer.from(challengeBase64Url, 'base64url').toString('utf8')
      try {
        const { payload } = await jwtVerify(token, resolveKey, {
          algorithms: ['EdDSA'],
          issuer,
          audience,
          typ: CHALLENGE_TYP,
          // No tolerance: the expiry is what makes a challenge short-lived.
          currentDate: new Date(now()),
          requiredClaims: ['iat', 'exp', 'jti'],
        })
        if (payload.purpose !== purpose || typeof payload.jti !== 'string' || typeof payload.exp !== 'number')
          return null
        const text = (name: string): string | undefined =>
          typeof payload[name] === 'string' ? (payload[name] as string) : undefined
        return {
          purpose,
          jti: payload.jti,
          expiresAt: new Date(payload.exp * 1000),
          sub: payload.sub,
          sid: text('sid'),
          uh: text('uh'),
          usr: text('usr'),
        }
      } catch {
        return null
      }
    },
  }
}
