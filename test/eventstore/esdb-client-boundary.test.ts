/**
 * The EventStoreDB adapter against an in-memory fake of the client calls it makes: lost append
 * answers, foreign events on `$all` and the store id, none of which a healthy local server shows.
 * The fake behaves as the server does where it matters here: expected revisions, idempotent
 * repeats (the same event ids at the same revision), `$all` positions and subscription filters.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import {
  type AppendExpectedRevision,
  type AppendResult,
  BACKWARDS,
  END,
  type EventData,
  type Filter,
  NO_STREAM,
  type Position,
  type ReadPosition,
  START,
  StreamNotFoundError,
  UnavailableError,
  WrongExpectedVersionError,
} from '@eventstore/db-client'
import { describe, expect, it } from 'vitest'
import { ROSTER_STREAM } from '../../src/app/roster-lock.ts'
import {
  checkSettingFingerprints,
  SETTINGS_STREAM,
  storeIdentity,
} from '../../src/app/settings-fingerprint.ts'
import { accountStream, claimStream, sequenceStream, sessionStream } from '../../src/app/streams.ts'
import {
  connectEsdbEventStore,
  type EsdbClient,
  type EsdbEventStore,
  type EsdbOptions,
  SERVICE_STREAM_PREFIXES,
  STORE_IDENTITY_STREAM,
} from '../../src/eventstore/esdb-event-store.ts'
import { type RecordedEvent, WrongExpectedRevisionError } from '../../src/eventstore/event-store.ts'
import { verifyChain } from '../../src/eventstore/hash-chain.ts'
import { ReadModelsOfAnotherStoreError, ReadStore } from '../../src/readstore/read-store.ts'
import { describeEventStoreContract, newEvent } from './contract.ts'

type Stored = {
  streamId: string
  revision: bigint
  type: string
  data: unknown
  metadata: unknown
  id: string
  isJson: boolean
  position: Position
}

type Resolved = { event: Stored; commitPosition?: bigint }

/** One server: its `$all` log, its streams and the subscriptions to hear of new events. */
class FakeServer {
  readonly log: Stored[] = []
  readonly #streams = new Map<string, Stored[]>()
  readonly #listeners = new Set<(record: Stored) => void>()
  #nextPosition = 1_000n

  stream(streamId: string): Stored[] {
    return this.#streams.get(streamId) ?? []
  }

  append(streamId: string, events: EventData[], expected: AppendExpectedRevision): AppendResult {
    const stream = this.stream(streamId)
    const current = stream.length - 1
    const from =
      expected === NO_STREAM
        ? -1
        : expected === 'any' || expected === 'stream_exists'
          ? current
          : Number(expected)
    if (from !== current || (expected === 'stream_exists' && current < 0)) {
      const there = stream.slice(from + 1, from + 1 + events.length)
      if (from < current && there.length === events.length && there.every((r, i) => r.id === events[i].id)) {
        // An idempotent repeat. Its answer gives the first event's position, as a server may.
        return {
          success: true,
          nextExpectedRevision: BigInt(from + events.length),
          position: there[0].position,
        }
      }
      throw new WrongExpectedVersionError(undefined, {
        streamName: streamId,
        expected,
        current: current < 0 ? 'no_stream' : BigInt(current),
      })
    }
    const records = events.map((e) =>
      this.put(streamId, {
        id: e.id,
        type: e.type,
        data: e.data,
        metadata: e.metadata,
        isJson: e.contentType === 'application/json',
      }),
    )
    const last = records[records.length - 1]
    return { success: true, nextExpectedRevision: last.revision, position: last.position }
  }

  /** Writes one record as is, as another application (or the server itself) may. */
  put(
    streamId: string,
    record: { type: string; data: unknown; metadata?: unknown; isJson?: boolean; id?: string },
  ): Stored {
    const stream = this.stream(streamId)
    const commit = this.#nextPosition
    this.#nextPosition += 137n
    const stored: Stored = {
      streamId,
      revision: BigInt(stream.length),
      type: record.type,
      // What a reader gets back is what went over the wire, not the writer's objects.
      data: roundTrip(record.data),
      metadata: roundTrip(record.metadata),
      id: record.id ?? crypto.randomUUID(),
      isJson: record.isJson ?? true,
      position: { commit, prepare: commit },
    }
    this.#streams.set(streamId, [...stream, stored])
    this.log.push(stored)
    for (const listener of this.#listeners) listener(stored)
    return stored
  }

  listen(listener: (record: Stored) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }
}

/** The client calls the adapter makes, against a FakeServer, recording what was sent. */
class FakeClient {
  readonly appends: { stream: string; events: EventData[]; expectedRevision: AppendExpectedRevision }[] = []
  readonly subscriptions: { fromPosition?: ReadPosition; filter?: Filter }[] = []
  readonly #lostAnswers: { written: boolean; meanwhile?: () => Promise<unknown> }[] = []

  readonly server: FakeServer

  constructor(server: FakeServer) {
    this.server = server
  }

  /** The next append is written (or not), then `meanwhile` runs, then the call fails as on a dropped connection. */
  loseNextAnswer(options: { written: boolean; meanwhile?: () => Promise<unknown> }): void {
    this.#lostAnswers.push(options)
  }

  async appendToStream(
    stream: string,
    events: EventData | EventData[],
    options: { expectedRevision?: AppendExpectedRevision } = {},
  ): Promise<AppendResult> {
    const list = structuredClone(Array.isArray(events) ? events : [events])
    const expectedRevision = options.expectedRevision ?? 'any'
    this.appends.push({ stream, events: list, expectedRevision })
    const lost = this.#lostAnswers.shift()
    if (!lost) return this.server.append(stream, list, expectedRevision)
    if (lost.written) this.server.append(stream, list, expectedRevision)
    await lost.meanwhile?.()
    throw new UnavailableError(undefined, '14 UNAVAILABLE: Connection dropped')
  }

  readStream(
    streamId: string,
    options: { fromRevision?: bigint | 'start' | 'end'; direction?: string; maxCount?: number | bigint } = {},
  ) {
    return readable(() => {
      const stream = this.server.stream(streamId)
      if (stream.length === 0) throw new StreamNotFoundError(undefined, streamId)
      const from = options.fromRevision ?? START
      let records =
        options.direction === BACKWARDS
          ? stream.filter((r) => from === END || from === START || r.revision <= from).reverse()
          : stream.filter((r) => from === START || (from !== END && r.revision >= from))
      records = records.slice(0, Number(options.maxCount ?? stream.length))
      return records.map((event) => ({ event }))
    })
  }

  readAll(options: { fromPosition?: ReadPosition; direction?: string; maxCount?: number | bigint } = {}) {
    return readable(() => {
      const log = this.server.log
      const from = options.fromPosition ?? START
      let records: Stored[]
      if (options.direction === BACKWARDS) {
        records = log
          .filter((r) => from === END || (from !== START && r.position.commit < from.commit))
          .reverse()
      } else {
        if (typeof from === 'object' && from.commit <= (log.at(-1)?.position.commit ?? -1n)) {
          if (!log.some((r) => r.position.commit === from.commit)) throw new Error('invalid position')
        }
        records = log.filter((r) => from === START || (from !== END && r.position.commit >= from.commit))
      }
      records = records.slice(0, Number(options.maxCount ?? log.length))
      return records.map((event) => ({ event, commitPosition: event.position.commit }))
    })
  }

  subscribeToAll(options: { fromPosition?: ReadPosition; filter?: Filter } = {}) {
    this.subscriptions.push(options)
    const from = options.fromPosition ?? START
    const passes = (r: Stored) =>
      (from === START || (from !== END && r.position.commit > from.commit)) && matches(options.filter, r)
    const subscription = new Readable({ objectMode: true, read() {} })
    const push = (event: Stored) => subscription.push({ event, commitPosition: event.position.commit })
    for (const record of this.server.log) if (passes(record)) push(record)
    const stop = this.server.listen((record) => {
      if (passes(record)) push(record)
    })
    setImmediate(() => subscription.emit('caughtUp'))
    return Object.assign(subscription, {
      async unsubscribe() {
        stop()
        subscription.push(null)
      },
    })
  }

  async dispose(): Promise<void> {}
}

/** What the server's filters let through: prefixes or a regex, on the stream name or the type. */
function matches(filter: Filter | undefined, record: Stored): boolean {
  if (!filter) return true
  const subject = filter.filterOn === 'streamName' ? record.streamId : record.type
  if ('prefixes' in filter) return filter.prefixes.some((p) => subject.startsWith(p))
  return new RegExp(filter.regex).test(subject)
}

function readable(produce: () => Resolved[]) {
  async function* items() {
    yield* produce()
  }
  return Object.assign(Readable.from(items()), { async cancel() {} })
}

function roundTrip(value: unknown): unknown {
  if (value === undefined || value instanceof Uint8Array || typeof value === 'string') return value
  return JSON.parse(JSON.stringify(value))
}

async function open(server: FakeServer, options: EsdbOptions = {}) {
  const client = new FakeClient(server)
  const store = await connectEsdbEventStore(client as unknown as EsdbClient, 'esdb://fake:2113', options)
  return { client, store }
}

const ids = (events: RecordedEvent[]) => events.map((e) => e.metadata.event_id)

describe('EventStoreDB adapter, retried appends (fake client)', () => {
  for (const written of [true, false]) {
    it(`resends the same events with the same expected revision after a lost answer (${written ? 'written' : 'not written'})`, async () => {
      const { client, store } = await open(new FakeServer())
      await store.append('user-1', [newEvent('A')], 'no_stream')
      const events = [newEvent('B', { n: 1 }), newEvent('C', { n: 2 })]
      client.loseNextAnswer({ written })

      const result = await store.append('user-1', events, 0)

      const [first, resent] = client.appends.filter((a) => a.stream === 'user-1').slice(1)
      expect(resent).toBeDefined()
      expect(resent.expectedRevision).toBe(0n)
      expect(resent.events.map((e) => e.id)).toEqual(events.map((e) => e.metadata.event_id))
      expect(resent).toEqual(first) // data, metadata and hashes too
      const stream = await store.readStream('user-1')
      expect(stream.map((e) => e.type)).toEqual(['A', 'B', 'C'])
      expect(verifyChain(stream)).toBeNull()
      expect(result).toEqual({ next_expected_revision: 2, position: stream[2].position })
    })
  }

  it('writes a lost append once, however many events others append after it', async () => {
    const server = new FakeServer()
    const { client, store } = await open(server)
    const { store: other } = await open(server)
    const ours = newEvent('IdReserved')
    client.loseNextAnswer({
      written: true,
      meanwhile: async () => {
        for (let i = 0; i < 3; i++) await other.append('sequence-user', [newEvent('IdReserved')], 'any')
      },
    })

    const result = await store.append('sequence-user', [ours], 'any')

    const stream = await store.readStream('sequence-user')
    expect(ids(stream).filter((id) => id === ours.metadata.event_id)).toHaveLength(1)
    expect(stream[0].metadata.event_id).toBe(ours.metadata.event_id)
    expect(result).toEqual({ next_expected_revision: 0, position: stream[0].position })
    expect(verifyChain(stream)).toBeNull()
  })

  it('chains a lost, unwritten append anew when another writer took its place and the caller allowed any', async () => {
    const server = new FakeServer()
    const { client, store } = await open(server)
    const { store: other } = await open(server)
    const ours = newEvent('IdReserved')
    client.loseNextAnswer({
      written: false,
      meanwhile: () => other.append('sequence-user', [newEvent('IdReserved')], 'any'),
    })

    const result = await store.append('sequence-user', [ours], 'any')

    const stream = await store.readStream('sequence-user')
    expect(ids(stream)).toEqual([stream[0].metadata.event_id, ours.metadata.event_id])
    expect(result.next_expected_revision).toBe(1)
    expect(verifyChain(stream)).toBeNull()
    const sent = client.appends.filter((a) => a.stream === 'sequence-user')
    expect(sent.map((a) => a.expectedRevision)).toEqual([NO_STREAM, NO_STREAM, 0n])
  })

  it('fails with WrongExpectedRevisionError when the exact revision went to another writer meanwhile', async () => {
    const server = new FakeServer()
    const { client, store } = await open(server)
    const { store: other } = await open(server)
    await store.append('user-2', [newEvent('A')], 'no_stream')
    client.loseNextAnswer({ written: false, meanwhile: () => other.append('user-2', [newEvent('X')], 0) })

    await expect(store.append('user-2', [newEvent('B')], 0)).rejects.toBeInstanceOf(
      WrongExpectedRevisionError,
    )
    expect((await store.readStream('user-2')).map((e) => e.type)).toEqual(['A', 'X'])
  })
})

describe('EventStoreDB adapter, foreign events on $all (fake client)', () => {
  /** Our events A and B among system events, another application's and malformed ones in our streams. */
  async function sharedServer() {
    const server = new FakeServer()
    const warnings: { message: string; fields: Record<string, unknown> }[] = []
    const { client, store } = await open(server, {
      warn: (message, fields) => warnings.push({ message, fields }),
    })
    const secret = { card: '4111 1111 1111 1111' }
    await store.append('user-1', [newEvent('A')], 'no_stream')
    const validMetadata = server.stream('user-1')[0].metadata
    server.put('$stats-127.0.0.1:2113', { type: '$statsCollected', data: {} })
    server.put('$$user-1', { type: '$metadata', data: { $maxAge: 10 } })
    server.put('orders-17', { type: 'OrderPlaced', data: secret, metadata: { tenant: 'x' } })
    const malformed = [
      server.put('user-99', { type: 'Imported', data: `not json ${secret.card}` }),
      server.put('user-98', { type: 'Legacy', data: secret, metadata: { event_id: 'x', schema_version: 1 } }),
      server.put('session-5', { type: 'Blob', data: new TextEncoder().encode(secret.card), isJson: false }),
      server.put('email-abc', { type: 'Listed', data: [secret], metadata: validMetadata }),
      server.put('username-abc', { type: 'Bytes', data: secret, metadata: new Uint8Array([1, 2]) }),
    ]
    await store.append('session-1', [newEvent('B')], 'no_stream')
    server.put('orders-18', { type: 'OrderPlaced', data: secret })
    malformed.push(server.put('user-97', { type: 'Late', data: secret, metadata: { hash: 'nope' } }))
    return { server, client, store, warnings, malformed, secret }
  }

  it("the default stream prefixes cover every stream the service writes, and not the store id's", () => {
    const ours = (stream: string) => SERVICE_STREAM_PREFIXES.some((prefix) => stream.startsWith(prefix))
    const written = [
      accountStream(1),
      sessionStream(1),
      claimStream('username', 'k'),
      claimStream('email', 'k'),
      sequenceStream('user'),
      sequenceStream('session'),
      SETTINGS_STREAM,
      ROSTER_STREAM,
    ]
    expect(written.filter((stream) => !ours(stream))).toEqual([])
    expect(ours(STORE_IDENTITY_STREAM)).toBe(false)
  })

  it('readAll and listStreams give only our events; malformed ones in our streams are reported by position only', async () => {
    const { store, warnings, malformed, secret } = await sharedServer()

    expect((await store.readAll()).map((e) => e.type)).toEqual(['A', 'B'])
    expect(await store.listStreams()).toEqual(['session-1', 'user-1'])

    const reported = warnings.filter((w) => w.message.includes('not this service'))
    expect(reported.map((w) => w.fields.position)).toEqual(
      [...malformed, ...malformed].map((r) => r.position.commit.toString()),
    )
    expect(JSON.stringify(warnings)).not.toContain(secret.card)
    expect(JSON.stringify(warnings)).not.toMatch(/user-9|Imported|Legacy/)
  })

  it('headPosition is the position of our last event, not of the foreign ones after it', async () => {
    const { store } = await sharedServer()
    const [, b] = await store.readAll()
    expect(await store.headPosition()).toBe(b.position)
  })

  it('the $all subscription asks the server for our streams only and skips malformed events without stopping', async () => {
    const { server, client, store, warnings } = await sharedServer()
    const handled: string[] = []
    const subscription = store.subscribeAll(null, (event) => {
      handled.push(event.type)
    })
    await subscription.caughtUp
    server.put('user-96', { type: 'LiveJunk', data: 'x' })
    server.put('invoices-1', { type: 'InvoiceSent', data: {} })
    await store.append('user-1', [newEvent('C')], 0)
    await expect.poll(() => handled).toEqual(['A', 'B', 'C'])
    await subscription.close()

    expect(client.subscriptions[0].filter).toMatchObject({
      filterOn: 'streamName',
      prefixes: [...SERVICE_STREAM_PREFIXES],
    })
    const positions = warnings.map((w) => w.fields.position)
    expect(positions).toContain(server.stream('user-96')[0].position.commit.toString())
  })
})

describe('EventStoreDB adapter, store id (fake client)', () => {
  it('is the same for two adapters on one store and differs for another store', async () => {
    const server = new FakeServer()
    const { store: a } = await open(server)
    const { store: b } = await open(server)
    const { store: elsewhere } = await open(new FakeServer())

    expect(a.storeId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    expect(b.storeId).toBe(a.storeId)
    expect(elsewhere.storeId).not.toBe(a.storeId)
    expect(server.stream(STORE_IDENTITY_STREAM)).toHaveLength(1)
    expect(await a.listStreams()).not.toContain(STORE_IDENTITY_STREAM)
  })

  it('is one id for instances that open a new store at the same moment', async () => {
    const server = new FakeServer()
    const stores: EsdbEventStore[] = (await Promise.all([open(server), open(server), open(server)])).map(
      (o) => o.store,
    )
    expect(new Set(stores.map((s) => s.storeId)).size).toBe(1)
    expect(server.stream(STORE_IDENTITY_STREAM)).toHaveLength(1)
  })

  it('read models built from one store are refused on another (the check at start, on this adapter)', async () => {
    const [{ store: a }, { store: b }] = await Promise.all([open(new FakeServer()), open(new FakeServer())])
    for (const store of [a, b]) {
      await checkSettingFingerprints(
        store,
        { UNIQUENESS_SECRET: crypto.getRandomValues(new Uint8Array(32)) },
        () => new Date(),
      )
    }
    const dir = mkdtempSync(join(tmpdir(), 'esdb-belong-'))
    const readStore = new ReadStore(join(dir, 'read-models.db'), [])
    try {
      readStore.belongTo(await storeIdentity(a))
      const sameStore = await storeIdentity(a)
      expect(() => readStore.belongTo(sameStore)).not.toThrow()
      const otherStore = await storeIdentity(b)
      expect(() => readStore.belongTo(otherStore)).toThrow(ReadModelsOfAnotherStoreError)
    } finally {
      readStore.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('EventStoreDB adapter over the fake client', () => {
  describeEventStoreContract('esdb (fake client)', async () => {
    const server = new FakeServer()
    return {
      open: async () => (await open(server, { streamPrefixes: ['test_', 'marker_'] })).store,
      cleanup: async () => {},
    }
  })
})
