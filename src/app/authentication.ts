/**
 * Logging in and staying logged in: password and second-factor checks (failures are account
 * events that feed the lockout), sessions as their own streams, rotating refresh tokens.
 */
import {
  accountDecider,
  assertCanLogIn,
  assertEmailVerified,
  assertNotLocked,
  invalidChallenge,
} from '../../domain/account.decider.ts'
import {
  type Account,
  type ExistingAccount,
  isTotpEnabled,
  maySessionContinue,
} from '../../domain/account.ts'
import { DomainError, isDomainError } from '../../domain/errors.ts'
import type { Role } from '../../domain/event.ts'
import { sessionDecider } from '../../domain/session.ts'
import type { EventStore } from '../eventstore/event-store.ts'
import type { ProjectionRunner } from '../readstore/projection-runner.ts'
import type { Queries } from '../readstore/queries.ts'
import type { TokenService } from '../security/access-tokens.ts'
import { newIdToken, readIdToken } from '../security/opaque-tokens.ts'
import type { PasswordHasher } from '../security/passwords.ts'
import { matchRecoveryCode, verifyTotp } from '../security/totp.ts'
import type { AfterAnswer } from './after-answer.ts'
import type { CommandContext, CommandHandler } from './command-handler.ts'
import { reserveId } from './id-sequence.ts'
import { type LoginThrottle, throttleKey } from './login-throttle.ts'
import { accountStream, sessionStream } from './streams.ts'

// A session stream gains an event per refresh and its state holds no personal data: the command
// handler keeps it folded in memory and reads only the newer events.
const sessions = { ...sessionDecider, keepStateInMemory: true }

export type Client = { ip_address: string | null; user_agent: string | null }

export type TokenResponse = {
  access_token: string
  token_type: 'bearer'
  refresh_token: string
  expires_in: number
}
export type ChallengeResponse = {
  access_token: string
  token_type: 'bearer'
  requires_2fa: true
  expires_in: number
}

const CHALLENGE_TTL_SECONDS = 300
const badCredentials = (): DomainError =>
  new DomainError('INVALID_CREDENTIALS', 'Incorrect username or password')
const invalidRefresh = (): DomainError => new DomainError('REFRESH_TOKEN_INVALID', 'Invalid refresh token')

export type AuthenticationDeps = {
  store: EventStore
  commands: CommandHandler
  runner: ProjectionRunner
  queries: Queries
  passwords: PasswordHasher
  tokens: TokenService
  refreshTtlSeconds: number
  /** A refresh token rotated out at most this long ago is not a reuse. */
  refreshReuseGraceSeconds: number
  /** Absolute session lifetime from the login. */
  sessionMaxAgeSeconds: number
  throttle: LoginThrottle
  afterAnswer: AfterAnswer
  /** REQUIRE_VERIFIED_EMAIL=1: a password login to an unverified address is refused (403). */
  requireVerifiedEmail?: boolean
  /** Told of such a refusal, after the password was checked (to mail a new token). */
  onUnverifiedEmail?: (account: ExistingAccount) => void
  now: () => Date
}

export function createAuthentication(deps: AuthenticationDeps) {
  const { store, commands, runner, queries, passwords, tokens, throttle, now } = deps

  async function loadExisting(userId: number): Promise<{ account: ExistingAccount; revision: number }> {
    const { state, revision } = await commands.load(accountStream(userId), accountDecider)
    if (!isExisting(state) || revision === null) throw badCredentials()
    return { account: state, revision }
  }

  function recordFailure(
    userId: number,
    reason: 'password' | 'second_factor',
    client: Client,
  ): Promise<void> {
    return commands
      .handle(
        accountStream(userId),
        accountDecider,
        { type: 'RecordFailedLogin', data: { reason, now: now().getTime(), ...client } },
        { actorId: userId, owner: userId },
      )
      .then(() => undefined)
  }

  /**
   * A wrong password is answered before its failure is recorded: an unknown username has no
   * account to record it on, and the time it takes must not tell the two apart. The throttle
   * (in memory, the same for both) has already counted it.
   */
  function recordFailureAfterAnswer(userId: number, client: Client): void {
    deps.afterAnswer.run(
      'recording a failed login failed',
      // A lock that another failure just set refuses this one: the lock is what counts.
      () =>
        recordFailure(userId, 'password', client).catch((error: unknown) => {
          if (!isDomainError(error, 'ACCOUNT_LOCKED')) throw error
        }),
      { user_id: userId },
    )
  }

  /**
   * `accountRevision`: the revision at which the login was decided. Every later revocation of
   * the account's sessions covers this one, so nothing that raced the login outlives it.
   */
  async function startSession(
    account: ExistingAccount,
    accountRevision: number,
    amr: string[],
    client: Client,
  ): Promise<TokenResponse> {
    const sessionId = await reserveId(store, 'session', now())
    const refresh = newIdToken(sessionId)
    const nowMs = now().getTime()
    const result = await commands.handle(
      sessionStream(sessionId),
      sessions,
      {
        type: 'Start',
        data: {
          session_id: sessionId,
          user_id: account.id,
          account_revision: accountRevision,
          amr,
          refresh_token_hash: refresh.hash,
          expires_at: new Date(
            nowMs + Math.min(deps.refreshTtlSeconds, deps.sessionMaxAgeSeconds) * 1000,
          ).toISOString(),
          ends_at: new Date(nowMs + deps.sessionMaxAgeSeconds * 1000).toISOString(),
          ...client,
        },
      },
      { actorId: account.id, owner: account.id },
    )
    await runner.waitFor(result.position)
    const access = await tokens.issueAccess({
      sub: String(account.id),
      sid: String(sessionId),
      role: account.role,
      amr,
    })
    return {
      access_token: access.token,
      token_type: 'bearer',
      refresh_token: refresh.token,
      expires_in: access.expiresIn,
    }
  }

  async function challengeFor(account: ExistingAccount, revision: number): Promise<ChallengeResponse> {
    // `rev`: the account revision the password was checked at; verify-2fa refuses the challenge
    // once anything that voids authentications (password, 2FA, lock, ...) happened after it.
    const challenge = await tokens.issueChallenge({
      sub: String(account.id),
      amr: ['pwd'],
      ttlSeconds: CHALLENGE_TTL_SECONDS,
      data: { rev: revision },
    })
    return {
      access_token: challenge.token,
      token_type: 'bearer',
      requires_2fa: true,
      expires_in: challenge.expiresIn,
    }
  }

  /** Upgrades the stored hash of a password just verified, unless the password changed meanwhile. */
  async function rehashIfNeeded(account: ExistingAccount, password: string): Promise<void> {
    if (!passwords.needsRehash(account.passwordHash)) return
    await commands.handle(
      accountStream(account.id),
      accountDecider,
      {
        type: 'RehashPassword',
        data: { password_hash: await passwords.hash(password), previous_hash: account.passwordHash },
      },
      { actorId: account.id, owner: account.id },
    )
  }

  async function passwordLogin(
    input: { username: string; password: string },
    client: Client,
    roles: readonly Role[] | undefined,
  ): Promise<TokenResponse | ChallengeResponse> {
    const row = queries.userByUsername(input.username)
    if (!row) {
      // Unknown usernames cost one full verification too, so timing does not tell them apart.
      await passwords.dummyVerify(input.password)
      throw badCredentials()
    }
    const { account, revision } = await loadExisting(row.id)
    // Refuses a locked account with the seconds left; no hash is spent on it. Whether it is
    // deactivated is told only to whoever knows the password.
    assertNotLocked(account, now().getTime())
    if (!(await passwords.verify(account.passwordHash, input.password))) {
      recordFailureAfterAnswer(account.id, client)
      throw badCredentials()
    }
    if (roles && !roles.includes(account.role)) throw badCredentials()
    // Told only to whoever knows the password; a deactivated account hears that instead.
    if (deps.requireVerifiedEmail && account.status === 'active' && !account.emailVerified) {
      deps.onUnverifiedEmail?.(account)
      assertEmailVerified(account)
    }
    if (isTotpEnabled(account)) {
      // The password alone is no successful login for a 2FA account: the failure count (which
      // verify-2fa failures feed) is kept until verify-2fa succeeds.
      await rehashIfNeeded(account, input.password)
      return challengeFor(account, revision)
    }
    // Decided against the revision whose hash was verified: a password change, lock or 2FA
    // enrolment that committed meanwhile refuses the login instead of racing it.
    const success = await commands.handle(
      accountStream(account.id),
      accountDecider,
      { type: 'RecordSuccessfulLogin', data: { now: now().getTime(), verified_at_revision: revision } },
      { actorId: account.id, owner: account.id },
    )
    await rehashIfNeeded(account, input.password)
    return startSession(success.state as ExistingAccount, success.revision ?? revision, ['pwd'], client)
  }

  /** Password login. `roles` narrows who may log in here (admin and vendor logins). */
  function login(
    input: { username: string; password: string },
    client: Client,
    roles?: readonly Role[],
  ): Promise<TokenResponse | ChallengeResponse> {
    return throttle.guard(
      throttleKey(client.ip_address, input.username),
      () => passwordLogin(input, client, roles),
      (result) => !isChallenge(result),
    )
  }

  /** Turns a challenge into a full session with a TOTP code (once per time step) or a recovery code. */
  async function verifySecondFactor(
    challengeToken: string,
    code: string,
    client: Client,
  ): Promise<TokenResponse> {
    const claims = await tokens.verifyChallenge(challengeToken)
    const challengeRevision = claims?.data.rev
    // Used challenges are recorded in the account stream (AcceptSecondFactor), on every instance.
    if (!claims || typeof challengeRevision !== 'number') throw invalidChallenge()
    const userId = Number(claims.sub)
    const { account } = await loadExisting(userId)
    return throttle.guard(
      throttleKey(client.ip_address, account.username),
      async () => {
        const unauthorized = new DomainError('INVALID_CREDENTIALS', 'Invalid or expired two-factor code')
        assertCanLogIn(account, now().getTime(), challengeRevision, invalidChallenge().message)
        const secret = account.totp.secret
        if (!secret) throw unauthorized
        const step = verifyTotp(secret, code, now().getTime(), account.totp.lastStep)
        const recoveryIndex =
          step === null
            ? matchRecoveryCode(
                code,
                account.totp.recoveryCodes.map((c) => c ?? ''),
              )
            : -1
        if (step === null && recoveryIndex < 0) {
          await recordFailure(userId, 'second_factor', client)
          throw unauthorized
        }
        const accepted = await commands
          .handle(
            accountStream(userId),
            accountDecider,
            {
              type: 'AcceptSecondFactor',
              data: {
                ...(step !== null ? { totp_step: step } : { recovery_index: recoveryIndex }),
                challenge_revision: challengeRevision,
                challenge_id: claims.jti,
                now: now().getTime(),
              },
            },
            { actorId: userId, owner: userId },
          )
          .catch(async (error: unknown) => {
            // The same code used meanwhile (another request, another instance): a wrong code.
            if (!(error instanceof DomainError && error.code === 'TWO_FACTOR_CODE_INVALID')) throw error
            await recordFailure(userId, 'second_factor', client)
            throw unauthorized
          })
        return startSession(accepted.state as ExistingAccount, accepted.revision ?? 0, ['pwd', 'otp'], client)
      },
      () => true,
    )
  }

  /**
   * Rotates a refresh token. A token that was already rotated revokes its whole session, unless
   * it was rotated out within the grace period (two tabs refreshing at once).
   */
  async function refresh(refreshToken: string): Promise<TokenResponse> {
    const parsed = readIdToken(refreshToken)
    if (!parsed) throw invalidRefresh()
    const stream = sessionStream(parsed.id)
    const { state: session } = await commands.load(stream, sessions)
    if (session.status !== 'active') throw invalidRefresh()
    const { account } = await loadExisting(session.userId).catch(() => {
      throw invalidRefresh()
    })
    const nowMs = now().getTime()
    if (!maySessionContinue(account, session.id, session.accountRevision, nowMs)) throw invalidRefresh()
    const next = newIdToken(session.id)
    const result = await commands.handle(
      stream,
      sessions,
      {
        type: 'Refresh',
        data: {
          presented_hash: parsed.hash,
          refresh_token_hash: next.hash,
          expires_at: new Date(nowMs + deps.refreshTtlSeconds * 1000).toISOString(),
          now: nowMs,
          grace_ms: deps.refreshReuseGraceSeconds * 1000,
        },
      },
      { actorId: account.id, owner: account.id },
    )
    await runner.waitFor(result.position)
    if (result.events.some((e) => e.type === 'SessionRevoked')) {
      throw new DomainError(
        'REFRESH_TOKEN_REUSED',
        'Refresh token reuse detected; the session has been revoked',
      )
    }
    const access = await tokens.issueAccess({
      sub: String(account.id),
      sid: String(session.id),
      role: account.role,
      amr: session.amr,
    })
    return {
      access_token: access.token,
      token_type: 'bearer',
      refresh_token: next.token,
      expires_in: access.expiresIn,
    }
  }

  async function revokeSession(userId: number, sessionId: number, context: CommandContext): Promise<void> {
    const row = queries.sessionById(sessionId)
    if (!row || row.user_id !== userId) throw new DomainError('SESSION_NOT_FOUND', 'Session not found')
    const result = await commands.handle(
      sessionStream(sessionId),
      sessions,
      { type: 'Revoke', data: { reason: 'user' } },
      { ...context, owner: userId },
    )
    await runner.waitFor(result.position)
  }

  return {
    login,
    verifySecondFactor,
    refresh,
    revokeSession,
    /** For the other ways in (passkeys): a session of a login decided at `accountRevision`. */
    startSession,
  }
}

function isChallenge(result: unknown): result is ChallengeResponse {
  return (result as Partial<ChallengeResponse>).requires_2fa === true
}

function isExisting(state: Account): state is ExistingAccount {
  return state.status === 'active' || state.status === 'deactivated'
}

export type Authentication = ReturnType<typeof createAuthentication>
