/**
 * /metrics reports the projection lag as a position delta from two cheap reads (the store's head
 * position and the runner's), never by reading events, however far behind the read models are.
 */
import { randomUUID } from 'node:crypto'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createApp } from '../../src/api/app.ts'
import type { EventStore, NewEvent } from '../../src/eventstore/event-store.ts'
import { openSqliteEventStore } from '../../src/eventstore/sqlite-event-store.ts'
import { openTestRuntime, tempDataDir } from '../support/runtime.ts'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

/** The runtime's store, counting the calls that read events. */
function countingReads(store: EventStore): { store: EventStore; reads: () => number } {
  let reads = 0
  const counting = new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        if (property === 'readAll' || property === 'readStream' || property === 'subscribeAll') reads++
        return value.apply(target, args)
      }
    },
  })
  return { store: counting, reads: () => reads }
}

const event = (n: number): NewEvent => ({
  type: 'MetricsProbe',
  data: { n },
  metadata: {
    event_id: randomUUID(),
    schema_version: 1,
    occurred_at: new Date().toISOString(),
    actor_id: null,
    correlation_id: null,
    causation_id: null,
  },
})

async function setup() {
  const t = await openTestRuntime(undefined, { RATE_LIMIT_PER_MINUTE: '0' })
  cleanups.push(t.cleanup)
  const counted = countingReads(t.runtime.store)
  const app = await createApp({ ...t.runtime, store: counted.store })
  const gauge = async (name: string): Promise<bigint> => {
    const response = await app.handle(new Request('http://127.0.0.1/metrics'))
    expect(response.status).toBe(200)
    const text = await response.text()
    const match = text.match(new RegExp(`^${name} (\\d+)$`, 'm'))
    expect(match, `${name} in\n${text}`).not.toBeNull()
    return BigInt((match as RegExpMatchArray)[1])
  }
  return { ...t, app, gauge, reads: counted.reads }
}

describe('GET /metrics: auth_projection_lag', () => {
  it('is 0 once the read models have caught up, and reads no event', async () => {
    const { app, runtime, gauge, reads } = await setup()
    expect(await gauge('auth_projection_lag')).toBe(0n)
    const registered = await app.handle(
      new Request('http://127.0.0.1/auth/register', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          username: 'lagger',
          email: 'lagger@example.com',
          password: 'lag-lag-lag-42x',
        }),
      }),
    )
    expect(registered.status).toBe(200)
    await runtime.runner.waitFor(await runtime.store.headPosition())
    expect(await gauge('auth_projection_position')).toBe(await runtime.store.headPosition())
    expect(await gauge('auth_projection_position')).toBeGreaterThan(0n)
    expect(await gauge('auth_projection_lag')).toBe(0n)
    expect(await gauge('auth_projection_lag_events')).toBe(0n)
    const before = reads()
    for (let i = 0; i < 5; i++) await gauge('auth_projection_lag')
    expect(reads() - before).toBe(0)
  })

  it('is the position delta while the projection is stopped, without reading the events behind', async () => {
    const { runtime, gauge, reads } = await setup()
    await runtime.runner.stop()
    const position = await gauge('auth_projection_position')
    // Far more than the 100,000 events a scrape used to read to count them, cheaply.
    const stream = `metrics-probe-${randomUUID()}`
    let expected = -1
    for (let batch = 0; batch < 3; batch++) {
      const events = Array.from({ length: 500 }, (_, i) => event(batch * 500 + i))
      expected = (await runtime.store.append(stream, events, expected < 0 ? 'no_stream' : expected))
        .next_expected_revision
    }
    const before = reads()
    expect(await gauge('auth_projection_lag')).toBe(1500n)
    expect(await gauge('auth_projection_lag_events')).toBe(1500n)
    expect(await gauge('auth_projection_position')).toBe(position)
    expect(reads() - before).toBe(0)
  })
})

describe('EventStore.headPosition (SQLite)', () => {
  it('is 0 for an empty store, then the position of the last event', async () => {
    const dir = tempDataDir()
    const store = openSqliteEventStore(join(dir, 'events.db'))
    cleanups.push(async () => {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    })
    expect(await store.headPosition()).toBe(0n)
    const first = await store.append(`head-${randomUUID()}`, [event(1), event(2)], 'no_stream')
    expect(await store.headPosition()).toBe(first.position)
    const second = await store.append(`head-${randomUUID()}`, [event(3)], 'no_stream')
    expect(await store.headPosition()).toBe(second.position)
    const all = await store.readAll()
    expect(all.at(-1)?.position).toBe(second.position)
  })
})
