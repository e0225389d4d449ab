import { TRPCError } from '@trpc/server'
import { passedSecondFactor } from '../../app/amr.ts'
import { ROUTES } from '../routes.ts'
import { Enable2FARequest, Message, RecoveryCodesMessage, Token, TwoFactorSetup } from '../schemas.ts'
import { limitedProcedure, notAuthenticated, router, userProcedure } from '../trpc.ts'

const needsSecondFactor = (): TRPCError =>
  new TRPCError({ code: 'FORBIDDEN', message: 'This session has not passed two-factor authentication' })

export const twoFactorRouter = router({
  generate2faCode: userProcedure
    .meta({
      openapi: {
        ...ROUTES.generate2fa,
        tags: ['2fa'],
        protect: true,
        summary: 'Start (or restart) TOTP enrolment with a fresh secret',
        errorResponses: { 400: '2FA already enabled' },
      },
    })
    .output(TwoFactorSetup)
    .query(({ ctx }) => ctx.runtime.twoFactor.startEnrolment(ctx.principal.userId)),

  enable2fa: userProcedure
    .meta({
      openapi: {
        ...ROUTES.enable2fa,
        tags: ['2fa'],
        protect: true,
        summary: 'Confirm enrolment with a current code; returns 10 single-use recovery codes, once',
        errorResponses: { 400: 'Wrong code, or no enrolment started' },
      },
    })
    .input(Enable2FARequest)
    .output(RecoveryCodesMessage)
    .mutation(async ({ input, ctx }) => {
      const recovery_codes = await ctx.runtime.twoFactor.enable(ctx.principal.userId, input.code)
      return {
        message: 'Two-factor authentication enabled. Store these recovery codes safely.',
        recovery_codes,
      }
    }),

  verify2fa: limitedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/verify-2fa',
        tags: ['2fa'],
        protect: true,
        summary: 'Exchange a 2FA challenge token and a TOTP or recovery code for a full token',
        errorResponses: { 401: 'Bad or replayed code, or bad challenge', 423: 'Locked', 429: 'Rate limited' },
      },
    })
    .input(Enable2FARequest)
    .output(Token)
    .mutation(({ input, ctx }) => {
      if (!ctx.request.bearer) throw notAuthenticated()
      return ctx.runtime.authentication.verifySecondFactor(ctx.request.bearer, input.code, ctx.request.client)
    }),

  disable2fa: userProcedure
    .meta({
      openapi: {
        ...ROUTES.disable2fa,
        tags: ['2fa'],
        protect: true,
        errorResponses: { 400: '2FA not enabled', 403: 'Session has not passed 2FA' },
      },
    })
    .output(Message)
    .mutation(async ({ ctx }) => {
      if (!passedSecondFactor(ctx.principal.amr)) throw needsSecondFactor()
      await ctx.runtime.twoFactor.disable(ctx.principal.userId)
      return { message: 'Two-factor authentication disabled' }
    }),

  test2fa: userProcedure
    .meta({
      openapi: {
        ...ROUTES.test2fa,
        tags: ['2fa'],
        protect: true,
        errorResponses: { 403: 'Session has not passed 2FA' },
      },
    })
    .output(Message)
    .query(({ ctx }) => {
      if (!passedSecondFactor(ctx.principal.amr)) throw needsSecondFactor()
      return { message: 'This session passed two-factor authentication' }
    }),
})
