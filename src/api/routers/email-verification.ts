import { ROUTES } from '../routes.ts'
import { Message, VerifyEmailRequest } from '../schemas.ts'
import { clientKey, enforceRateLimit, limitedProcedure, router, userProcedure } from '../trpc.ts'

/** Limited per client address and per account alike, so neither a new address nor a new token helps. */
const limitedUserProcedure = userProcedure.use(async function rateLimitCaller({ ctx, path, next }) {
  await enforceRateLimit(ctx.request, path, [clientKey(ctx.request), `user-${ctx.principal.userId}`])
  return next()
})

export const emailVerificationRouter = router({
  verifyEmail: limitedProcedure
    .meta({
      openapi: {
        ...ROUTES.verifyEmail,
        tags: ['email verification'],
        summary: 'Confirm an email address with the single-use token mailed to it',
        description:
          'Marks the address verified. With REQUIRE_VERIFIED_EMAIL=1, a token mailed for a change of ' +
          'address makes the change take effect.',
        errorResponses: {
          400: 'Invalid, expired or already used token',
          409: 'The new address was taken meanwhile',
          429: 'Rate limited',
        },
      },
    })
    .input(VerifyEmailRequest)
    .output(Message)
    .mutation(async ({ input, ctx }) => {
      await ctx.runtime.emailVerification.verify(input.token)
      return { message: 'Email address verified' }
    }),

  resendVerification: limitedUserProcedure
    .meta({
      openapi: {
        ...ROUTES.resendVerification,
        tags: ['email verification'],
        protect: true,
        summary: 'Mail a new verification token; the one mailed before stops working',
        description:
          'Goes to the change of address awaiting confirmation if there is one, else to the current ' +
          'address. At most one per minute per account.',
        errorResponses: {
          400: 'The address is already verified',
          401: 'Not authenticated',
          429: 'Rate limited',
        },
      },
    })
    .output(Message)
    .mutation(async ({ ctx }) => {
      await ctx.runtime.emailVerification.resend(ctx.principal.userId, { actorId: ctx.principal.userId })
      return { message: 'A new verification token has been mailed' }
    }),
})
