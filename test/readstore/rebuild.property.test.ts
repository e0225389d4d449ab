import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AccountCommand, accountDecider } from '../../domain/account.decider.ts'
import { isDomainError } from '../../domain/errors.ts'
import { type SessionCommand, sessionDecider } from '../../domain/session.ts'
import { accountStream, sessionStream } from '../../src/app/streams.ts'
import { openTestRuntime } from '../support/runtime.ts'

type Step =
  | { kind: 'account'; user: number; command: AccountCommand }
  | { kind: 'session'; session: number; user: number; command: SessionCommand }

const NOW = Date.parse('2026-11-25T12:00:00Z')
const client = { ip_address: '203.0.113.9', user_agent: 'fc' }

const accountCommand = fc.oneof(
  fc.constant<AccountCommand>({
    type: 'RecordFailedLogin',
    data: { reason: 'password', now: NOW, ...client },
  }),
  fc.constant<AccountCommand>({
    type: 'RecordSuccessfulLogin',
    data: { now: NOW + 3_600_000, verified_at_revision: Number.MAX_SAFE_INTEGER },
  }),
  fc.constant<AccountCommand>({ type: 'Lock', data: { note: 'p', until: null } }),
  fc.constant<AccountCommand>({ type: 'Unlock', data: {} }),
  fc.constant<AccountCommand>({ type: 'Deactivate', data: {} }),
  fc.constant<AccountCommand>({ type: 'Activate', data: {} }),
  fc
    .constantFrom('user', 'admin', 'auditor', 'vendor')
    .map<AccountCommand>((role) => ({ type: 'ChangeRole', data: { role } })),
  fc
    .string({ maxLength: 8 })
    .map<AccountCommand>((name) => ({ type: 'ChangeFullName', data: { full_name: name } })),
  fc.string({ minLength: 1, maxLength: 8 }).map<AccountCommand>((name) => ({
    type: 'ChangePassword',
    data: {
      password_hash: `h-${name}`,
      current_session_id: null,
      verified_at_revision: Number.MAX_SAFE_INTEGER,
    },
  })),
  fc.string({ minLength: 1, maxLength: 8 }).map<AccountCommand>((name) => ({
    type: 'ChangeEmail',
    data: {
      email: `${name}@example.com`,
      email_key: `k-${name}`,
      verified_at_revision: Number.MAX_SAFE_INTEGER,
    },
  })),
  fc.constant<AccountCommand>({ type: 'Delete', data: {} }),
)

const step = (users: number, sessions: number): fc.Arbitrary<Step> =>
  fc.oneof(
    fc.record({ user: fc.integer({ min: 1, max: users }), command: accountCommand }).map<Step>((s) => ({
      kind: 'account',
      ...s,
    })),
    fc
      .record({
        session: fc.integer({ min: 1, max: sessions }),
        user: fc.integer({ min: 1, max: users }),
        op: fc.nat(3),
      })
      .map<Step>(({ session, user, op }) => ({
        kind: 'session',
        session,
        user,
        command:
          op === 0
            ? { type: 'Revoke', data: { reason: 'user' } }
            : op === 1
              ? {
                  type: 'Refresh',
                  data: {
                    presented_hash: `r${session}`,
                    refresh_token_hash: `r${session}`,
                    expires_at: '2027-01-01T00:00:00Z',
                    now: NOW,
                    grace_ms: 0,
                  },
                }
              : {
                  type: 'Start',
                  data: {
                    session_id: session,
                    user_id: user,
                    account_revision: 0,
                    amr: ['pwd'],
                    refresh_token_hash: `r${session}`,
                    expires_at: '2027-01-01T00:00:00Z',
                    ...client,
                  },
                },
      })),
  )

describe('projections: live read models equal a rebuild from scratch', () => {
  let t: Awaited<ReturnType<typeof openTestRuntime>>
  beforeAll(async () => {
    t = await openTestRuntime()
  })
  afterAll(async () => t.cleanup())

  let run = 0
  it('for random command sequences', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step(3, 4), { minLength: 1, maxLength: 40 }), async (steps) => {
        run++
        const base = run * 100
        const { commands, runner, readStore } = t.runtime
        for (let u = 1; u <= 3; u++) {
          await commands.handle(
            accountStream(base + u),
            accountDecider,
            {
              type: 'Register',
              data: {
                user_id: base + u,
                username: `u${base + u}`,
                email: `u${base + u}@example.com`,
                full_name: null,
                company_name: null,
                role: 'user',
                password_hash: 'h',
                username_key: `uk${base + u}`,
                email_key: `ek${base + u}`,
              },
            },
            { actorId: null, owner: base + u },
          )
        }
        for (const s of steps) {
          try {
            if (s.kind === 'account') {
              await commands.handle(accountStream(base + s.user), accountDecider, s.command, {
                actorId: 1,
                owner: base + s.user,
              })
            } else {
              const command =
                s.command.type === 'Start'
                  ? {
                      ...s.command,
                      data: { ...s.command.data, session_id: base + s.session, user_id: base + s.user },
                    }
                  : s.command
              await commands.handle(sessionStream(base + s.session), sessionDecider, command, {
                actorId: null,
                owner: base + s.user,
              })
            }
          } catch (error) {
            if (!isDomainError(error)) throw error
          }
        }
        const pending = await t.runtime.store.readAll({ fromPosition: runner.position, limit: 100_000 })
        await runner.waitFor(pending.at(-1)?.position ?? null)
        const live = readStore.dump()
        await runner.rebuild()
        expect(readStore.dump()).toEqual(live)
      }),
      { numRuns: 25 },
    )
  })
})
