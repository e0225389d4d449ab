/** given(events).when(command).then(events) — for pure deciders. */
import { expect } from 'vitest'
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
