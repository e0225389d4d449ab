import { ROUTES } from '../routes.ts'
import { Message, PasswordReset, PasswordResetRequest } from '../schemas.ts'
import { limitedProcedure, router } from '../trpc.ts'

export const passwordResetRouter = router({
  passwordResetRequest: limitedProcedure
    .meta({
      openapi: {
        ...ROUTES.resetRequest,
        tags: ['password reset'],
        summary: 'Mail a single-use reset token (same answer whether or not the email exists)',
        errorResponses: { 429: 'Rate limited' },
      },
    })
    .input(PasswordResetRequest)
    .output(Message)
    .mutation(async ({ input, ctx }) => {
      ctx.runtime.passwordReset.request(input.email)
      return { message: 'If an account with that email exists, a password reset link has been sent.' }
    }),

  passwordReset: limitedProcedure
    .meta({
      openapi: {
        ...ROUTES.reset,
        tags: ['password reset'],
        summary: 'Set a new password with a reset token; revokes every session',
        errorResponses: { 400: 'Invalid, expired or used token', 429: 'Rate limited' },
      },
    })
    .input(PasswordReset)
    .output(Message)
    .mutation(async ({ input, ctx }) => {
      await ctx.runtime.passwordReset.reset(input.token, input.new_password)
      return { message: 'Password has been reset' }
    }),
})
