import * as z from 'zod'
import { ROUTES } from '../routes.ts'
import { ActivityEvent } from '../schemas.ts'
import { router, userProcedure } from '../trpc.ts'

export const activityRouter = router({
  activity: userProcedure
    .meta({
      openapi: {
        ...ROUTES.activity,
        tags: ['auth'],
        protect: true,
        summary: "The caller's own security history, newest first",
      },
    })
    .input(z.object({ limit: z.coerce.number().int().min(1).max(500).default(50) }).optional())
    .output(z.array(ActivityEvent))
    .query(({ input, ctx }) => ctx.runtime.queries.activity(ctx.principal.userId, input?.limit ?? 50)),
})
