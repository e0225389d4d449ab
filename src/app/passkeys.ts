/**
 * Passkeys (WebAuthn): registering, listing, renaming and removing them, logging in with one, and
 * going passwordless. @simplewebauthn/server checks the ceremonies (origin, RP id hash, signature,
 * attestation); the account decider (domain/passkeys.ts) decides what a verified one means: a
 * challenge works once, a sign counter must move forward, a locked or deactivated account cannot
 * log in, the last passkey of a passwordless account stays.
 *
 * Challenges are signed JWTs (src/security/webauthn-challenges.ts): nothing is stored when options
 * are handed out, so a login without a username needs no account to record its challenge on; the
 * challenge's id is recorded in the account stream when a registration or login consumes it.
 */
import { createHmac, hkdfSync, randomBytes } from 'node:crypto'
import {
  type AuthenticationResponseJSON,
  type AuthenticatorTransport,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server'
import { decodeAttestationObject } from '@simplewebauthn/server/helpers'
import { accountDecider, assertEmailVerified, assertNotLocked } from '../../domain/account.decider.ts'
import { type Account, type ExistingAccount, isTotpEnabled } from '../../domain/account.ts'
import { DomainError, isDomainError } from '../../domain/errors.ts'
import {
  findPasskeyByCredential,
  invalidPasskey,
  invalidPasskeyChallenge,
  PASSKEY_CHALLENGE_TTL_SECONDS,
  type StoredPasskey,
} from '../../domain/passkeys.ts'
import type { PasskeyQueries, PasskeyRow } from '../readstore/passkey-queries.ts'
import type { ProjectionRunner } from '../readstore/projection-runner.ts'
import type { Queries } from '../readstore/queries.ts'
import type { ChallengeService, PasskeyChallenge } from '../security/webauthn-challenges.ts'
import { isPasskeySession, passedSecondFactor } from './amr.ts'
import type { Authentication, Client, TokenResponse } from './authentication.ts'
import type { CommandHandler } from './command-handler.ts'
import { type LoginThrottle, throttleKey } from './login-throttle.ts'
import { accountStream } from './streams.ts'

/** EdDSA, ES256, RS256: what authenticators use (no post-quantum keys until browsers make them). */
const ALGORITHMS = [-8, -7, -257]
const TRANSPORTS: readonly string[] = ['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']
/** The throttle's name for logins whose credential is unknown (no account to name). */
const UNKNOWN_CREDENTIAL = '\u0000passkey'

export type Caller = { userId: number; sessionId: number; amr: readonly string[] }

export type Passkey = { id: number; name: string; created_at: string; last_used_at: string | null }

export type PasskeysDeps = {
  commands: CommandHandler
  runner: ProjectionRunner
  queries: Queries
  passkeyQueries: PasskeyQueries
  authentication: Pick<Authentication, 'startSession'>
  challenges: ChallengeService
  throttle: LoginThrottle
  rpId: string
  rpOrigins: string[]
  rpName: string
  /** Keys the opaque username binding of login challenges and the decoy credentials (any 32 bytes). */
  bindingSecret: Uint8Array
  /** REQUIRE_VERIFIED_EMAIL=1: a login to an unverified address is refused (403), as with passwords. */
  requireVerifiedEmail?: boolean
  /** Told of such a refusal, after the passkey was checked (to mail a new token). */
  onUnverifiedEmail?: (account: ExistingAccount) => void
  now: () => Date
}

const toPasskey = (row: PasskeyRow): Passkey => ({
  id: row.passkey_id,
  name: row.name,
  created_at: row.created_at,
  last_used_at: row.last_used_at,
})

const registrationFailed = (why: string): DomainError =>
  new DomainError('PASSKEY_INVALID', `Passkey registration failed: ${why.slice(0, 200)}`)

const needsSecondFactor = (): DomainError =>
  new DomainError(
    'TWO_FACTOR_REQUIRED',
    'Two-factor authentication is on: register passkeys from a session that passed it',
  )

/** The challenge inside a `clientDataJSON` (base64url), or null for anything that is not one. */
export function challengeOf(clientDataJSON: string): string | null {
  try {
    const data: unknown = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8'))
    const challenge = (data as { challenge?: unknown } | null)?.challenge
    return typeof challenge === 'string' ? challenge : null
  } catch {
    return null
  }
}

const isExisting = (state: Account): state is ExistingAccount =>
  state.status === 'active' || state.status === 'deactivated'

export function createPasskeys(deps: PasskeysDeps) {
  const { commands, runner, queries, passkeyQueries, challenges, throttle, now } = deps
  const bindingKey = Buffer.from(
    hkdfSync('sha256', deps.bindingSecret, '', 'auth-service passkey binding', 32),
  )
  const hmac = (label: string, value: string): Buffer =>
    createHmac('sha256', bindingKey).update(`${label}\u0000${value}`).digest()
  /** Binds a login challenge to the username asked for without telling anyone which account it is. */
  const usernameBinding = (username: string): string =>
    hmac('username', username.toLowerCase()).subarray(0, 16).toString('base64url')

  async function loadActive(userId: number): Promise<ExistingAccount> {
    const { state } = await commands.load(accountStream(userId), accountDecider)
    if (state.status !== 'active') throw new DomainError('ACCOUNT_NOT_FOUND', 'User not found')
    return state
  }

  function assertMayManage(account: ExistingAccount, caller: Caller): void {
    if (isTotpEnabled(account) && !passedSecondFactor(caller.amr)) throw needsSecondFactor()
  }

  async function handle(userId: number, command: Parameters<typeof accountDecider.decide>[0]) {
    const result = await commands.handle(accountStream(userId), accountDecider, command, {
      actorId: userId,
      owner: userId,
    })
    await runner.waitFor(result.position)
    return result
  }

  function present(userId: number, passkeyId: number): Passkey {
    const row = passkeyQueries.passkey(userId, passkeyId)
    if (!row) throw new DomainError('PASSKEY_NOT_FOUND', 'Passkey not found')
    return toPasskey(row)
  }

  async function registrationOptions(caller: Caller): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const account = await loadActive(caller.userId)
    assertMayManage(account, caller)
    // One handle per account, kept by its passkeys: a discoverable credential returns it at login.
    const handle = account.passkeys.list[0]?.userHandle ?? randomBytes(32).toString('base64url')
    const issued = await challenges.issue('passkey_register', {
      sub: String(caller.userId),
      sid: String(caller.sessionId),
      uh: handle,
    })
    return generateRegistrationOptions({
      rpName: deps.rpName,
      rpID: deps.rpId,
      userName: account.username,
      userDisplayName: account.fullName ?? account.username,
      userID: new Uint8Array(Buffer.from(handle, 'base64url')),
      challenge: issued.challenge,
      timeout: PASSKEY_CHALLENGE_TTL_SECONDS * 1000,
      attestationType: 'none',
      excludeCredentials: account.passkeys.list.map((p) => ({
        id: p.credentialId,
        transports: p.transports as AuthenticatorTransport[],
      })),
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
      supportedAlgorithmIDs: ALGORITHMS,
    })
  }

  /**
   * Only `none` and self (`packed` without certificates) attestation: the service asks for none,
   * and checking a certificate chain would let the library fetch CRLs from URLs in a certificate
   * the client chose.
   */
  function assertPlainAttestation(attestationObject: string): void {
    let fmt: string
    let hasCertificates: boolean
    try {
      const decoded = decodeAttestationObject(new Uint8Array(Buffer.from(attestationObject, 'base64url')))
      fmt = decoded.get('fmt')
      const statement = decoded.get('attStmt')
      hasCertificates = statement instanceof Map && statement.has('x5c')
    } catch {
      throw registrationFailed('the attestation object is not valid CBOR')
    }
    if (fmt !== 'none' && !(fmt === 'packed' && !hasCertificates))
      throw registrationFailed('only "none" and self ("packed" without x5c) attestation are accepted')
  }

  async function register(
    caller: Caller,
    response: RegistrationResponseJSON,
    name: string | null,
  ): Promise<Passkey> {
    const challenge = challengeOf(response.response.clientDataJSON)
    const claims = challenge ? await challenges.verify(challenge, 'passkey_register') : null
    // Issued for this account and this session only.
    if (
      !challenge ||
      !claims?.uh ||
      claims.sub !== String(caller.userId) ||
      claims.sid !== String(caller.sessionId)
    ) {
      throw registrationFailed('invalid, expired or foreign challenge')
    }
    const account = await loadActive(caller.userId)
    assertMayManage(account, caller)
    assertPlainAttestation(response.response.attestationObject)
    let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>
    try {
      verified = await verifyRegistrationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: deps.rpOrigins,
        expectedRPID: deps.rpId,
        requireUserVerification: false,
        supportedAlgorithmIDs: ALGORITHMS,
      })
    } catch (error) {
      throw registrationFailed((error as Error).message)
    }
    if (!verified.verified) throw registrationFailed('the attestation signature is not valid')
    const info = verified.registrationInfo
    const credentialId = info.credential.id
    // A credential belongs to one account (WebAuthn §7.1, step 26).
    if (passkeyQueries.byCredentialId(credentialId).some((row) => row.user_id !== caller.userId))
      throw new DomainError('PASSKEY_CONFLICT', 'This passkey is already registered')
    const result = await handle(caller.userId, {
      type: 'RegisterPasskey',
      data: {
        name,
        credential_id: credentialId,
        public_key: Buffer.from(info.credential.publicKey).toString('base64url'),
        user_handle: claims.uh,
        sign_count: info.credential.counter,
        transports: (response.response.transports ?? []).filter((t) => TRANSPORTS.includes(t)),
        aaguid: info.aaguid,
        device_type: info.credentialDeviceType,
        backed_up: info.credentialBackedUp,
        user_verified: info.userVerified,
        attestation_format: info.fmt,
        challenge_id: claims.jti,
        challenge_expires_at: claims.expiresAt.toISOString(),
        now: now().getTime(),
      },
    })
    const added = result.events.find((e) => e.type === 'PasskeyRegistered')
    if (added?.type !== 'PasskeyRegistered') throw new Error('registration decided no PasskeyRegistered')
    return present(caller.userId, added.data.passkey_id)
  }

  /**
   * With a username, its account's credentials (for authenticators that cannot discover theirs);
   * an unknown username, or an account without passkeys, gets a stable decoy instead, so the
   * answer does not tell whether the account exists.
   */
  async function loginOptions(username: string | undefined): Promise<PublicKeyCredentialRequestOptionsJSON> {
    let allowCredentials: { id: string; transports?: AuthenticatorTransport[] }[] | undefined
    if (username !== undefined) {
      const row = queries.userByUsername(username)
      const rows = row ? passkeyQueries.passkeysOf(row.id) : []
      allowCredentials =
        rows.length > 0
          ? rows.map((p) => ({
              id: p.credential_id,
              transports: JSON.parse(p.transports) as AuthenticatorTransport[],
            }))
          : [
              {
                id: hmac('decoy', username.toLowerCase()).toString('base64url'),
                transports: ['internal', 'hybrid'],
              },
            ]
    }
    const issued = await challenges.issue(
      'passkey_login',
      username === undefined ? {} : { usr: usernameBinding(username) },
    )
    return generateAuthenticationOptions({
      rpID: deps.rpId,
      challenge: issued.challenge,
      timeout: PASSKEY_CHALLENGE_TTL_SECONDS * 1000,
      userVerification: 'preferred',
      allowCredentials,
    })
  }

  /** The account holding a credential, as the read model indexes it (then checked on the stream). */
  function ownerOf(credentialId: string): number | null {
    return passkeyQueries.byCredentialId(credentialId)[0]?.user_id ?? null
  }

  async function recordFailure(userId: number, client: Client): Promise<void> {
    await commands
      .handle(
        accountStream(userId),
        accountDecider,
        { type: 'RecordFailedLogin', data: { reason: 'passkey', now: now().getTime(), ...client } },
        { actorId: userId, owner: userId },
      )
      .catch((error: unknown) => {
        // A lock that another failure just set refuses this one: the lock is what counts.
        if (!isDomainError(error, 'ACCOUNT_LOCKED')) throw error
      })
  }

  async function verifyAssertion(
    passkey: StoredPasskey,
    response: AuthenticationResponseJSON,
    challenge: string,
  ) {
    try {
      const verified = await verifyAuthenticationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: deps.rpOrigins,
        expectedRPID: deps.rpId,
        // The counter is the decider's to judge (and a step back is recorded, not just refused).
        credential: {
          id: passkey.credentialId,
          publicKey: new Uint8Array(Buffer.from(passkey.publicKey, 'base64url')),
          counter: 0,
          transports: passkey.transports as AuthenticatorTransport[],
        },
        requireUserVerification: false,
      })
      return verified.verified ? verified.authenticationInfo : null
    } catch {
      return null
    }
  }

  async function passkeyLogin(
    userId: number,
    response: AuthenticationResponseJSON,
    client: Client,
  ): Promise<TokenResponse> {
    const { state, revision } = await commands.load(accountStream(userId), accountDecider)
    if (!isExisting(state) || revision === null) throw invalidPasskey()
    const passkey = findPasskeyByCredential(state, response.id)
    if (!passkey) throw invalidPasskey()
    // No signature is checked for a locked account; whether it is deactivated is told only to
    // whoever holds the passkey.
    assertNotLocked(state, now().getTime())
    const fail = async (error: DomainError = invalidPasskey()): Promise<never> => {
      await recordFailure(userId, client)
      throw error
    }
    const challenge = challengeOf(response.response.clientDataJSON)
    const claims: PasskeyChallenge | null = challenge
      ? await challenges.verify(challenge, 'passkey_login')
      : null
    if (!challenge || !claims) return fail(invalidPasskeyChallenge())
    // Options asked for a username: the passkey must be that account's.
    if (claims.usr !== undefined && claims.usr !== usernameBinding(state.username)) return fail()
    // A discoverable credential names its user: it must be the one it was created for.
    const userHandle = response.response.userHandle
    if (userHandle && userHandle !== passkey.userHandle) return fail()
    const info = await verifyAssertion(passkey, response, challenge)
    if (!info) return fail()
    // Told only to whoever holds the passkey, as a password login tells it.
    if (deps.requireVerifiedEmail && state.status === 'active' && !state.emailVerified) {
      deps.onUnverifiedEmail?.(state)
      assertEmailVerified(state)
    }
    if (isTotpEnabled(state) && !info.userVerified) {
      throw new DomainError(
        'TWO_FACTOR_REQUIRED',
        'Two-factor authentication is on: use a passkey that verifies you (PIN or biometrics), or log in with password and code',
      )
    }
    const result = await commands
      .handle(
        accountStream(userId),
        accountDecider,
        {
          type: 'UsePasskey',
          data: {
            passkey_id: passkey.id,
            sign_count: info.newCounter,
            user_verified: info.userVerified,
            backed_up: info.credentialBackedUp,
            challenge_id: claims.jti,
            challenge_expires_at: claims.expiresAt.toISOString(),
            now: now().getTime(),
            verified_at_revision: revision,
            ...client,
          },
        },
        { actorId: userId, owner: userId },
      )
      .catch(async (error: unknown) => {
        // A replayed challenge is a failed login; a lock or deactivation is told as it is.
        if (isDomainError(error, 'INVALID_CREDENTIALS')) await fail(error)
        throw error
      })
    if (result.events.some((e) => e.type === 'PasskeySignCountRegressed')) {
      await runner.waitFor(result.position)
      throw new DomainError(
        'INVALID_CREDENTIALS',
        'Passkey refused: its signature counter went backwards (is the authenticator cloned?)',
      )
    }
    // Device-bound keys are hardware keys (RFC 8176 `hwk`); synced passkeys leave the device (`swk`).
    const amr = [info.credentialDeviceType === 'multiDevice' ? 'swk' : 'hwk']
    if (info.userVerified) amr.push('user')
    return deps.authentication.startSession(
      result.state as ExistingAccount,
      result.revision ?? revision,
      amr,
      client,
    )
  }

  /** Logs in with an assertion; throttled and locked out as a password login is. */
  function login(response: AuthenticationResponseJSON, client: Client): Promise<TokenResponse> {
    const userId = ownerOf(response.id)
    const username = userId === null ? null : (queries.userById(userId)?.username ?? null)
    return throttle.guard(
      throttleKey(client.ip_address, username ?? UNKNOWN_CREDENTIAL),
      async () => {
        if (userId === null) throw invalidPasskey()
        return passkeyLogin(userId, response, client)
      },
      () => true,
    )
  }

  return {
    registrationOptions,
    register,
    list: (userId: number): Passkey[] => passkeyQueries.passkeysOf(userId).map(toPasskey),

    async rename(userId: number, passkeyId: number, name: string): Promise<Passkey> {
      await handle(userId, { type: 'RenamePasskey', data: { passkey_id: passkeyId, name } })
      return present(userId, passkeyId)
    },

    async remove(caller: Caller, passkeyId: number): Promise<void> {
      await handle(caller.userId, { type: 'RemovePasskey', data: { passkey_id: passkeyId } })
    },

    loginOptions,
    login,

    /**
     * Makes the account passwordless, from a session a passkey started (proof that one works);
     * the other sessions end, as with a password change.
     */
    async removePassword(caller: Caller): Promise<void> {
      if (!isPasskeySession(caller.amr)) {
        throw new DomainError('FORBIDDEN', 'Log in with a passkey to remove the password')
      }
      await handle(caller.userId, {
        type: 'RemovePassword',
        data: { current_session_id: caller.sessionId },
      })
    },
  }
}

export type Passkeys = ReturnType<typeof createPasskeys>
