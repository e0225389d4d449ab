/**
 * Password reset by email. The request answers the same whether or not the address exists;
 * the token (`<user id>.<256-bit secret>`) is stored only as a hash, valid 30 minutes, once.
 */
import { accountDecider } from '../../domain/account.decider.ts'
import { DomainError } from '../../domain/errors.ts'
import { passwordProblem } from '../../domain/password-policy.ts'
import type { ProjectionRunner } from '../readstore/projection-runner.ts'
import type { Queries, UserRow } from '../readstore/queries.ts'
import type { PasswordHasher } from '../security/passwords.ts'
import { formatIdToken, hashOpaqueToken, newOpaqueToken, parseIdToken } from '../security/refresh-tokens.ts'
import type { AfterAnswer } from './after-answer.ts'
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
  afterAnswer: AfterAnswer
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
    const token = formatIdToken(user.id, secret.token)
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
     * Answers at once for known and unknown addresses alike: even the lookup runs after the
     * answer has gone out, so response time does not tell whether an account exists.
     */
    request(email: string): void {
      deps.afterAnswer.run('password reset request failed', async () => {
        const user = queries.userByEmail(email)
        if (user?.is_active === 1) await issue(user)
      })
    },
    async reset(token: string, newPassword: string): Promise<void> {
      const parsed = parseIdToken(token)
      if (!parsed) throw invalid()
      const { id: userId, secret } = parsed
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
