/**
 * Account administration, each command recorded with the acting admin. Deletion erases by
 * crypto-shredding: the account's data key is destroyed when the deletion is projected, its
 * username and email are released, and read-model pages are checkpointed out of the WAL.
 */
import { timingSafeEqual } from 'node:crypto'
import { accountDecider } from '../../domain/account.decider.ts'
import { holdsAdminPower } from '../../domain/account.ts'
import { DomainError } from '../../domain/errors.ts'
import type { Role } from '../../domain/event.ts'
import type { Queries, UserRow } from '../readstore/queries.ts'
import type { Accounts } from './accounts.ts'
import type { CommandHandler } from './command-handler.ts'
import type { RosterLock } from './roster-lock.ts'
import { accountStream } from './streams.ts'
import type { UniqueClaims } from './unique-claims.ts'

export function createAdministration(deps: {
  accounts: Accounts
  commands: CommandHandler
  queries: Queries
  claims: UniqueClaims
  /** Moves deleted read-model pages out of the WAL so erased values leave the disk. */
  compactReadModels: () => void
  bootstrapToken: string
  /** Shared by every instance of the store: power changes and bootstraps one at a time. */
  roster: RosterLock
  /** Resolves once this instance's read models include everything committed so far. */
  catchUp: () => Promise<void>
  now: () => Date
}) {
  const { accounts, queries, now } = deps

  function notSelf(adminId: number, userId: number, what: string): void {
    if (adminId === userId) throw new DomainError('FORBIDDEN', `Admins cannot ${what} their own account`)
  }

  /** With no admin yet, the bootstrap token (compared in constant time) may create the first one. */
  function canBootstrap(presented: string | null): boolean {
    if (!presented || queries.hasAdmin()) return false
    const a = Buffer.from(presented)
    const b = Buffer.from(deps.bootstrapToken)
    return a.length === b.length && timingSafeEqual(a, b)
  }

  /**
   * Commands that can take an account's power away (deactivate, lock, change role, delete) run
   * one at a time across every instance (the roster lock; queued in-process first), each first
   * checking in the event store that its admin still holds power: two admins doing this to each
   * other at the same moment cannot both succeed and leave no one able to administer (nor
   * re-open the bootstrap, which a deactivated or locked admin still blocks).
   */
  const powerChanges = oneAtATime()
  function takePower<T>(adminId: number, userId: number, what: string, run: () => Promise<T>): Promise<T> {
    notSelf(adminId, userId, what)
    return powerChanges(() =>
      deps.roster.hold({ action: what, admin_id: adminId, user_id: userId }, async () => {
        const { state: admin } = await deps.commands.load(accountStream(adminId), accountDecider)
        if (!holdsAdminPower(admin, now().getTime()))
          throw new DomainError('FORBIDDEN', 'Not enough privileges')
        return run()
      }),
    )
  }

  /**
   * Bootstrap registrations run one at a time across every instance, each after its read models
   * caught up with the store, so concurrent requests cannot each create "the first" admin.
   */
  const bootstraps = oneAtATime()

  return {
    canBootstrap,

    /**
     * Runs `create` (which must wait until the new admin is in the read models) if the bootstrap
     * token is accepted, re-checked inside the queue; null when it is refused.
     */
    bootstrap<T>(presented: string | null, create: () => Promise<T>): Promise<T | null> {
      if (!canBootstrap(presented)) return Promise.resolve(null)
      return bootstraps(() =>
        deps.roster.hold({ action: 'bootstrap', admin_id: null, user_id: null }, async () => {
          await deps.catchUp()
          return canBootstrap(presented) ? create() : null
        }),
      )
    },

    async setActive(adminId: number, userId: number, active: boolean): Promise<UserRow> {
      const change = () =>
        accounts.administer(
          userId,
          { type: active ? 'Activate' : 'Deactivate', data: {} },
          { actorId: adminId },
        )
      await (active ? change() : takePower(adminId, userId, 'deactivate', change))
      return accounts.mustFind(userId)
    },

    async lock(
      adminId: number,
      userId: number,
      note: string | null,
      durationMinutes: number | null,
    ): Promise<void> {
      const until = durationMinutes
        ? new Date(now().getTime() + durationMinutes * 60_000).toISOString()
        : null
      await takePower(adminId, userId, 'lock', () =>
        accounts.administer(userId, { type: 'Lock', data: { note, until } }, { actorId: adminId }),
      )
    },

    async unlock(adminId: number, userId: number): Promise<void> {
      await accounts.administer(userId, { type: 'Unlock', data: {} }, { actorId: adminId })
    },

    async changeRole(adminId: number, userId: number, role: Role): Promise<UserRow> {
      await takePower(adminId, userId, 'change the role of', () =>
        accounts.administer(userId, { type: 'ChangeRole', data: { role } }, { actorId: adminId }),
      )
      return accounts.mustFind(userId)
    },

    async delete(adminId: number, userId: number): Promise<void> {
      await takePower(adminId, userId, 'delete', async () => {
        const { state } = await deps.commands.load(accountStream(userId), accountDecider)
        if (state.status !== 'active' && state.status !== 'deactivated') {
          throw new DomainError('ACCOUNT_NOT_FOUND', 'User not found')
        }
        await accounts.administer(userId, { type: 'Delete', data: {} }, { actorId: adminId })
        await deps.claims.release('username', state.usernameKey, userId)
        await deps.claims.release('email', state.emailKey, userId)
      })
      deps.compactReadModels()
    },
  }
}

export type Administration = ReturnType<typeof createAdministration>

/** Runs the functions given to it one after another, each after the previous one has settled. */
function oneAtATime(): <T>(run: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve()
  return (run) => {
    const next = tail.then(run)
    tail = next.catch(() => {})
    return next
  }
}
