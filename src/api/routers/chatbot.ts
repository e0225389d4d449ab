import { ChatbotRequest, ChatbotResponse } from '../schemas.ts'
import { router, userProcedure } from '../trpc.ts'

export const chatbotRouter = router({
  interact: userProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/chatbot/interact',
        tags: ['chatbot'],
        protect: true,
        summary: "An account help assistant that answers from the caller's own account state",
      },
    })
    .input(ChatbotRequest)
    .output(ChatbotResponse)
    .mutation(({ input, ctx }) => ctx.runtime.chatbot.interact(ctx.principal.userId, input.message)),
})
