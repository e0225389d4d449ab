/**
 * Logging in and staying logged in: password and second-factor checks (failures are account
 * events that feed the lockout), sessions as their own streams, rotating refresh tokens.
 */
import { accountDecider } from '../../domain/account.decider.ts'
import {
  type Account,
  type ExistingAccount,
  isLockedAt,
  isSessionRevokedByAccount,
} from '../../domain/account.ts'
import { DomainError } from '../../domain/errors.ts'
import type { Role } from '../../domain/event.ts'
import { sessionDecider } from '../../domain/session.ts'
import type { EventStore } from '../eventstore/event-store.ts'
import type { ProjectionRunner } from '../readstore/projection-runner.ts'
import type { Queries } from '../readstore/queries.ts'
import type { TokenService } from '../security/access-tokens.ts'
import type { PasswordHasher } from '../security/passwords.ts'
import { hashOpaqueToken, isOpaqueTokenShape, newOpaqueToken } from '../security/refresh-tokens.ts'
import { matchRecoveryCode, verifyTotp } from '../security/totp.ts'
import type { CommandContext, CommandHandler } from './command-handler.ts'
import { reserveId } from './id-sequence.ts'
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

/** A refresh token is `<session id>.<256-bit secret>`; only the secret's hash is stored. */
function parseRefreshToken(token: string): { sessionId: number; secret: string } | null {
  const dot = token.indexOf('.')
  if (dot < 1) return null
  const sessionId = Number(token.slice(0, dot))
  const secret = token.slice(dot + 1)
  if (!Number.isSafeInteger(sessionId) || sessionId < 1 || !isOpaqueTokenShape(secret)) return null
  return { sessionId, secret }
}

export type AuthenticationDeps = {
  store: EventStore
  commands: CommandHandler
  runner: ProjectionRunner
  queries: Queries
  passwords: PasswordHasher
  tokens: TokenService
  refreshTtlSeconds: number
  now: () => Date
}

export function createAuthentication(deps: AuthenticationDeps) {
  const { store, commands, runner, queries, passwords, tokens, now } = deps
  /** Challenge tokens are single-use: flow state, not an event. */
  const usedChallenges = new Map<string, number>()

  async function loadExisting(userId: number): Promise<{ account: ExistingAccount; revision: number }> {
    const { state, revision } = await commands.load(accountStream(userId), accountDecider)
    if (!isExisting(state) || revision === null) throw badCredentials()
    return { account: state, revision }
  }

  async function recordFailure(
    userId: number,
    reason: 'password' | 'second_factor',
    client: Client,
  ): Promise<void> {
    const result = await commands.handle(
      accountStream(userId),
      accountDecider,
      { type: 'RecordFailedLogin', data: { reason, now: now().getTime(), ...client } },
      { actorId: userId, owner: userId },
    )
    await runner.waitFor(result.position)
  }

  async function startSession(
    account: ExistingAccount,
    accountRevision: number,
    amr: string[],
    client: Client,
  ): Promise<TokenResponse> {
    const sessionId = await reserveId(store, 'session', now())
    const refresh = newOpaqueToken()
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
          expires_at: new Date(now().getTime() + deps.refreshTtlSeconds * 1000).toISOString(),
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
      refresh_token: `${sessionId}.${refresh.token}`,
      expires_in: access.expiresIn,
    }
  }

  /** Password login. `roles` narrows who may log in here (admin and vendor logins). */
  async function login(
    input: { username: string; password: string },
    client: Client,
    roles?: readonly Role[],
  ): Promise<TokenResponse | ChallengeResponse> {
    const row = queries.userByUsername(input.username)
    if (!row) {
      // Unknown usernames cost one full verification too, so timing does not tell them apart.
      await passwords.dummyVerify(input.password)
      throw badCredentials()
    }
    const { account } = await loadExisting(row.id)
    if (isLockedAt(account, now().getTime())) {
      // Decide refuses with the seconds left; no hash is spent on a locked account.
      accountDecider.decide({ type: 'RecordSuccessfulLogin', data: { now: now().getTime() } }, account)
    }
    const passwordOk = await passwords.verify(account.passwordHash, input.password)
    if (!passwordOk) {
      await recordFailure(account.id, 'password', client)
      throw badCredentials()
    }
    if (roles && !roles.includes(account.role)) throw badCredentials()
    const rehashIfNeeded = async (): Promise<number | null> => {
      if (!passwords.needsRehash(account.passwordHash)) return null
      const rehashed = await commands.handle(
        accountStream(account.id),
        accountDecider,
        { type: 'RehashPassword', data: { password_hash: await passwords.hash(input.password) } },
        { actorId: account.id, owner: account.id },
      )
      return rehashed.revision
    }
    const challengeResponse = async (): Promise<ChallengeResponse> => {
      const challenge = await tokens.issueChallenge({
        sub: String(account.id),
        amr: ['pwd'],
        ttlSeconds: CHALLENGE_TTL_SECONDS,
      })
      return {
        access_token: challenge.token,
        token_type: 'bearer',
        requires_2fa: true,
        expires_in: challenge.expiresIn,
      }
    }
    if (account.totp.secret !== null) {
      // The password alone is no successful login for a 2FA account: locked or deactivated
      // accounts are still refused, but the failure count (which verify-2fa failures feed) is
      // kept until verify-2fa succeeds; clearing it here would buy 4 more code guesses per login.
      accountDecider.decide({ type: 'RecordSuccessfulLogin', data: { now: now().getTime() } }, account)
      await rehashIfNeeded()
      return challengeResponse()
    }
    const success = await commands.handle(
      accountStream(account.id),
      accountDecider,
      { type: 'RecordSuccessfulLogin', data: { now: now().getTime() } },
      { actorId: account.id, owner: account.id },
    )
    const revision = (await rehashIfNeeded()) ?? success.revision ?? 0
    const current = success.state as ExistingAccount
    // 2FA enabled between loading the account and recording the login.
    if (current.totp.secret !== null) return challengeResponse()
    return startSession(current, revision, ['pwd'], client)
  }

  /** Turns a challenge into a full session with a TOTP code (once per time step) or a recovery code. */
  async function verifySecondFactor(
    challengeToken: string,
    code: string,
    client: Client,
  ): Promise<TokenResponse> {
    const claims = await tokens.verifyChallenge(challengeToken)
    const unauthorized = new DomainError('INVALID_CREDENTIALS', 'Invalid or expired two-factor code')
    if (!claims || usedChallenges.has(claims.jti))
      throw new DomainError('INVALID_CREDENTIALS', 'Invalid challenge token')
    const userId = Number(claims.sub)
    const { account } = await loadExisting(userId)
    if (account.status !== 'active') throw new DomainError('ACCOUNT_DEACTIVATED', 'Account is deactivated')
    if (isLockedAt(account, now().getTime())) {
      accountDecider.decide({ type: 'RecordSuccessfulLogin', data: { now: now().getTime() } }, account)
    }
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
    const accepted = await commands.handle(
      accountStream(userId),
      accountDecider,
      {
        type: 'AcceptSecondFactor',
        data: step !== null ? { totp_step: step } : { recovery_index: recoveryIndex },
      },
      { actorId: userId, owner: userId },
    )
    usedChallenges.set(claims.jti, claims.exp)
    for (const [jti, exp] of usedChallenges) if (exp * 1000 < now().getTime()) usedChallenges.delete(jti)
    return startSession(accepted.state as ExistingAccount, accepted.revision ?? 0, ['pwd', 'otp'], client)
  }

  /** Rotates a refresh token. A token that was already rotated revokes its whole session. */
  async function refresh(refreshToken: string): Promise<TokenResponse> {
    const parsed = parseRefreshToken(refreshToken)
    if (!parsed) throw invalidRefresh()
    const stream = sessionStream(parsed.sessionId)
    const { state: session } = await commands.load(stream, sessions)
    if (session.status !== 'active') throw invalidRefresh()
    const { account } = await loadExisting(session.userId).catch(() => {
      throw invalidRefresh()
    })
    const nowMs = now().getTime()
    if (
      account.status !== 'active' ||
      isLockedAt(account, nowMs) ||
      isSessionRevokedByAccount(account, session.id, session.accountRevision)
    ) {
      throw invalidRefresh()
    }
    const next = newOpaqueToken()
    const result = await commands.handle(
      stream,
      sessions,
      {
        type: 'Refresh',
        data: {
          presented_hash: hashOpaqueToken(parsed.secret),
          refresh_token_hash: next.hash,
          expires_at: new Date(nowMs + deps.refreshTtlSeconds * 1000).toISOString(),
          now: nowMs,
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
      refresh_token: `${session.id}.${next.token}`,
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

  return { login, verifySecondFactor, refresh, revokeSession }
}

function isExisting(state: Account): state is ExistingAccount {
  return state.status === 'active' || state.status === 'deactivated'
}

export type Authentication = ReturnType<typeof createAuthentication>
