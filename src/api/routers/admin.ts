import { TRPCError } from '@trpc/server'
import * as z from 'zod'
import { toUserResponse } from '../presenters.ts'
import { ROUTES } from '../routes.ts'
import {
  AdminCreate,
  AdminLogin,
  AuditEvent,
  LockAccountRequest,
  LoginResult,
  Message,
  Role,
  RoleUpdate,
  UnlockAccountRequest,
  UserIdPath,
  UserResponse,
} from '../schemas.ts'
import { adminProcedure, auditProcedure, limitedProcedure, router } from '../trpc.ts'

/** Where the log first breaks: the stream and revision, and its global position and leaf. */
const LogBreak = z
  .object({
    stream_id: z.string().nullable(),
    revision: z.number().int().nullable(),
    position: z.string().nullable(),
    leaf_index: z.number().int(),
    reason: z.string(),
  })
  .nullable()
const CheckpointBreak = z
  .union([
    z.object({ stream: z.string(), revision: z.number().int(), reason: z.string() }),
    z.object({ tree_size: z.number().int(), reason: z.string() }),
  ])
  .nullable()
const Flag = z.enum(['true', 'false']).optional()
const TreeSize = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const Inclusion = z.object({
  leaf_index: z.number().int(),
  tree_size: z.number().int(),
  audit_path: z.array(z.string()),
})

const notFound = (): TRPCError => new TRPCError({ code: 'NOT_FOUND', message: 'User not found' })
const admin = (path: string, method: 'GET' | 'PUT' | 'POST' | 'DELETE', summary?: string) => ({
  openapi: {
    method,
    path: path as `/${string}`,
    tags: ['admin'],
    protect: true,
    summary,
    errorResponses: { 403: 'Not an admin', 404: 'User not found' },
  },
})

export const adminRouter = router({
  register: limitedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/admin/register',
        tags: ['admin'],
        protect: true,
        summary: 'Create an admin (an admin token, or X-Bootstrap-Token while no admin exists)',
        errorResponses: { 403: 'Not an admin', 409: 'Username or email taken' },
      },
    })
    .input(AdminCreate)
    .output(UserResponse)
    .mutation(async ({ input, ctx }) => {
      const { runtime } = ctx
      const principal = ctx.request.bearer ? await runtime.gate.authenticate(ctx.request.bearer) : null
      const create = () =>
        runtime.accounts.register({ ...input, role: 'admin' }, { actorId: principal?.userId ?? null })
      const user =
        principal?.role === 'admin'
          ? await create()
          : await runtime.administration.bootstrap(ctx.request.header('x-bootstrap-token'), create)
      if (!user) {
        if (principal) throw new TRPCError({ code: 'FORBIDDEN', message: 'Not enough privileges' })
        throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Not authenticated' })
      }
      return toUserResponse(user, runtime.now())
    }),

  login: limitedProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/admin/login',
        tags: ['admin'],
        summary: 'Log in as an admin',
        errorResponses: { 401: 'Not an admin, or bad credentials', 423: 'Locked', 429: 'Rate limited' },
      },
    })
    .input(AdminLogin)
    .output(LoginResult)
    .mutation(({ input, ctx }) => ctx.runtime.authentication.login(input, ctx.request.client, ['admin'])),

  users: auditProcedure
    .meta({
      openapi: { method: 'GET', path: '/admin/users', tags: ['admin'], protect: true, errorResponses: [403] },
    })
    .input(
      z
        .object({
          skip: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
          role: Role.optional(),
          q: z.string().max(100).optional(),
          // Keyset paging: users with a greater id (skip then applies after it), in O(limit).
          after_id: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
        })
        // Optional: a GET without any query string has no input at all.
        .optional(),
    )
    .output(z.array(UserResponse))
    .query(({ input, ctx }) =>
      ctx.runtime.queries
        .listUsers(input ?? { skip: 0, limit: 100 })
        .map((u) => toUserResponse(u, ctx.runtime.now())),
    ),

  deactivateUser: adminProcedure
    .meta(admin('/admin/deactivate-user/{user_id}', 'PUT', 'Deactivate; revokes every session'))
    .input(UserIdPath)
    .output(UserResponse)
    .mutation(async ({ input, ctx }) =>
      toUserResponse(
        await ctx.runtime.administration.setActive(ctx.principal.userId, input.user_id, false),
        ctx.runtime.now(),
      ),
    ),

  activateUser: adminProcedure
    .meta(admin('/admin/activate-user/{user_id}', 'PUT'))
    .input(UserIdPath)
    .output(UserResponse)
    .mutation(async ({ input, ctx }) =>
      toUserResponse(
        await ctx.runtime.administration.setActive(ctx.principal.userId, input.user_id, true),
        ctx.runtime.now(),
      ),
    ),

  changeRole: adminProcedure
    .meta(admin('/admin/user/role', 'PUT', 'Change a role; revokes existing sessions'))
    .input(RoleUpdate)
    .output(UserResponse)
    .mutation(async ({ input, ctx }) =>
      toUserResponse(
        await ctx.runtime.administration.changeRole(ctx.principal.userId, input.user_id, input.role),
        ctx.runtime.now(),
      ),
    ),

  deleteUser: adminProcedure
    .meta(
      admin(
        ROUTES.deleteUser.path,
        ROUTES.deleteUser.method,
        'Erase personal data (crypto-shredding) and revoke sessions',
      ),
    )
    .input(UserIdPath)
    .output(Message)
    .mutation(async ({ input, ctx }) => {
      await ctx.runtime.administration.delete(ctx.principal.userId, input.user_id)
      return { message: 'User deleted; personal data erased' }
    }),

  lock: adminProcedure
    .meta(
      admin('/admin/lock', 'POST', 'Lock an account (until unlocked, or for a duration); revokes sessions'),
    )
    .input(LockAccountRequest)
    .output(Message)
    .mutation(async ({ input, ctx }) => {
      await ctx.runtime.administration.lock(
        ctx.principal.userId,
        input.user_id,
        input.reason ?? null,
        input.duration_minutes ?? null,
      )
      return { message: 'Account locked' }
    }),

  unlock: adminProcedure
    .meta(admin('/admin/unlock', 'POST', 'Unlock an account and clear its failed-login count'))
    .input(UnlockAccountRequest)
    .output(Message)
    .mutation(async ({ input, ctx }) => {
      await ctx.runtime.administration.unlock(ctx.principal.userId, input.user_id)
      return { message: 'Account unlocked' }
    }),

  history: auditProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/admin/users/{user_id}/history',
        tags: ['audit'],
        protect: true,
        summary:
          "A user's full event history (account and sessions), in commit order; with proof=true each event's inclusion proof against the signed tree head in X-Tree-Head",
        errorResponses: [403, 404],
      },
    })
    .input(UserIdPath.extend({ proof: Flag }))
    .output(z.array(AuditEvent.extend({ inclusion: Inclusion.nullable().optional() })))
    .query(async ({ input, ctx }) => {
      const history = await ctx.runtime.audit.history(input.user_id, { proof: input.proof === 'true' })
      if (!history) throw notFound()
      if (history.head) ctx.request.responseHeaders.set('x-tree-head', history.head)
      return history.events
    }),

  auditVerify: auditProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/admin/audit/verify',
        tags: ['audit'],
        protect: true,
        summary:
          'Re-check the log against its hash chains and Merkle tree: the events since the last verified tree head, or all with full=true',
        errorResponses: [403],
      },
    })
    .input(z.object({ full: Flag }).optional())
    .output(
      z.object({
        ok: z.boolean(),
        streams_checked: z.number().int(),
        events_checked: z.number().int(),
        tree_size: z.number().int(),
        from_leaf: z.number().int(),
        first_broken: LogBreak,
      }),
    )
    .query(({ input, ctx }) => ctx.runtime.audit.verify({ full: input?.full === 'true' })),

  auditInclusion: auditProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/admin/audit/proof/inclusion',
        tags: ['audit'],
        protect: true,
        summary:
          'RFC 9162 inclusion proof of one event (by stream and revision, or by position) in a tree head',
        errorResponses: { 403: 'Not an admin or auditor', 404: 'No such event in that tree' },
      },
    })
    .input(
      z
        .object({
          stream: z.string().min(1).max(200).optional(),
          revision: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
          position: z
            .string()
            .regex(/^[1-9][0-9]{0,18}$/)
            .optional(),
          tree_size: TreeSize.optional(),
        })
        .refine((q) => (q.stream !== undefined && q.revision !== undefined) !== (q.position !== undefined), {
          message: 'give stream and revision, or position',
        }),
    )
    .output(Inclusion.extend({ leaf_hash: z.string() }))
    .query(async ({ input, ctx }) => {
      const where =
        input.position !== undefined
          ? { position: BigInt(input.position) }
          : { stream: input.stream as string, revision: input.revision as number }
      const proof = await ctx.runtime.audit.inclusion(where, input.tree_size)
      if (!proof) throw new TRPCError({ code: 'NOT_FOUND', message: 'No such event in a tree of that size' })
      return proof
    }),

  auditConsistency: auditProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/admin/audit/proof/consistency',
        tags: ['audit'],
        protect: true,
        summary: 'RFC 9162 consistency proof that the tree of `second` leaves extends the tree of `first`',
        errorResponses: { 400: 'first > second, or second beyond the tree', 403: 'Not an admin or auditor' },
      },
    })
    .input(z.object({ first: TreeSize, second: TreeSize }))
    .output(z.object({ first: z.number().int(), second: z.number().int(), proof: z.array(z.string()) }))
    .query(({ input, ctx }) => {
      const proof = ctx.runtime.audit.consistency(input.first, input.second)
      if (!proof) {
        throw new TRPCError({ code: 'BAD_REQUEST', message: 'Need first <= second <= the current tree size' })
      }
      return proof
    }),

  auditCheckpoint: auditProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/admin/audit/checkpoint',
        tags: ['audit'],
        protect: true,
        summary: 'A signed tree head: a JWS over the Merkle tree size, root hash and time',
        errorResponses: [403],
      },
    })
    .output(z.object({ checkpoint: z.string() }))
    .query(async ({ ctx }) => ({ checkpoint: await ctx.runtime.audit.checkpoint() })),

  auditVerifyCheckpoint: auditProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/admin/audit/verify-checkpoint',
        tags: ['audit'],
        protect: true,
        summary:
          'Prove that the current log extends an earlier signed tree head (or that streams still match a first-release checkpoint)',
        errorResponses: { 400: 'Checkpoint signature invalid', 403: 'Not an admin or auditor' },
      },
    })
    .input(z.object({ checkpoint: z.string().min(1).max(10_000_000) }))
    .output(
      z.object({
        ok: z.boolean(),
        tree_size: z.number().int().optional(),
        streams_checked: z.number().int().optional(),
        first_broken: CheckpointBreak,
      }),
    )
    .mutation(async ({ input, ctx }) => {
      const result = await ctx.runtime.audit.verifyCheckpoint(input.checkpoint)
      if (!result) throw new TRPCError({ code: 'BAD_REQUEST', message: 'Checkpoint signature is not valid' })
      return result
    }),
})
