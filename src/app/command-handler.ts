/** load → decide → append with the expected revision; on a conflict, reload and try again. */
import { LRUCache } from 'lru-cache'
import { DomainError } from '../../domain/errors.ts'
import { type EventStore, type NewEvent, WrongExpectedRevisionError } from '../eventstore/event-store.ts'
import type { EventCodec } from './event-codec.ts'
import { eventMetadata } from './event-metadata.ts'

export type Decider<State, Command, Event> = {
  decide(command: Command, state: State): Event[]
  evolve(state: State, event: Event): State
  initialState: State
  /**
   * Keep the folded state in memory between commands, reading only newer events next time.
   * For streams that grow with use and whose state holds no personal data (sessions: one event
   * per refresh); an account's state is decrypted personal data and must not outlive erasure.
   */
  keepStateInMemory?: boolean
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
const KEPT_STATES = 10_000

export function createCommandHandler(
  store: EventStore,
  codec: EventCodec,
  now: () => Date = () => new Date(),
) {
  // Stream → state folded up to a revision; the store stays the truth, so a state another process
  // moved on from is caught up by reading the newer events, and a stale one fails on append.
  // At KEPT_STATES the least recently used stream's state goes.
  const kept = new LRUCache<string, { state: unknown; revision: number }>({ max: KEPT_STATES })
  /** The highest global position this process has committed a command at. */
  let lastPosition = 0n

  async function load<S, C, E extends { type: string; data: object }>(
    stream: string,
    decider: Decider<S, C, E>,
  ): Promise<Loaded<S>> {
    const from = decider.keepStateInMemory ? kept.get(stream) : undefined
    const recorded = await store.readStream(stream, { fromRevision: from ? from.revision + 1 : 0 })
    await codec.preload(recorded)
    let state = from ? (from.state as S) : decider.initialState
    for (const event of recorded) {
      const { type, data } = codec.decode(event)
      state = decider.evolve(state, { type, data } as unknown as E)
    }
    const revision = recorded.length === 0 ? (from?.revision ?? null) : recorded[recorded.length - 1].revision
    if (decider.keepStateInMemory && revision !== null) kept.set(stream, { state, revision })
    return { state, revision }
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
      // A shared key store makes the owner's key usable by the synchronous encode.
      await codec.prepare(
        context.owner,
        events.map((event) => event.type),
      )
      const occurredAt = now().toISOString()
      const toAppend: NewEvent[] = events.map((event) => ({
        type: event.type,
        data: codec.encode(context.owner, event.type, event.data as Record<string, unknown>),
        metadata: eventMetadata(occurredAt, context),
      }))
      try {
        const result = await store.append(stream, toAppend, revision ?? 'no_stream')
        if (result.position > lastPosition) lastPosition = result.position
        const after = { state: events.reduce(decider.evolve, state), revision: result.next_expected_revision }
        if (decider.keepStateInMemory) kept.set(stream, after)
        return { events, ...after, position: result.position }
      } catch (error) {
        if (!(error instanceof WrongExpectedRevisionError)) throw error
        if (attempt >= MAX_ATTEMPTS)
          throw new DomainError('CONCURRENT_CHANGE', 'Concurrent change, please retry')
      }
    }
  }

  return {
    load,
    handle,
    get lastPosition(): bigint {
      return lastPosition
    },
  }
}

export type CommandHandler = ReturnType<typeof createCommandHandler>
