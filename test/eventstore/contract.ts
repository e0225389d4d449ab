/**
 * The event store contract: every adapter runs these same tests
 * (`describeEventStoreContract(name, factory)`), so both behave as EventStoreDB does.
 */
import { randomUUID } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  type EventStore,
  type NewEvent,
  WrongExpectedRevisionError,
} from '../../src/eventstore/event-store.ts'
import { verifyChain } from '../../src/eventstore/hash-chain.ts'

export type StoreFactory = () => Promise<{ open(): Promise<EventStore>; cleanup(): Promise<void> }>

export function newEvent(type: string, data: Record<string, unknown> = {}): NewEvent {
  return {
    type,
    data,
    metadata: {
      event_id: randomUUID(),
      schema_version: 1,
      occurred_at: new Date().toISOString(),
      actor_id: null,
      correlation_id: null,
      causation_id: null,
    },
  }
}

export function describeEventStoreContract(name: string, factory: StoreFactory): void {
  describe(`event store contract: ${name}`, () => {
    let fixture: Awaited<ReturnType<StoreFactory>>
    let store: EventStore
    // Unique stream names, so the suite also runs against a shared EventStoreDB.
    const run = randomUUID().slice(0, 8)
    let n = 0
    const streamName = (kind = 'test'): string => `${kind}_${run}-${++n}`

    beforeEach(async () => {
      fixture = await factory()
      store = await fixture.open()
    })
    afterEach(async () => {
      await store.close()
      await fixture.cleanup()
    })

    it('reads a missing stream as empty', async () => {
      expect(await store.readStream(streamName())).toEqual([])
    })

    it('appends with no_stream, then only with the exact revision', async () => {
      const s = streamName()
      const first = await store.append(s, [newEvent('A', { n: 1 }), newEvent('B', { n: 2 })], 'no_stream')
      expect(first.next_expected_revision).toBe(1)
      await expect(store.append(s, [newEvent('C')], 'no_stream')).rejects.toBeInstanceOf(
        WrongExpectedRevisionError,
      )
      await expect(store.append(s, [newEvent('C')], 0)).rejects.toBeInstanceOf(WrongExpectedRevisionError)
      const second = await store.append(s, [newEvent('C', { n: 3 })], 1)
      expect(second.next_expected_revision).toBe(2)
      expect(second.position > first.position).toBe(true)
      const events = await store.readStream(s)
      expect(events.map((e) => [e.type, e.revision, e.data.n])).toEqual([
        ['A', 0, 1],
        ['B', 1, 2],
        ['C', 2, 3],
      ])
    })

    it('honours any and stream_exists', async () => {
      const s = streamName()
      await expect(store.append(s, [newEvent('A')], 'stream_exists')).rejects.toBeInstanceOf(
        WrongExpectedRevisionError,
      )
      await store.append(s, [newEvent('A')], 'any')
      await store.append(s, [newEvent('B')], 'any')
      await store.append(s, [newEvent('C')], 'stream_exists')
      expect((await store.readStream(s)).map((e) => e.type)).toEqual(['A', 'B', 'C'])
    })

    it('the conflict error names the stream and both revisions', async () => {
      const s = streamName()
      await store.append(s, [newEvent('A')], 'no_stream')
      const error = await store.append(s, [newEvent('B')], 5).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(WrongExpectedRevisionError)
      expect(error).toMatchObject({ stream: s, expected: 5, actual: 0 })
    })

    it('lets exactly one of many concurrent appenders win each revision', async () => {
      const s = streamName()
      await store.append(s, [newEvent('Start')], 'no_stream')
      const attempts = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => store.append(s, [newEvent('Try', { i })], 0)),
      )
      expect(attempts.filter((a) => a.status === 'fulfilled')).toHaveLength(1)
      for (const a of attempts.filter((a) => a.status === 'rejected')) {
        expect(a.reason).toBeInstanceOf(WrongExpectedRevisionError)
      }
      expect(await store.readStream(s)).toHaveLength(2)
    })

    it('keeps a verifiable hash chain per stream', async () => {
      const s = streamName()
      await store.append(s, [newEvent('A', { x: 'é' })], 'no_stream')
      await store.append(s, [newEvent('B', { nested: { b: 2, a: 1 } })], 0)
      const events = await store.readStream(s)
      expect(events[1].metadata.prev_hash).toBe(events[0].metadata.hash)
      expect(verifyChain(events)).toBeNull()
    })

    it('readAll returns events after a position in commit order', async () => {
      const a = streamName()
      const b = streamName()
      const start = await store.append(a, [newEvent('A1')], 'no_stream')
      await store.append(b, [newEvent('B1')], 'no_stream')
      await store.append(a, [newEvent('A2')], 0)
      const after = (await store.readAll({ fromPosition: start.position, limit: 1000 })).filter((e) =>
        [a, b].includes(e.stream_id),
      )
      expect(after.map((e) => e.type)).toEqual(['B1', 'A2'])
      const positions = after.map((e) => e.position)
      expect([...positions].sort((x, y) => (x < y ? -1 : 1))).toEqual(positions)
    })

    it('a subscription catches up, then receives live events with no gap and no duplicate', async () => {
      const s = streamName()
      // Positions handed to the store must be ones it gave out (EventStoreDB refuses others).
      const marker = await store.append(streamName('marker'), [newEvent('Marker')], 'no_stream')
      await store.append(s, [newEvent('E', { i: 0 })], 'no_stream')
      for (let i = 1; i < 5; i++) await store.append(s, [newEvent('E', { i })], i - 1)
      const seen: number[] = []
      const sub = store.subscribeAll(marker.position, (e) => {
        if (e.stream_id === s) seen.push(e.data.i as number)
      })
      await sub.caughtUp
      expect(seen).toEqual([0, 1, 2, 3, 4])
      // Live appends, some concurrent with delivery.
      await Promise.all(
        Array.from({ length: 5 }, (_, k) => store.append(s, [newEvent('E', { i: 5 + k })], 'any')),
      )
      for (let i = 10; i < 20; i++) await store.append(s, [newEvent('E', { i })], 'any')
      await waitFor(() => seen.length >= 20)
      await sub.close()
      expect([...seen].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i))
      expect(new Set(seen).size).toBe(seen.length)
      await store.append(s, [newEvent('E', { i: 99 })], 'any')
      await new Promise((r) => setTimeout(r, 50))
      expect(seen).not.toContain(99)
    })

    it('headPosition is where the last event sits, without reading events', async () => {
      const before = await store.headPosition()
      expect(before >= 0n).toBe(true)
      const written = await store.append(streamName(), [newEvent('A'), newEvent('B')], 'no_stream')
      const head = await store.headPosition()
      // A shared EventStoreDB may have more events after ours by now, never fewer.
      expect(head >= written.position).toBe(true)
      expect(head > before).toBe(true)
      const tail = await store.readAll({ fromPosition: written.position })
      if (tail.length === 0) expect(head).toBe(written.position)
    })

    it('keeps everything after closing and reopening', async () => {
      const s = streamName()
      await store.append(s, [newEvent('A', { v: 1 })], 'no_stream')
      const written = await store.append(s, [newEvent('B', { v: 2 })], 0)
      await store.close()
      store = await fixture.open()
      const events = await store.readStream(s)
      expect(events.map((e) => e.data.v)).toEqual([1, 2])
      expect(events[1].position).toBe(written.position)
      expect(verifyChain(events)).toBeNull()
      await store.append(s, [newEvent('C')], 1)
      expect(await store.listStreams()).toContain(s)
    })
  })
}

export async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 5))
  }
}
