/**
 * Session states kept in memory between commands: only newer events are read, and a state that
 * another process (another command handler on the same store) moved on from is caught up.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { SessionStarted } from '../../domain/session.events.ts'
import { sessionDecider } from '../../domain/session.ts'
import { createCommandHandler } from '../../src/app/command-handler.ts'
import type { Runtime } from '../../src/app/runtime.ts'
import type { EventStore } from '../../src/eventstore/event-store.ts'
import { openTestRuntime } from '../support/runtime.ts'

let runtime: Runtime
let cleanup: () => Promise<void>
beforeEach(async () => {
  ;({ runtime, cleanup } = await openTestRuntime())
})
afterEach(async () => cleanup())

const kept = { ...sessionDecider, keepStateInMemory: true }
const context = { actorId: 7, owner: 7 }
const STREAM = 'session-900'
const started: SessionStarted['data'] = {
  session_id: 900,
  user_id: 7,
  account_revision: 0,
  amr: ['pwd'],
  refresh_token_hash: 'h0',
  expires_at: '2099-01-01T00:00:00.000Z',
  ip_address: '203.0.113.9',
  user_agent: 'test',
}
const refresh = (presented: string, next: string) =>
  ({
    type: 'Refresh',
    data: {
      presented_hash: presented,
      refresh_token_hash: next,
      expires_at: '2099-01-01T00:00:00.000Z',
      now: 0,
      grace_ms: 0,
    },
  }) as const

/** The store, recording from which revision each stream read started. */
function recordingReads(store: EventStore): { store: EventStore; reads: number[] } {
  const reads: number[] = []
  // The command handler reads streams and appends; nothing else.
  const recording = {
    readStream(stream: string, options?: { fromRevision?: number }) {
      reads.push(options?.fromRevision ?? 0)
      return store.readStream(stream, options)
    },
    append: store.append.bind(store),
  } as unknown as EventStore
  return { store: recording, reads }
}

describe('command handler: states kept in memory', () => {
  it('reads only the events after the kept revision', async () => {
    const { store, reads } = recordingReads(runtime.store)
    const commands = createCommandHandler(store, runtime.codec)
    await commands.handle(STREAM, kept, { type: 'Start', data: started }, context)
    for (let i = 0; i < 5; i++) await commands.handle(STREAM, kept, refresh(`h${i}`, `h${i + 1}`), context)
    // The first load found nothing; every later one started after the revision it had written.
    expect(reads).toEqual([0, 1, 2, 3, 4, 5])
    const { state, revision } = await commands.load(STREAM, kept)
    expect(revision).toBe(5)
    expect(state.status === 'active' && state.refreshTokenHash).toBe('h5')

    // Without the flag the whole stream is read, and the states agree.
    reads.length = 0
    const full = await commands.load(STREAM, sessionDecider)
    expect(reads).toEqual([0])
    expect(full).toEqual({ state, revision })
  })

  it('catches up with events another handler appended, and still detects reuse', async () => {
    const here = createCommandHandler(runtime.store, runtime.codec)
    const elsewhere = createCommandHandler(runtime.store, runtime.codec)
    await here.handle(STREAM, kept, { type: 'Start', data: started }, context)
    await here.handle(STREAM, kept, refresh('h0', 'h1'), context)
    // Another process rotates h1 → h2; this handler's kept state still says h1.
    await elsewhere.handle(STREAM, kept, refresh('h1', 'h2'), context)

    const rotated = await here.handle(STREAM, kept, refresh('h2', 'h3'), context)
    expect(rotated.events.map((e) => e.type)).toEqual(['SessionRefreshed'])
    expect(rotated.revision).toBe(3)

    const reused = await here.handle(STREAM, kept, refresh('h1', 'h9'), context)
    expect(reused.events).toEqual([
      { type: 'SessionRevoked', data: { user_id: 7, reason: 'refresh_token_reuse' } },
    ])
    const { state } = await elsewhere.load(STREAM, kept)
    expect(state.status).toBe('revoked')
  })
})
