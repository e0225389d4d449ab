/** given(events).when(command).then(events) — for pure deciders. */
import { expect } from 'vitest'
import type { AccountRegistered } from '../../domain/account.events.ts'
import { DomainError, type DomainErrorCode } from '../../domain/errors.ts'

type Decider<S, C, E> = { decide(c: C, s: S): E[]; evolve(s: S, e: E): S; initialState: S }

export function specFor<S, C, E>(decider: Decider<S, C, E>) {
  return function given(...history: E[]) {
    const state = history.reduce(decider.evolve, decider.initialState)
    return {
      state,
      when(command: C) {
        const run = (): E[] => decider.decide(command, state)
        return {
          // biome-ignore lint/suspicious/noThenProperty: given/when/then reads as the spec it is
          then(...expected: E[]): void {
            expect(run()).toEqual(expected)
          },
          thenMatches(check: (events: E[]) => void): void {
            check(run())
          },
          thenThrows(code: DomainErrorCode): DomainError {
            try {
              run()
            } catch (error) {
              expect(error).toBeInstanceOf(DomainError)
              expect((error as DomainError).code).toBe(code)
              return error as DomainError
            }
            throw new Error(`expected ${code}, but the command succeeded`)
          },
        }
      },
    }
  }
}

/** User 7, alice, as registered: the start of most account histories in these specs. */
export const registered: AccountRegistered = {
  type: 'AccountRegistered',
  data: {
    user_id: 7,
    username: 'alice',
    email: 'alice@example.com',
    full_name: null,
    company_name: null,
    role: 'user',
    password_hash: '$argon2id$…',
    username_key: 'uk',
    email_key: 'ek',
  },
}
