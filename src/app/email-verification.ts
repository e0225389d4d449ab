/**
 * Email verification. A single-use token (`<user id>.<256-bit secret>`, stored only as a hash in
 * the account stream, valid EMAIL_VERIFICATION_TTL_SECONDS) is mailed when an account is created,
 * on request (`resend`), and to the new address of an email change; `verify` confirms the address.
 * With REQUIRE_VERIFIED_EMAIL=1 a change of address is only requested by the profile update and
 * takes effect when its token is used; without it, it takes effect at once and the new address
 * starts unverified. Either way the old address is told. Only one token is outstanding at a time:
 * a newer one, or a change of address, voids it (domain/account.decider.ts).
 */
import {
  type AccountCommand,
  accountDecider,
  assertEmailVerificationUsable,
  invalidVerificationToken,
} from '../../domain/account.decider.ts'
import type { AccountEvent } from '../../domain/account.events.ts'
import type { ExistingAccount } from '../../domain/account.ts'
import { DomainError, isDomainError } from '../../domain/errors.ts'
import type { ProjectionRunner } from '../readstore/projection-runner.ts'
import { newIdToken, readIdToken } from '../security/opaque-tokens.ts'
import type { AfterAnswer } from './after-answer.ts'
import type { CommandContext, CommandHandler } from './command-handler.ts'
import type { Mailer } from './mailer.ts'
import { accountStream } from './streams.ts'
import type { UniqueClaims } from './unique-claims.ts'

/** `POST /auth/verify-email/resend` mails at most one token per account in this many seconds. */
export const RESEND_INTERVAL_SECONDS = 60
/** A login refused for an unverified address mails a new token when the last is at least this old. */
export const LOGIN_RESEND_INTERVAL_SECONDS = 300

/** A token as mailed, and what the account stream keeps of it. */
export type IssuedToken = { token: string; hash: string; expires_at: string }

type Who = { username: string; email: string }

/** `a***@example.com`: enough for the owner to recognise, not to hand the address on. */
function masked(email: string): string {
  const at = email.lastIndexOf('@')
  return at < 1 ? '***' : `${email[0]}***${email.slice(at)}`
}

export function createEmailVerification(deps: {
  commands: CommandHandler
  runner: ProjectionRunner
  claims: UniqueClaims
  mailer: Mailer
  afterAnswer: AfterAnswer
  publicUrl: string
  ttlSeconds: number
  requireVerified: boolean
  now: () => Date
}) {
  const { commands, runner, claims, mailer, now } = deps

  function issue(userId: number): IssuedToken {
    const { token, hash } = newIdToken(userId)
    return { token, hash, expires_at: new Date(now().getTime() + deps.ttlSeconds * 1000).toISOString() }
  }

  /** Milliseconds until a token requested for this account may be followed by another (0: now). */
  function waitBeforeAnother(account: ExistingAccount, intervalSeconds: number): number {
    const outstanding = account.emailVerification
    if (!outstanding) return 0
    // Issued TTL before it expires (a TTL changed since makes this an estimate, never a lock-out).
    const issuedAt = Date.parse(outstanding.expiresAt) - deps.ttlSeconds * 1000
    return Math.max(0, issuedAt + intervalSeconds * 1000 - now().getTime())
  }

  function mailToken(to: string, username: string, issued: IssuedToken, newAddress: boolean): void {
    mailer.send({
      to,
      subject: 'Confirm your email address',
      text:
        (newAddress
          ? `Someone asked to make this the email address of the account "${username}".\n\n`
          : `Please confirm that this is the email address of your account "${username}".\n\n`) +
        `Confirm it here: ${deps.publicUrl}/console#/verify-email?token=${encodeURIComponent(issued.token)}\n\n` +
        `Verification token: ${issued.token}\n` +
        `(An API client sends it as {"token": "<token>"} to POST ${deps.publicUrl}/auth/verify-email.)\n\n` +
        `The token works once and expires at ${issued.expires_at}. If it was not you, ignore this mail.\n`,
    })
  }

  function mailChangeNotice(previous: Who, newEmail: string, pendingUntil: string | null): void {
    mailer.send({
      to: previous.email,
      subject: pendingUntil ? 'Your email address is about to change' : 'Your email address was changed',
      text: pendingUntil
        ? `The account "${previous.username}" asked to change its email address from this one to ` +
          `${masked(newEmail)}. The change takes effect only when it is confirmed from the new address ` +
          `(until ${pendingUntil}); until then this address stays the account's.\n\n` +
          'If it was not you, change your password at once: it signs out your other sessions.\n'
        : `The email address of the account "${previous.username}" was changed from this one to ` +
          `${masked(newEmail)}. Password reset mail now goes to the new address; reset tokens sent ` +
          'here no longer work.\n\nIf it was not you, contact an administrator.\n',
    })
  }

  /** The command that records `issued` for the current address (or a live pending change). */
  function request(issued: IssuedToken): AccountCommand {
    return {
      type: 'RequestEmailVerification',
      data: { token_hash: issued.hash, expires_at: issued.expires_at, now: now().getTime() },
    }
  }

  /** The command that asks for a change of address confirmed by `issued` (REQUIRE_VERIFIED_EMAIL=1). */
  function changeRequest(
    change: { email: string; email_key: string },
    issued: IssuedToken,
    verifiedAtRevision: number,
  ): AccountCommand {
    return {
      type: 'RequestEmailChange',
      data: {
        ...change,
        token_hash: issued.hash,
        expires_at: issued.expires_at,
        verified_at_revision: verifiedAtRevision,
      },
    }
  }

  /**
   * The mail that follows events just appended: the token to the address it confirms and, when
   * `notice`, a notice of a change of address (done, or awaiting confirmation) to the previous one.
   */
  function mailAfter(
    events: readonly AccountEvent[],
    before: Who,
    issued: IssuedToken | undefined,
    notice: boolean,
  ): void {
    const changed = events.find((e) => e.type === 'EmailChanged')
    const requested = events.find((e) => e.type === 'EmailVerificationRequested')
    const pending = requested?.data.email
    if (issued && requested?.data.token_hash === issued.hash) {
      const to = pending ?? changed?.data.email ?? before.email
      mailToken(to, before.username, issued, pending !== undefined || changed !== undefined)
    }
    if (!notice) return
    if (changed) mailChangeNotice(before, changed.data.email, null)
    else if (pending !== undefined && requested) mailChangeNotice(before, pending, requested.data.expires_at)
  }

  return {
    issue,
    request,
    changeRequest,
    mailAfter,

    /** With REQUIRE_VERIFIED_EMAIL=1 a change of address waits for its confirmation. */
    changeNeedsConfirmation: deps.requireVerified,

    /** Confirms the address a token was mailed to: single use, until it expires. */
    async verify(token: string): Promise<void> {
      const parsed = readIdToken(token)
      if (!parsed) throw invalidVerificationToken()
      const { id: userId, hash } = parsed
      const stream = accountStream(userId)
      const { state } = await commands.load(stream, accountDecider)
      const { account, verification } = assertEmailVerificationUsable(state, hash, now().getTime())
      // A change of address takes the new address's claim first; the decider checks the token again.
      const newKey = verification.pendingEmailKey
      if (newKey !== null && !(await claims.claim('email', newKey, userId)))
        throw new DomainError('EMAIL_TAKEN', 'Email already registered')
      try {
        const result = await commands.handle(
          stream,
          accountDecider,
          { type: 'VerifyEmail', data: { token_hash: hash, now: now().getTime() } },
          { actorId: userId, owner: userId },
        )
        const changed = result.events.find((e) => e.type === 'EmailChanged')
        if (changed) {
          await claims.release('email', changed.data.previous_email_key, userId)
          mailChangeNotice(account, changed.data.email, null)
        }
        await runner.waitFor(result.position)
      } catch (error) {
        if (newKey !== null) await claims.release('email', newKey, userId)
        throw error
      }
    },

    /** A new token for the caller, voiding the outstanding one; at most one per RESEND_INTERVAL_SECONDS. */
    async resend(userId: number, context: CommandContext): Promise<void> {
      const { state } = await commands.load(accountStream(userId), accountDecider)
      if (state.status !== 'active' && state.status !== 'deactivated')
        throw new DomainError('ACCOUNT_NOT_FOUND', 'User not found')
      const wait = waitBeforeAnother(state, RESEND_INTERVAL_SECONDS)
      if (wait > 0) {
        throw new DomainError(
          'EMAIL_VERIFICATION_THROTTLED',
          'A verification mail was sent moments ago; wait before asking for another',
          { retryAfterSeconds: Math.ceil(wait / 1000) },
        )
      }
      const issued = issue(userId)
      const result = await commands.handle(accountStream(userId), accountDecider, request(issued), {
        ...context,
        owner: userId,
      })
      mailAfter(result.events, state, issued, false)
      await runner.waitFor(result.position)
    },

    /**
     * A login refused for an unverified address (REQUIRE_VERIFIED_EMAIL=1): after the answer, a new
     * token goes out unless the last one is younger than LOGIN_RESEND_INTERVAL_SECONDS, so the
     * account holder, who cannot sign in to ask for one, still gets one.
     */
    afterRefusedLogin(account: ExistingAccount): void {
      if (waitBeforeAnother(account, LOGIN_RESEND_INTERVAL_SECONDS) > 0) return
      deps.afterAnswer.run(
        'mailing a verification token after a refused login failed',
        async () => {
          const issued = issue(account.id)
          const result = await commands
            .handle(accountStream(account.id), accountDecider, request(issued), {
              actorId: account.id,
              owner: account.id,
            })
            .catch((error: unknown) => {
              // Verified meanwhile: nothing to send.
              if (isDomainError(error, 'ALREADY_IN_STATE')) return null
              throw error
            })
          if (result) mailAfter(result.events, account, issued, false)
        },
        { user_id: account.id },
      )
    },
  }
}

export type EmailVerification = ReturnType<typeof createEmailVerification>
