import { activityRouter } from './routers/activity.ts'
import { adminRouter } from './routers/admin.ts'
import { authRouter } from './routers/auth.ts'
import { chatbotRouter } from './routers/chatbot.ts'
import { emailVerificationRouter } from './routers/email-verification.ts'
import { passkeysRouter } from './routers/passkeys.ts'
import { passwordResetRouter } from './routers/password-reset.ts'
import { systemRouter } from './routers/system.ts'
import { twoFactorRouter } from './routers/two-factor.ts'
import { vendorRouter } from './routers/vendor.ts'
import { mergeRouters, router } from './trpc.ts'

export const appRouter = router({
  auth: mergeRouters(
    authRouter,
    twoFactorRouter,
    passwordResetRouter,
    activityRouter,
    emailVerificationRouter,
    passkeysRouter,
  ),
  admin: adminRouter,
  vendor: vendorRouter,
  chatbot: chatbotRouter,
  system: systemRouter,
})

export type AppRouter = typeof appRouter
