/** TOTP enrolment (a fresh secret each time), enabling with recovery codes, disabling. */
import { accountDecider, pendingTotpSecret } from '../../domain/account.decider.ts'
import { DomainError } from '../../domain/errors.ts'
import type { ProjectionRunner } from '../readstore/projection-runner.ts'
import {
  generateRecoveryCodes,
  generateTotpSecret,
  hashRecoveryCode,
  totpQrSvg,
  totpUri,
  verifyTotp,
} from '../security/totp.ts'
import type { CommandHandler } from './command-handler.ts'
import { accountStream } from './streams.ts'

export function createTwoFactor(deps: {
  commands: CommandHandler
  runner: ProjectionRunner
  issuer: string
  now: () => Date
}) {
  const { commands, runner, now } = deps

  async function loadActive(userId: number) {
    const { state } = await commands.load(accountStream(userId), accountDecider)
    if (state.status !== 'active') throw new DomainError('ACCOUNT_NOT_FOUND', 'User not found')
    return state
  }

  return {
    async startEnrolment(userId: number): Promise<{ secret: string; otpauth_url: string; qr_svg: string }> {
      const account = await loadActive(userId)
      const secret = generateTotpSecret()
      const result = await commands.handle(
        accountStream(userId),
        accountDecider,
        { type: 'StartTotpEnrollment', data: { secret } },
        { actorId: userId, owner: userId },
      )
      await runner.waitFor(result.position)
      const otpauth_url = totpUri({ issuer: deps.issuer, account: account.username, secret })
      return { secret, otpauth_url, qr_svg: await totpQrSvg(otpauth_url) }
    },

    /** Confirms the enrolment with a current code; returns the recovery codes, shown this once. */
    async enable(userId: number, code: string): Promise<string[]> {
      const pending = pendingTotpSecret(await loadActive(userId))
      const step = verifyTotp(pending, code, now().getTime(), null)
      if (step === null) throw new DomainError('TWO_FACTOR_CODE_INVALID', 'Invalid two-factor code')
      const recoveryCodes = generateRecoveryCodes(10)
      const result = await commands.handle(
        accountStream(userId),
        accountDecider,
        { type: 'EnableTotp', data: { step, recovery_code_hashes: recoveryCodes.map(hashRecoveryCode) } },
        { actorId: userId, owner: userId },
      )
      await runner.waitFor(result.position)
      return recoveryCodes
    },

    async disable(userId: number): Promise<void> {
      const result = await commands.handle(
        accountStream(userId),
        accountDecider,
        { type: 'DisableTotp', data: {} },
        { actorId: userId, owner: userId },
      )
      await runner.waitFor(result.position)
    },
  }
}

export type TwoFactor = ReturnType<typeof createTwoFactor>
