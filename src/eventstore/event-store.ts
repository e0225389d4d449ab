/**
 * The event store port. Semantics follow EventStoreDB: per-stream revisions starting at 0,
 * optimistic concurrency through an expected revision, one global position that only grows,
 * and subscriptions that catch up and then go live.
 */

export type ExpectedRevision = 'any' | 'no_stream' | 'stream_exists' | number

/** Who did it and why, plus the hash chain. Set by the store on append: `prev_hash`, `hash`. */
export type EventMetadata = {
  event_id: string
  schema_version: number
  occurred_at: string
  actor_id: string | null
  correlation_id: string | null
  causation_id: string | null
  prev_hash: string
  hash: string
}

export type NewEvent = {
  type: string
  data: Record<string, unknown>
  metadata: Omit<EventMetadata, 'prev_hash' | 'hash'>
}

export type RecordedEvent = {
  stream_id: string
  /** 0-based revision within the stream. */
  revision: number
  /** Global commit position; strictly increasing across all streams. */
  position: bigint
  type: string
  data: Record<string, unknown>
  metadata: EventMetadata
}

/** A recorded event whose type and data are known, e.g. `Recorded<AccountEvent>`. */
export type Recorded<E extends { type: string; data: object }> = Omit<RecordedEvent, 'type' | 'data'> & E

export type AppendResult = {
  /** Revision of the last event written. */
  next_expected_revision: number
  /** Global position of the last event written. */
  position: bigint
}

export type EventHandler = (event: RecordedEvent) => void | Promise<void>

export interface Subscription {
  /** Resolves once the subscription has delivered every event that existed when it started. */
  readonly caughtUp: Promise<void>
  close(): Promise<void>
}

export interface EventStore {
  append(stream: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult>
  /** All events of a stream in order; an empty array for a stream that does not exist. */
  readStream(stream: string, options?: { fromRevision?: number }): Promise<RecordedEvent[]>
  /** Events after `fromPosition` (exclusive) in commit order, at most `limit`. */
  readAll(options?: { fromPosition?: bigint; limit?: number }): Promise<RecordedEvent[]>
  /**
   * Every event after `fromPosition` (exclusive), first the stored ones, then live ones, in order,
   * awaiting the handler for each. A handler error stops the subscription: `caughtUp` rejects if
   * it happens during catch-up, `onError` hears of it afterwards.
   */
  subscribeAll(
    fromPosition: bigint | null,
    handler: EventHandler,
    onError?: (error: unknown) => void,
  ): Subscription
  /**
   * The global position of the last event in the store (0n when it is empty), without reading
   * events: cheap enough for every metrics scrape. `headPosition() - p` is how far a reader at
   * position `p` lags, in positions (an event count on SQLite, log bytes on EventStoreDB).
   */
  headPosition(): Promise<bigint>
  /** Names of every stream, for audits. */
  listStreams(): Promise<string[]>
  close(): Promise<void>
}

export class WrongExpectedRevisionError extends Error {
  readonly code = 'WRONG_EXPECTED_REVISION'
  readonly stream: string
  readonly expected: ExpectedRevision
  readonly actual: number | 'no_stream'

  constructor(stream: string, expected: ExpectedRevision, actual: number | 'no_stream') {
    super(`Stream ${stream}: expected revision ${String(expected)}, actual ${String(actual)}`)
    this.name = 'WrongExpectedRevisionError'
    this.stream = stream
    this.expected = expected
    this.actual = actual
  }
}

export class EventStoreUnavailableError extends Error {
  readonly code = 'EVENT_STORE_UNAVAILABLE'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'EventStoreUnavailableError'
  }
}

export function checkExpectedRevision(
  stream: string,
  expected: ExpectedRevision,
  current: number | 'no_stream',
): void {
  const ok =
    expected === 'any' ||
    (expected === 'no_stream' && current === 'no_stream') ||
    (expected === 'stream_exists' && current !== 'no_stream') ||
    (typeof expected === 'number' && expected === current)
  if (!ok) throw new WrongExpectedRevisionError(stream, expected, current)
}
