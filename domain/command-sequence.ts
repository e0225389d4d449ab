/**
 * Several commands decided as one: each sees the state the events decided before it lead to, and
 * their events are appended together or not at all (one request, several intents).
 */
type Decider<S, C, E> = { decide(command: C, state: S): E[]; evolve(state: S, event: E): S; initialState: S }

export function inSequence<S, C, E>(decider: Decider<S, C, E>): Decider<S, readonly C[], E> {
  return {
    initialState: decider.initialState,
    evolve: decider.evolve,
    decide(commands, state) {
      const events: E[] = []
      let current = state
      for (const command of commands) {
        const decided = decider.decide(command, current)
        current = decided.reduce(decider.evolve, current)
        events.push(...decided)
      }
      return events
    },
  }
}
