/** load → decide → append with the expected revision; on a conflict, reload and try again. */
import { randomUUID } from 'node:crypto'
import { DomainError } from '../../domain/errors.ts'
import { type EventStore, type NewEvent, WrongExpectedRevisionError } from '../eventstore/event-store.ts'
import type { EventCodec } from './event-codec.ts'

export type Decider<State, Command, Event> = {
  decide(command: Command, state: State): Event[]
  evolve(state: State, event: Event): State
  initialState: State
}

export type CommandContext = {
  actorId: number | null
  correlationId?: string | null
  causationId?: string | null
}

export type Loaded<State> = { state: State; revision: number | null }

export type Handled<State, Event> = {
  events: Event[]
  state: State
  revision: number | null
  /** Global position of the last event written, or null when the command changed nothing. */
  position: bigint | null
}

const MAX_ATTEMPTS = 5

export function createCommandHandler(
  store: EventStore,
  codec: EventCodec,
  now: () => Date = () => new Date(),
) {
  async function load<S, C, E extends { type: string; data: object }>(
    stream: string,
    decider: Decider<S, C, E>,
  ): Promise<Loaded<S>> {
    const recorded = await store.readStream(stream)
    let state = decider.initialState
    for (const event of recorded) {
      const { type, data } = codec.decode(event)
      state = decider.evolve(state, { type, data } as unknown as E)
    }
    return { state, revision: recorded.length === 0 ? null : recorded[recorded.length - 1].revision }
  }

  async function handle<S, C, E extends { type: string; data: object }>(
    stream: string,
    decider: Decider<S, C, E>,
    command: C,
    context: CommandContext & { owner: number },
  ): Promise<Handled<S, E>> {
    for (let attempt = 1; ; attempt++) {
      const { state, revision } = await load(stream, decider)
      const events = decider.decide(command, state)
      if (events.length === 0) return { events, state, revision, position: null }
      const occurredAt = now().toISOString()
      const toAppend: NewEvent[] = events.map((event) => ({
        type: event.type,
        data: codec.encode(context.owner, event.type, event.data as Record<string, unknown>),
        metadata: {
          event_id: randomUUID(),
          schema_version: 1,
          occurred_at: occurredAt,
          actor_id: context.actorId === null ? null : String(context.actorId),
          correlation_id: context.correlationId ?? null,
          causation_id: context.causationId ?? null,
        },
      }))
      try {
        const result = await store.append(stream, toAppend, revision ?? 'no_stream')
        return {
          events,
          state: events.reduce(decider.evolve, state),
          revision: result.next_expected_revision,
          position: result.position,
        }
      } catch (error) {
        if (!(error instanceof WrongExpectedRevisionError)) throw error
        if (attempt >= MAX_ATTEMPTS)
          throw new DomainError('CONCURRENT_CHANGE', 'Concurrent change, please retry')
      }
    }
  }

  return { load, handle }
}

export type CommandHandler = ReturnType<typeof createCommandHandler>
