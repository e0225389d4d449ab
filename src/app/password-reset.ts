/**
 * Password reset by email. The request answers the same whether or not the address exists;
 * the token (`<user id>.<256-bit secret>`) is stored only as a hash, valid 30 minutes, once.
 */
import { accountDecider, assertResetTokenUsable, invalidResetToken } from '../../domain/account.decider.ts'
import { assertPasswordAllowed } from '../../domain/password-policy.ts'
import type { ProjectionRunner } from '../readstore/projection-runner.ts'
import type { Queries, UserRow } from '../readstore/queries.ts'
import { newIdToken, readIdToken } from '../security/opaque-tokens.ts'
import type { PasswordHasher } from '../security/passwords.ts'
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

  async function issue(user: UserRow): Promise<void> {
    const reset = newIdToken(user.id)
    const expiresAt = new Date(now().getTime() + RESET_TOKEN_MINUTES * 60_000)
    await commands.handle(
      accountStream(user.id),
      accountDecider,
      {
        type: 'RequestPasswordReset',
        data: { token_hash: reset.hash, expires_at: expiresAt.toISOString() },
      },
      { actorId: null, owner: user.id },
    )
    mailer.send({
      to: user.email,
      subject: 'Reset your password',
      text:
        `Someone asked to reset the password of your account "${user.username}".\n\n` +
        `Choose a new password here: ${deps.publicUrl}/console#/reset-password?token=${encodeURIComponent(reset.token)}\n\n` +
        `Reset token: ${reset.token}\n` +
        `(An API client sends it with the new password to POST ${deps.publicUrl}/auth/password-reset.)\n\n` +
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
      const parsed = readIdToken(token)
      if (!parsed) throw invalidResetToken()
      const { id: userId, hash: tokenHash } = parsed
      const { state } = await commands.load(accountStream(userId), accountDecider)
      // Checked before the new password is hashed; the decider checks again at the append.
      const account = assertResetTokenUsable(state, tokenHash, now().getTime())
      assertPasswordAllowed(newPassword, { username: account.username, email: account.email })
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
