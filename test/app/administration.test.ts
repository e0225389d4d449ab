/**
 * Two admins taking each other's power at the same moment, past the token check (as two
 * requests already in flight would be): exactly one succeeds, so someone can still administer.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isDomainError } from '../../domain/errors.ts'
import { createAdministration } from '../../src/app/administration.ts'
import { createRosterLock } from '../../src/app/roster-lock.ts'
import type { Runtime } from '../../src/app/runtime.ts'
import { openTestRuntime } from '../support/runtime.ts'

let runtime: Runtime
let cleanup: () => Promise<void>
beforeEach(async () => {
  ;({ runtime, cleanup } = await openTestRuntime())
})
afterEach(async () => cleanup())

async function twoAdmins(): Promise<[number, number]> {
  const make = async (name: string) =>
    (
      await runtime.accounts.register(
        { username: name, email: `${name}@example.com`, password: 'correct horse battery', role: 'admin' },
        { actorId: null },
      )
    ).id
  return [await make('ann'), await make('bea')]
}

const removals: [string, (r: Runtime, actor: number, target: number) => Promise<unknown>][] = [
  ['deactivate', (r, actor, target) => r.administration.setActive(actor, target, false)],
  ['lock', (r, actor, target) => r.administration.lock(actor, target, null, null)],
  ['demote', (r, actor, target) => r.administration.changeRole(actor, target, 'user')],
  ['delete', (r, actor, target) => r.administration.delete(actor, target)],
]

describe('administration: taking power away', () => {
  for (const [name, remove] of removals) {
    it(`${name}: of two admins acting on each other at once, exactly one succeeds`, async () => {
      const [ann, bea] = await twoAdmins()
      const outcomes = await Promise.allSettled([remove(runtime, ann, bea), remove(runtime, bea, ann)])
      expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected'])
      const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult
      expect(isDomainError(refused.reason) && refused.reason.code).toBe('FORBIDDEN')

      const powerful = [ann, bea].filter((id) => {
        const row = runtime.queries.userById(id)
        return row?.role === 'admin' && row.is_active === 1 && !row.locked_until
      })
      expect(powerful).toHaveLength(1)
    })
  }
})

describe('administration on two instances of one store', () => {
  /** A second instance's administration: its own in-process queue, the same store and read models. */
  function secondInstance(): Runtime['administration'] {
    return createAdministration({
      accounts: runtime.accounts,
      commands: runtime.commands,
      queries: runtime.queries,
      claims: runtime.claims,
      compactReadModels: () => {},
      bootstrapToken: 'unused',
      roster: createRosterLock(runtime.store, runtime.now),
      catchUp: async () => runtime.runner.waitFor(await runtime.store.headPosition()),
      now: runtime.now,
    })
  }

  for (const [name, remove] of removals) {
    it(`${name}: two admins on two instances acting on each other at once leave one admin`, async () => {
      const [ann, bea] = await twoAdmins()
      const other = { ...runtime, administration: secondInstance() } as Runtime
      const outcomes = await Promise.allSettled([remove(runtime, ann, bea), remove(other, bea, ann)])
      expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected'])
      const powerful = [ann, bea].filter((id) => {
        const row = runtime.queries.userById(id)
        return row?.role === 'admin' && row.is_active === 1 && !row.locked_until
      })
      expect(powerful).toHaveLength(1)
      // The roster stream records who took the lock for what.
      const roster = await runtime.store.readStream('admin-roster')
      expect(roster.filter((e) => e.type === 'RosterLockTaken')).toHaveLength(2)
    })
  }
})
