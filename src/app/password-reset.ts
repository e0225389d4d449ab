/**
 * Password reset by email. The request answers the same whether or not the address exists;
 * the token (`<user id>.<256-bit secret>`) is stored only as a hash, valid 30 minutes, once.
 */
import { accountDecider } from '../../domain/account.decider.ts'
import { DomainError } from '../../domain/errors.ts'
import { passwordProblem } from '../../domain/password-policy.ts'
import type { Logger } from '../logger.ts'
import type { ProjectionRunner } from '../readstore/projection-runner.ts'
import type { Queries, UserRow } from '../readstore/queries.ts'
import type { PasswordHasher } from '../security/passwords.ts'
import { hashOpaqueToken, isOpaqueTokenShape, newOpaqueToken } from '../security/refresh-tokens.ts'
import type { CommandHandler } from './command-handler.ts'
import type { Mailer } from './mailer.ts'
import { accountStream } from './streams.ts'

export const RESET_TOKEN_MINUTES = 30

export function createPasswordReset(deps: {
  commands: CommandHandler
  runner: ProjectionRunner
  queries: Queries
  passwords: PasswordHasher
  mailer: Mailer
  log: Logger
  publicUrl: string
  now: () => Date
}) {
  const { commands, runner, queries, passwords, mailer, now } = deps
  const invalid = (): DomainError => new DomainError('RESET_TOKEN_INVALID', 'Invalid or expired reset token')

  async function issue(user: UserRow): Promise<void> {
    const secret = newOpaqueToken()
    const expiresAt = new Date(now().getTime() + RESET_TOKEN_MINUTES * 60_000)
    await commands.handle(
      accountStream(user.id),
      accountDecider,
      {
        type: 'RequestPasswordReset',
        data: { token_hash: secret.hash, expires_at: expiresAt.toISOString() },
      },
      { actorId: null, owner: user.id },
    )
    const token = `${user.id}.${secret.token}`
    mailer.send({
      to: user.email,
      subject: 'Reset your password',
      text:
        `Someone asked to reset the password of your account "${user.username}".\n\n` +
        `Reset token: ${token}\n` +
        `Or open: ${deps.publicUrl}/docs#/auth/auth.passwordReset (POST /auth/password-reset with this token)\n\n` +
        `The token works once and expires at ${expiresAt.toISOString()}. If it was not you, ignore this mail.\n`,
    })
  }

  return {
    /**
     * Answers at once for known and unknown addresses alike: the reset is recorded and mailed
     * in the background, so response time does not tell whether an account exists.
     */
    request(email: string): void {
      const user = queries.userByEmail(email)
      if (user?.is_active !== 1) return
      issue(user).catch((error: unknown) =>
        deps.log.error('password reset request failed', {
          user_id: user.id,
          error: (error as Error).message,
        }),
      )
    },
    async reset(token: string, newPassword: string): Promise<void> {
      const dot = token.indexOf('.')
      const userId = Number(token.slice(0, dot))
      const secret = token.slice(dot + 1)
      if (dot < 1 || !Number.isSafeInteger(userId) || userId < 1 || !isOpaqueTokenShape(secret))
        throw invalid()
      const { state } = await commands.load(accountStream(userId), accountDecider)
      if (state.status !== 'active' && state.status !== 'deactivated') throw invalid()
      const tokenHash = hashOpaqueToken(secret)
      const known = state.resetTokens.find((t) => t.hash === tokenHash)
      if (!known || known.used || Date.parse(known.expiresAt) <= now().getTime()) throw invalid()
      const problem = passwordProblem(newPassword, { username: state.username, email: state.email })
      if (problem) throw new DomainError('WEAK_PASSWORD', problem)
      const result = await commands.handle(
        accountStream(userId),
        accountDecider,
        {
          type: 'CompletePasswordReset',
          data: {
            token_hash: tokenHash,
            password_hash: await passwords.hash(newPassword),
            now: now().getTime(),
          },
        },
        { actorId: userId, owner: userId },
      )
      await runner.waitFor(result.position)
    },
  }
}

export type PasswordReset = ReturnType<typeof createPasswordReset>
