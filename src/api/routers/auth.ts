import * as z from 'zod'
import { toSessionResponse, toUserResponse } from '../presenters.ts'
import { ROUTES } from '../routes.ts'
import {
  LoginForm,
  LoginResult,
  Message,
  SessionIdPath,
  SessionResponse,
  Token,
  TokenRefresh,
  UserCreate,
  UserResponse,
  UserUpdate,
} from '../schemas.ts'
import { limitedProcedure, router, userProcedure } from '../trpc.ts'

const formLogin = (path: '/auth/login' | '/token', summary: string) =>
  limitedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path,
        tags: ['auth'],
        summary,
        contentTypes: ['application/x-www-form-urlencoded', 'application/json'],
        errorResponses: { 401: 'Bad credentials', 403: 'Deactivated', 423: 'Locked', 429: 'Rate limited' },
      },
    })
    .input(LoginForm)
    .output(LoginResult)
    .mutation(({ input, ctx }) => ctx.runtime.authentication.login(input, ctx.request.client))

export const authRouter = router({
  register: limitedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/register',
        tags: ['auth'],
        summary: 'Create an account',
        errorResponses: { 409: 'Username or email taken', 429: 'Rate limited' },
      },
    })
    .input(UserCreate)
    .output(UserResponse)
    .mutation(async ({ input, ctx }) => {
      const user = await ctx.runtime.accounts.register({ ...input, role: 'user' }, { actorId: null })
      return toUserResponse(user, ctx.runtime.now())
    }),

  login: formLogin('/auth/login', 'Log in with the OAuth2 password form'),
  token: formLogin('/token', 'OAuth2 token endpoint (same as /auth/login)'),

  tokenRefresh: limitedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/auth/token-refresh',
        tags: ['auth'],
        summary: 'Rotate a refresh token',
        errorResponses: { 401: 'Invalid, expired or reused refresh token', 429: 'Rate limited' },
      },
    })
    .input(TokenRefresh)
    .output(Token)
    .mutation(({ input, ctx }) => ctx.runtime.authentication.refresh(input.refresh_token)),

  sessions: userProcedure
    .meta({ openapi: { ...ROUTES.sessions, tags: ['sessions'], protect: true } })
    .output(z.array(SessionResponse))
    .query(({ ctx }) =>
      ctx.runtime.queries
        .activeSessions(ctx.principal.userId, ctx.runtime.now())
        .map((s) => toSessionResponse(s, ctx.principal.sessionId)),
    ),

  revokeSession: userProcedure
    .meta({
      openapi: {
        ...ROUTES.revokeSession,
        tags: ['sessions'],
        protect: true,
        errorResponses: { 404: 'Not a session of the caller' },
      },
    })
    .input(SessionIdPath)
    .output(Message)
    .mutation(async ({ input, ctx }) => {
      await ctx.runtime.authentication.revokeSession(ctx.principal.userId, input.session_id, {
        actorId: ctx.principal.userId,
      })
      return { message: 'Session revoked' }
    }),

  verifyUser: userProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/auth/verify-user/{username}',
        tags: ['auth'],
        protect: true,
        errorResponses: { 404: 'User not found' },
      },
    })
    .input(z.object({ username: z.string().min(1).max(64) }))
    .output(UserResponse)
    .query(({ input, ctx }) => {
      const user = ctx.runtime.queries.userByUsername(input.username)
      if (!user) throw notFound()
      const { principal } = ctx
      const seesEmail =
        principal.userId === user.id || principal.role === 'admin' || principal.role === 'auditor'
      return toUserResponse(user, ctx.runtime.now(), { maskEmail: !seesEmail })
    }),

  updateProfile: userProcedure
    .meta({
      openapi: {
        ...ROUTES.profile,
        tags: ['auth'],
        protect: true,
        errorResponses: { 401: 'Not authenticated, or wrong current_password', 409: 'Email taken' },
      },
    })
    .input(UserUpdate)
    .output(UserResponse)
    .mutation(async ({ input, ctx }) => {
      const user = await ctx.runtime.accounts.updateProfile(ctx.principal.userId, input, {
        actorId: ctx.principal.userId,
        sessionId: ctx.principal.sessionId,
      })
      return toUserResponse(user, ctx.runtime.now())
    }),
})

import { TRPCError } from '@trpc/server'

function notFound(): TRPCError {
  return new TRPCError({ code: 'NOT_FOUND', message: 'User not found' })
}
