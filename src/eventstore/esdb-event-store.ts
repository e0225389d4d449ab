/**
 * EventStoreDB (or KurrentDB) adapter for the event store port, over `@eventstore/db-client` (gRPC).
 *
 * Positions. EventStoreDB positions are pairs {commit, prepare}; the port has one bigint. The port
 * position is the commit position. Every append through gRPC is an implicit transaction whose
 * prepare records carry the `IsCommitted` flag, and for those the server reports, for each event,
 * commit = prepare = the log position of its own record (single node or cluster alike). So the
 * commit positions of the events this service writes are unique and strictly increasing, and
 * {commit: p, prepare: p} is exactly where the event of position p sits in the log. (Only the
 * legacy TCP explicit transactions give several events one commit position; this service never
 * uses them.) The append result's `position.commit` is the position of the last event written.
 *
 * A position passed in (`readAll`, `subscribeAll`) that is not where some event of `$all` sits
 * (for example `p - 1n`) is not a valid read position for the server, which refuses it. Such a
 * position is still honoured — every event after it, exclusive — by reading `$all` from the start
 * and skipping; that is correct but slow on a large store, so callers should pass positions the
 * store gave them (an event's position or an append result), or null.
 *
 * Hash chain. `append` reads the stream head (last revision and its `metadata.hash`) from the
 * leader, checks the caller's expected revision against it, chains the new events onto it and
 * appends with exactly that revision (or `no_stream`), so a concurrent writer makes the server
 * reject the append instead of forking the chain. With `any` / `stream_exists` a lost race is
 * retried from the new head, since the caller asked for no particular revision.
 *
 * Retries. When an append's answer is lost (connection dropped, deadline, leader change), the
 * same request is sent again: same event ids, data, metadata and hashes, same expected revision.
 * If the first one was written the server recognises the ids at that revision and answers it as
 * an idempotent repeat; the events are never written twice and the chain never re-forked.
 *
 * Foreign events. A server may hold other applications' streams. `$all` subscriptions ask the
 * server for this service's stream-name prefixes only (`streamPrefixes`); `$all` reads cannot
 * (client 6.x sends no filter on reads), so they skip the other streams themselves. An event in
 * one of our streams that does not have our shape (JSON object data, our metadata with its hash
 * chain) is skipped with a warning that gives its position only, never its payload.
 *
 * Identity. The first open writes a random store id to its own stream (`no_stream`, so one id
 * wins however many instances start together); every later open reads it back. It tells one
 * store from another, as the PostgreSQL adapter's `storeId` does.
 *
 * Subscriptions deliver events strictly after `fromPosition`, one at a time: the handler is
 * awaited before the next event is pulled. `caughtUp` relies on the server's "caught up" message
 * (EventStoreDB 23.10 and later; the compose file runs 24.10): it resolves once the handler has
 * returned for every event the server sent before that message. A subscription dropped by the
 * server or the network is re-established from the last handled event.
 */
import { randomUUID } from 'node:crypto'
import {
  AccessDeniedError,
  type AppendExpectedRevision,
  BACKWARDS,
  CancelledError,
  DeadlineExceededError,
  END,
  type EventData,
  EventStoreDBClient,
  jsonEvent,
  NO_STREAM,
  NotLeaderError,
  type Position,
  type ReadPosition,
  START,
  StreamNotFoundError,
  streamNameFilter,
  TimeoutError,
  UnavailableError,
  WrongExpectedVersionError,
} from '@eventstore/db-client'
import {
  type AppendResult,
  checkExpectedRevision,
  type EventHandler,
  type EventMetadata,
  type EventStore,
  EventStoreUnavailableError,
  type ExpectedRevision,
  type NewEvent,
  type RecordedEvent,
  type Subscription,
  WrongExpectedRevisionError,
} from './event-store.ts'
import { chainEvents, GENESIS_HASH } from './hash-chain.ts'

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000
/** Events per `$all` read request; a page is re-read from its last event, which is then skipped. */
const PAGE_SIZE = 500
/**
 * Attempts of one append: races lost under `any` / `stream_exists` (each round one writer wins,
 * so n concurrent writers need at most n), and a change of leader.
 */
const MAX_APPEND_ATTEMPTS = 25
/**
 * Connectivity failures retried by one operation. When one call fails with UNAVAILABLE the client
 * drops its channel, and calls racing with it fail with "Channel closed before call started"
 * although the server is fine; a retry on the new channel then succeeds.
 */
const MAX_CONNECT_RETRIES = 3
/** Failed resubscriptions in a row, for errors that are not about connectivity, before giving up. */
const MAX_SUBSCRIPTION_FAILURES = 5
const MAX_BACKOFF_MS = 5_000
/** The server sends 2^64 - 1 (or -1) for "no position"; anything from 2^63 up is not a position. */
const NO_POSITION_FROM = 1n << 63n
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const HASH = /^[0-9a-f]{64}$/
/** Outside the stream prefixes, so the identity is never one of the log's events. */
export const STORE_IDENTITY_STREAM = 'auth-service-store-identity'

/**
 * The streams this service writes (src/app/streams.ts, `service-settings`, `admin-roster`); a
 * stream kind added there must be added here, or its events never reach `$all` readers.
 */
export const SERVICE_STREAM_PREFIXES: readonly string[] = [
  'user-',
  'session-',
  'username-',
  'email-',
  'sequence-',
  'service-settings',
  'admin-roster',
]

export type EsdbOptions = {
  /** How long `openEsdbEventStore` waits for the first answer of the server. */
  connectTimeoutMs?: number
  /** Which streams of `$all` are this service's; default `SERVICE_STREAM_PREFIXES`. */
  streamPrefixes?: readonly string[]
  /** Where skipped malformed events are reported; default `console.warn`. */
  warn?: (message: string, fields: Record<string, unknown>) => void
}

/** The part of the client this adapter uses; tests pass a fake. */
export type EsdbClient = Pick<
  EventStoreDBClient,
  'appendToStream' | 'readStream' | 'readAll' | 'subscribeToAll' | 'dispose'
>

/** True for connection strings this adapter takes: esdb://, esdb+discover://, kurrentdb://, kdb://… */
export function isEsdbConnectionString(url: string): boolean {
  return /^(esdb|kurrentdb|kurrent|kdb)(\+discover)?:\/\//i.test(url.trim())
}

/** The v6 client only parses esdb:// and esdb+discover://; KurrentDB's schemes mean the same. */
export function toEsdbConnectionString(url: string): string {
  return url
    .trim()
    .replace(/^(?:esdb|kurrentdb|kurrent|kdb)(\+discover)?:\/\//i, (_m, discover?: string) =>
      discover ? 'esdb+discover://' : 'esdb://',
    )
}

/** The connection string without its `user:password@`, for messages and logs. */
export function redactConnectionString(url: string): string {
  const trimmed = url.trim()
  const scheme = trimmed.indexOf('://')
  if (scheme < 0) return '<invalid connection string>'
  const query = trimmed.indexOf('?', scheme)
  const authority = query < 0 ? trimmed.slice(scheme + 3) : trimmed.slice(scheme + 3, query)
  const at = authority.lastIndexOf('@')
  if (at < 0) return trimmed
  return trimmed.slice(0, scheme + 3) + trimmed.slice(scheme + 3 + at + 1)
}

export async function openEsdbEventStore(
  connectionString: string,
  options: EsdbOptions = {},
): Promise<EsdbEventStore> {
  const safeUrl = redactConnectionString(connectionString)
  if (!isEsdbConnectionString(connectionString)) {
    throw new Error(`Not an EventStoreDB connection string: ${safeUrl} (expected esdb:// or kurrentdb://)`)
  }
  let client: EventStoreDBClient
  try {
    client = EventStoreDBClient.connectionString(toEsdbConnectionString(connectionString))
  } catch (error) {
    // The client's parse error quotes part of the string, which may be the password: not passed on.
    const expected = (error as { expected?: unknown }).expected
    throw new Error(
      `Invalid EventStoreDB connection string ${safeUrl}${typeof expected === 'string' ? ` (expected ${expected})` : ''}`,
    )
  }
  return connectEsdbEventStore(client, safeUrl, options)
}

/** The adapter over a client: checks the server answers and loads (or creates) the store id. */
export async function connectEsdbEventStore(
  client: EsdbClient,
  safeUrl: string,
  options: EsdbOptions = {},
): Promise<EsdbEventStore> {
  try {
    await ping(client, safeUrl, options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS)
    return new EsdbEventStore(client, safeUrl, await loadStoreId(client, safeUrl), options)
  } catch (error) {
    await client.dispose().catch(() => {})
    throw error
  }
}

/** One small read with a deadline, so an unreachable server fails fast and clearly. */
async function ping(client: EsdbClient, url: string, timeoutMs: number): Promise<void> {
  const read = client.readAll({ maxCount: 1 })
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new EventStoreUnavailableError(`EventStoreDB at ${url}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    )
  })
  try {
    await Promise.race([collect(read), timeout])
  } catch (error) {
    read.cancel().catch(() => {})
    if (error instanceof EventStoreUnavailableError) throw error
    const reason = error instanceof Error ? error.message : String(error)
    throw new EventStoreUnavailableError(`EventStoreDB at ${url} is unavailable: ${reason}`, { cause: error })
  } finally {
    clearTimeout(timer)
  }
}

/** The store id: read from its stream, written there first if this is the store's first open. */
async function loadStoreId(client: EsdbClient, url: string): Promise<string> {
  const readFirst = () => client.readStream(STORE_IDENTITY_STREAM, { maxCount: 1, requiresLeader: true })
  for (let attempt = 1; ; attempt++) {
    const [first] = await readWithRetries<Resolved>(readFirst, () => false).catch((error: unknown) => {
      if (error instanceof StreamNotFoundError) return []
      throw mapError(error, url)
    })
    if (first) {
      const id = (first.event?.data as { store_id?: unknown } | undefined)?.store_id
      if (typeof id === 'string' && id !== '') return id
      throw new Error(`EventStoreDB at ${url}: stream ${STORE_IDENTITY_STREAM} does not hold a store id`)
    }
    try {
      await client.appendToStream(
        STORE_IDENTITY_STREAM,
        jsonEvent({ type: 'StoreIdentified', data: { store_id: randomUUID() } }),
        { expectedRevision: NO_STREAM, requiresLeader: true },
      )
    } catch (error) {
      // Another instance wrote it first, or the answer was lost: the next read tells.
      const retry = error instanceof WrongExpectedVersionError || isConnectivityError(error)
      if (!retry || attempt >= MAX_CONNECT_RETRIES) throw mapError(error, url)
      if (isConnectivityError(error)) await sleep(100 * 2 ** (attempt - 1))
    }
  }
}

type Head = { revision: number; hash: string; position: bigint }

/** One append request, built once per stream head and resent unchanged after a lost answer. */
type Batch = { expectedRevision: AppendExpectedRevision; lastRevision: number; events: EventData[] }

/** What the client hands out for an event, from a stream read, a `$all` read or a subscription. */
type Resolved = {
  event?: {
    streamId: string
    revision: bigint
    type: string
    data: unknown
    metadata: unknown
    id: string
    isJson: boolean
    position?: Position
  }
  commitPosition?: bigint
}

type Readable<T> = AsyncIterable<T> & { on(event: 'error', listener: (error: Error) => void): unknown }

export class EsdbEventStore implements EventStore {
  /** Tells this store from any other; the same for every adapter on one store. */
  readonly storeId: string
  readonly #client: EsdbClient
  readonly #url: string
  readonly #prefixes: readonly string[]
  readonly #warn: (message: string, fields: Record<string, unknown>) => void
  readonly #subscriptions = new Set<{ close(): Promise<void> }>()
  #closed = false

  constructor(client: EsdbClient, url: string, storeId: string, options: EsdbOptions = {}) {
    this.#client = client
    this.#url = url
    this.storeId = storeId
    this.#prefixes = options.streamPrefixes ?? SERVICE_STREAM_PREFIXES
    this.#warn = options.warn ?? ((message, fields) => console.warn(message, fields))
  }

  async append(stream: string, events: NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    this.#assertOpen()
    for (const event of events) {
      // The server takes event ids as UUIDs only (and uses them for idempotent appends).
      if (!UUID.test(event.metadata.event_id)) {
        throw new Error(`Stream ${stream}: event id ${JSON.stringify(event.metadata.event_id)} is not a UUID`)
      }
    }
    let batch: Batch | null = null
    /** The current batch was sent before and may have been written: the server may answer it as a repeat. */
    let resent = false
    let connectRetries = 0
    for (let attempt = 1; ; attempt++) {
      if (!batch) {
        const head = await this.#head(stream)
        checkExpectedRevision(stream, expected, head ? head.revision : 'no_stream')
        if (events.length === 0) {
          return { next_expected_revision: head ? head.revision : -1, position: head ? head.position : 0n }
        }
        batch = chainBatch(stream, head, events)
      }
      try {
        const result = await this.#client.appendToStream(stream, batch.events, {
          expectedRevision: batch.expectedRevision,
          requiresLeader: true,
        })
        const position = result.position?.commit
        if (!resent && position !== undefined && position >= 0n && position < NO_POSITION_FROM) {
          return { next_expected_revision: batch.lastRevision, position }
        }
        // A repeat's answer need not give our last event's position; the stream does.
        return {
          next_expected_revision: batch.lastRevision,
          position: await this.#positionOf(stream, batch.lastRevision),
        }
      } catch (error) {
        if (
          error instanceof WrongExpectedVersionError &&
          (expected === 'any' || expected === 'stream_exists') &&
          attempt < MAX_APPEND_ATTEMPTS
        ) {
          // Lost a race (had a resent batch been written, the server would have answered it as a
          // repeat): chain onto the new head. A little jitter, so colliding writers fall out of step.
          batch = null
          resent = false
          if (attempt > 1) await sleep(Math.random() * Math.min(50, 2 * attempt))
          continue
        }
        if (error instanceof NotLeaderError && attempt < MAX_APPEND_ATTEMPTS) continue
        if (isConnectivityError(error) && connectRetries < MAX_CONNECT_RETRIES) {
          connectRetries++
          resent = true
          await sleep(100 * 2 ** (connectRetries - 1))
          continue
        }
        if (error instanceof WrongExpectedVersionError) {
          const actual = error.actualVersion
          throw new WrongExpectedRevisionError(
            stream,
            expected,
            typeof actual === 'bigint' ? Number(actual) : 'no_stream',
          )
        }
        throw this.#mapError(error)
      }
    }
  }

  async readStream(stream: string, options: { fromRevision?: number } = {}): Promise<RecordedEvent[]> {
    this.#assertOpen()
    const from = options.fromRevision ?? 0
    try {
      const read = () => this.#client.readStream(stream, { fromRevision: from > 0 ? BigInt(from) : START })
      const events: RecordedEvent[] = []
      for (const resolved of await this.#read<Resolved>(read)) {
        const event = toRecorded(resolved)
        if (event) events.push(event)
      }
      return events
    } catch (error) {
      if (error instanceof StreamNotFoundError) return []
      throw this.#mapError(error)
    }
  }

  async readAll(options: { fromPosition?: bigint; limit?: number } = {}): Promise<RecordedEvent[]> {
    this.#assertOpen()
    const limit = options.limit ?? Number.POSITIVE_INFINITY
    const events: RecordedEvent[] = []
    if (limit <= 0) return events
    try {
      for await (const event of this.#scanAll(options.fromPosition ?? null)) {
        events.push(event)
        if (events.length >= limit) break
      }
    } catch (error) {
      throw this.#mapError(error)
    }
    return events
  }

  subscribeAll(
    fromPosition: bigint | null,
    handler: EventHandler,
    onError?: (error: unknown) => void,
  ): Subscription {
    this.#assertOpen()
    const subscription = new EsdbSubscription(this, fromPosition, handler, onError)
    this.#subscriptions.add(subscription)
    subscription.finished.finally(() => this.#subscriptions.delete(subscription))
    return subscription
  }

  /**
   * The commit position of the last of our events: `$all` read backwards from its end, a page at
   * a time, skipping what `readAll` would skip (so a reader waiting for it can get there).
   */
  async headPosition(): Promise<bigint> {
    this.#assertOpen()
    try {
      let from: ReadPosition = END
      for (;;) {
        const start = from
        const page = await this.#read<Resolved>(() =>
          this.#client.readAll({ fromPosition: start, direction: BACKWARDS, maxCount: PAGE_SIZE }),
        )
        let last: Position | undefined
        for (const resolved of page) {
          last = resolved.event?.position ?? last
          const event = this.ours(resolved, { warn: false })
          if (event) return event.position
        }
        if (page.length < PAGE_SIZE || !last) return 0n
        from = last
      }
    } catch (error) {
      throw this.#mapError(error)
    }
  }

  async listStreams(): Promise<string[]> {
    this.#assertOpen()
    const streams = new Set<string>()
    try {
      for await (const event of this.#scanAll(null)) streams.add(event.stream_id)
    } catch (error) {
      throw this.#mapError(error)
    }
    return [...streams].sort()
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.allSettled([...this.#subscriptions].map((s) => s.close()))
    await this.#client.dispose()
  }

  // --- used by EsdbSubscription ---------------------------------------------------------------

  get client(): EsdbClient {
    return this.#client
  }

  get url(): string {
    return this.#url
  }

  get streamPrefixes(): string[] {
    return [...this.#prefixes]
  }

  /**
   * One of our events, or null: links, system events and other streams are skipped silently; an
   * event in our streams without our shape is skipped with a warning (position only: a foreign
   * payload may hold anything).
   */
  ours(resolved: Resolved, options: { warn: boolean }): RecordedEvent | null {
    const event = resolved.event
    const position = commitOf(resolved)
    if (!event || position === null || event.type.startsWith('$') || event.streamId.startsWith('$'))
      return null
    if (!this.#prefixes.some((prefix) => event.streamId.startsWith(prefix))) return null
    const problem = shapeProblem(event)
    if (problem) {
      if (options.warn) {
        this.#warn(`EventStoreDB at ${this.#url}: skipped an event that is not this service's`, {
          position: position.toString(),
          reason: problem,
        })
      }
      return null
    }
    return {
      stream_id: event.streamId,
      revision: Number(event.revision),
      position,
      type: event.type,
      data: event.data as Record<string, unknown>,
      metadata: event.metadata as EventMetadata,
    }
  }

  /**
   * Where the server should start so that the events after `after` (exclusive) come next:
   * the event sitting exactly at `after` (the server's subscriptions start after it, its reads
   * at it), the start of `$all`, or the last event when `after` lies beyond it.
   */
  async startFor(after: bigint | null): Promise<ReadPosition> {
    if (after === null || after <= 0n) return START
    let probe: Resolved[]
    try {
      probe = await this.#read<Resolved>(() =>
        this.#client.readAll({ fromPosition: { commit: after, prepare: after }, maxCount: 1 }),
      )
    } catch (error) {
      if (isConnectivityError(error)) throw error
      return START // Not where an event sits: the server refuses it. Read from the start and skip.
    }
    if (probe.length > 0) {
      const position = probe[0].event?.position
      return position && position.commit === after ? position : START
    }
    const last = await this.#read<Resolved>(() =>
      this.#client.readAll({ fromPosition: END, direction: BACKWARDS, maxCount: 1 }),
    )
    const position = last[0]?.event?.position
    return position && position.commit <= after ? position : START
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('event store is closed')
  }

  /** The last event of a stream, read from the leader; null when the stream does not exist. */
  async #head(stream: string): Promise<Head | null> {
    let resolved: Resolved[]
    try {
      resolved = await this.#read<Resolved>(() =>
        this.#client.readStream(stream, {
          direction: BACKWARDS,
          fromRevision: END,
          maxCount: 1,
          requiresLeader: true,
        }),
      )
    } catch (error) {
      if (error instanceof StreamNotFoundError) return null
      throw this.#mapError(error)
    }
    const event = resolved[0]?.event
    if (!event) return null
    const hash = (event.metadata as Partial<EventMetadata> | undefined)?.hash
    if (typeof hash !== 'string') {
      throw new Error(`Stream ${stream}: event ${event.revision} has no hash, so the chain cannot continue`)
    }
    return { revision: Number(event.revision), hash, position: commitOf(resolved[0]) ?? -1n }
  }

  /** The commit position of the event at this revision of the stream, read from the leader. */
  async #positionOf(stream: string, revision: number): Promise<bigint> {
    try {
      const [resolved] = await this.#read<Resolved>(() =>
        this.#client.readStream(stream, {
          fromRevision: BigInt(revision),
          maxCount: 1,
          requiresLeader: true,
        }),
      )
      return (resolved && commitOf(resolved)) ?? -1n
    } catch (error) {
      throw this.#mapError(error)
    }
  }

  /** Reads a bounded stream to its end, opening it anew after a connectivity failure. */
  #read<T>(open: () => Readable<T>): Promise<T[]> {
    return readWithRetries(open, () => this.#closed)
  }

  /** Our events of `$all` after `after` (exclusive), in commit order, read in pages. */
  async *#scanAll(after: bigint | null): AsyncGenerator<RecordedEvent> {
    let cursor = await this.startFor(after)
    let skipUpTo = after ?? -1n
    for (;;) {
      const from = cursor
      const page = await this.#read<Resolved>(() =>
        this.#client.readAll({ fromPosition: from, maxCount: PAGE_SIZE }),
      )
      let last: Position | undefined
      for (const resolved of page) {
        last = resolved.event?.position ?? last
        const commit = commitOf(resolved)
        if (commit === null || commit <= skipUpTo) continue
        const event = this.ours(resolved, { warn: true })
        if (event) yield event
      }
      if (page.length < PAGE_SIZE || !last) return
      cursor = last
      if (last.commit > skipUpTo) skipUpTo = last.commit
    }
  }

  #mapError(error: unknown): unknown {
    return mapError(error, this.#url)
  }
}

/** The events chained onto the head, with the expected revision that head stands for. */
function chainBatch(stream: string, head: Head | null, events: NewEvent[]): Batch {
  const first = head ? head.revision + 1 : 0
  const chained = chainEvents(stream, first, head ? head.hash : GENESIS_HASH, events)
  return {
    expectedRevision: head ? BigInt(head.revision) : NO_STREAM,
    lastRevision: first + events.length - 1,
    events: chained.map((e) =>
      jsonEvent({ id: e.metadata.event_id, type: e.type, data: e.data, metadata: e.metadata }),
    ),
  }
}

/** Reads a bounded stream to its end, opening it anew after a connectivity failure. */
async function readWithRetries<T>(open: () => Readable<T>, stopped: () => boolean): Promise<T[]> {
  for (let retry = 0; ; retry++) {
    try {
      return await collect(open())
    } catch (error) {
      if (!isConnectivityError(error) || retry >= MAX_CONNECT_RETRIES || stopped()) throw error
      await sleep(100 * 2 ** retry)
    }
  }
}

function mapError(error: unknown, url: string): unknown {
  if (error instanceof EventStoreUnavailableError || error instanceof WrongExpectedRevisionError) return error
  if (isConnectivityError(error)) {
    const reason = error instanceof Error ? error.message : String(error)
    return new EventStoreUnavailableError(`EventStoreDB at ${url} is unavailable: ${reason}`, {
      cause: error,
    })
  }
  if (error instanceof AccessDeniedError) {
    return new EventStoreUnavailableError(`EventStoreDB at ${url} denied access: check the credentials`, {
      cause: error,
    })
  }
  return error
}

/** A catch-up subscription to `$all` that goes live, resubscribing after a drop. */
class EsdbSubscription implements Subscription {
  readonly caughtUp: Promise<void>
  /** Settles when the subscription has stopped for good (closed or failed). */
  readonly finished: Promise<void>
  readonly #store: EsdbEventStore
  readonly #handler: EventHandler
  readonly #onError: ((error: unknown) => void) | undefined
  #after: bigint | null
  /** Where to resubscribe: the last event handled (the server starts after it). */
  #resumeFrom: ReadPosition | null = null
  #closed = false
  /** Set when the current server subscription delivers an event or reports being caught up. */
  #live = false
  #current: { unsubscribe(): Promise<void>; destroy(): unknown } | null = null
  #wake: (() => void) | null = null
  #resolveCaughtUp!: () => void
  #rejectCaughtUp!: (error: unknown) => void
  #caughtUpSettled = false

  constructor(
    store: EsdbEventStore,
    fromPosition: bigint | null,
    handler: EventHandler,
    onError: ((error: unknown) => void) | undefined,
  ) {
    this.#store = store
    this.#after = fromPosition
    this.#handler = handler
    this.#onError = onError
    this.caughtUp = new Promise<void>((resolve, reject) => {
      this.#resolveCaughtUp = resolve
      this.#rejectCaughtUp = reject
    })
    // A rejection is for whoever awaits caughtUp; it must not crash the process otherwise.
    this.caughtUp.catch(() => {})
    this.finished = this.#run()
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      this.#wake?.()
      const current = this.#current
      if (current) {
        await current.unsubscribe().catch(() => {})
        current.destroy()
      }
    }
    await this.finished
    this.#settleCaughtUp()
  }

  async #run(): Promise<void> {
    let failures = 0
    while (!this.#closed) {
      this.#live = false
      try {
        await this.#subscribeOnce()
      } catch (error) {
        if (this.#closed) break
        if (error instanceof HandlerError) {
          this.#fail(error.cause)
          break
        }
        // A subscription that delivered something or caught up was healthy: start counting anew.
        if (this.#live) failures = 0
        failures++
        if (!isConnectivityError(error) && failures >= MAX_SUBSCRIPTION_FAILURES) {
          this.#fail(error)
          break
        }
        if (failures === 1) {
          const reason = error instanceof Error ? error.message : String(error)
          console.warn(`EventStoreDB subscription at ${this.#store.url} dropped, resubscribing: ${reason}`)
        }
        await this.#pause(Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(failures, 10)))
      }
    }
    this.#settleCaughtUp()
  }

  /** One server subscription, until it is closed (returns) or ends or fails (throws). */
  async #subscribeOnce(): Promise<void> {
    const fromPosition = this.#resumeFrom ?? (await this.#store.startFor(this.#after))
    if (this.#closed) return
    const subscription = this.#store.client.subscribeToAll({
      fromPosition,
      filter: streamNameFilter({ prefixes: this.#store.streamPrefixes }),
    })
    this.#current = subscription
    // Errors reach the loop below through the iterator; this keeps a late one from being unhandled.
    subscription.on('error', () => {})
    let pulled = 0
    let processed = 0
    let target: number | null = null
    const check = (): void => {
      if (target !== null && processed >= target) this.#settleCaughtUp()
    }
    // Every event sent before "caught up" has been pushed already: those taken by the loop plus
    // those still buffered. caughtUp resolves once the handler has returned for all of them.
    subscription.on('caughtUp', () => {
      this.#live = true
      if (target === null) target = pulled + subscription.readableLength
      check()
    })
    try {
      for await (const resolved of subscription as AsyncIterable<Resolved>) {
        pulled++
        if (this.#closed) break
        this.#live = true
        const event = this.#store.ours(resolved, { warn: true })
        if (event && (this.#after === null || event.position > this.#after)) {
          try {
            await this.#handler(event)
          } catch (error) {
            throw new HandlerError(error)
          }
          this.#after = event.position
        }
        const position = resolved.event?.position
        if (position) this.#resumeFrom = position
        processed++
        check()
      }
    } finally {
      this.#current = null
      subscription.unsubscribe().catch(() => {})
    }
    if (!this.#closed) throw new Error('subscription ended by the server')
  }

  /** Waits before resubscribing; close() cuts it short. */
  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done(): void {
        clearTimeout(timer)
        resolve()
      }
      this.#wake = done
    }).finally(() => {
      this.#wake = null
    })
  }

  #fail(error: unknown): void {
    this.#closed = true
    if (!this.#caughtUpSettled) {
      this.#caughtUpSettled = true
      this.#rejectCaughtUp(error)
      return
    }
    if (this.#onError) this.#onError(error)
    else console.error('subscription stopped:', error)
  }

  #settleCaughtUp(): void {
    if (this.#caughtUpSettled) return
    this.#caughtUpSettled = true
    this.#resolveCaughtUp()
  }
}

class HandlerError extends Error {
  constructor(cause: unknown) {
    super('subscription handler failed', { cause })
    this.name = 'HandlerError'
  }
}

/** Reads a bounded client stream to the end (so the call completes and nothing is left open). */
async function collect<T>(stream: Readable<T>): Promise<T[]> {
  // Errors reach the loop through the iterator; this keeps a late one from being unhandled.
  stream.on('error', () => {})
  const items: T[] = []
  for await (const item of stream) items.push(item)
  return items
}

function commitOf(resolved: Resolved): bigint | null {
  for (const value of [resolved.event?.position?.commit, resolved.commitPosition]) {
    if (value !== undefined && value >= 0n && value < NO_POSITION_FROM) return value
  }
  return null
}

/** A stream's event as recorded, or null for links and binary events. */
function toRecorded(resolved: Resolved): RecordedEvent | null {
  const event = resolved.event
  if (!event?.isJson) return null
  const position = commitOf(resolved)
  return {
    stream_id: event.streamId,
    revision: Number(event.revision),
    position: position ?? -1n,
    type: event.type,
    data: (event.data ?? {}) as Record<string, unknown>,
    metadata: event.metadata as EventMetadata,
  }
}

/** Why an event is not in this service's shape, or null if it is. */
function shapeProblem(event: NonNullable<Resolved['event']>): string | null {
  if (!event.isJson) return 'not JSON'
  // The client hands malformed JSON over as the raw string.
  if (!isPlainObject(event.data)) return 'data is not a JSON object'
  if (!isEventMetadata(event.metadata)) return "metadata is not this service's"
  return null
}

function isEventMetadata(value: unknown): boolean {
  if (!isPlainObject(value)) return false
  const { event_id, schema_version, occurred_at, prev_hash, hash } = value
  return (
    typeof event_id === 'string' &&
    Number.isInteger(schema_version) &&
    typeof occurred_at === 'string' &&
    typeof prev_hash === 'string' &&
    HASH.test(prev_hash) &&
    typeof hash === 'string' &&
    HASH.test(hash)
  )
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value)
}

function isConnectivityError(error: unknown): boolean {
  if (
    error instanceof UnavailableError ||
    error instanceof DeadlineExceededError ||
    error instanceof CancelledError ||
    error instanceof NotLeaderError ||
    error instanceof TimeoutError
  ) {
    return true
  }
  // Cluster discovery failures are plain errors.
  return error instanceof Error && /failed to discover|no connection established/i.test(error.message)
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
