/**
 * Leaves of small (live) batches wait in memory and go into the Merkle tree together; every
 * read of the tree writes them first, a timer writes them when nothing else does, a rolled-back
 * batch keeps the ones that wait, and a crash loses only waiting leaves, which the next start
 * adds back from the store.
 */
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { projections } from '../../projections/index.ts'
import type { Projection } from '../../projections/projection.ts'
import { createEventCodec } from '../../src/app/event-codec.ts'
import type { RecordedEvent } from '../../src/eventstore/event-store.ts'
import { openSqliteEventStore } from '../../src/eventstore/sqlite-event-store.ts'
import { createProjectionRunner } from '../../src/readstore/projection-runner.ts'
import { ReadStore } from '../../src/readstore/read-store.ts'
import { openDataKeyStore } from '../../src/security/data-keys.ts'
import { newEvent } from '../eventstore/contract.ts'
import { referenceRoot, sha256 } from '../support/merkle-reference.ts'
import { tempDir } from '../support/temp.ts'

/** Events no projection handles: only the tree and the checkpoint see them. */
const recorded = (n: number, type = 'IdReserved'): RecordedEvent =>
  ({
    stream_id: 'sequence-test',
    revision: n - 1,
    position: BigInt(n),
    type,
    data: {},
    metadata: {
      hash: sha256(Buffer.from(`event ${n}`)).toString('hex'),
      occurred_at: new Date().toISOString(),
    },
  }) as unknown as RecordedEvent

const open: ReadStore[] = []
afterEach(() => {
  for (const store of open.splice(0)) store.close()
})

function readStore(options: { treeMaxLagMs?: number; with?: Projection[] } = {}, path?: string): ReadStore {
  const store = new ReadStore(
    path ?? join(tempDir('tree-lag'), 'read-models.db'),
    [...projections, ...(options.with ?? [])],
    options,
  )
  open.push(store)
  return store
}

/** What is on disk, without going through the tree (whose reads write the waiting leaves). */
const storedLeaves = (store: ReadStore): number =>
  (store.db.prepare('SELECT count(*) AS n FROM merkle_leaves').get() as { n: number }).n

describe('Merkle leaves of live batches', () => {
  it('wait in memory, and every read of the tree writes them first', () => {
    const store = readStore({ treeMaxLagMs: 60_000 })
    const events = Array.from({ length: 10 }, (_, i) => recorded(i + 1))
    for (const event of events) store.applyBatch([event])
    expect(store.checkpoint()).toBe(10n)
    expect(storedLeaves(store)).toBe(0)
    expect(store.tree.size).toBe(10)
    expect(storedLeaves(store)).toBe(10)
    expect(store.tree.root().toString('hex')).toBe(referenceRoot(events.map((e) => e.metadata.hash)))
  })

  it('go in with the batch that makes 64 of them due, and a large batch takes its own at once', () => {
    const store = readStore({ treeMaxLagMs: 60_000 })
    for (let n = 1; n <= 63; n++) store.applyBatch([recorded(n)])
    expect(storedLeaves(store)).toBe(0)
    store.applyBatch([recorded(64)])
    expect(storedLeaves(store)).toBe(64)
    store.applyBatch(Array.from({ length: 100 }, (_, i) => recorded(65 + i)))
    expect(storedLeaves(store)).toBe(164)
  })

  it('are written by a timer when no batch or read comes', async () => {
    const store = readStore({ treeMaxLagMs: 20 })
    store.applyBatch([recorded(1)])
    expect(storedLeaves(store)).toBe(0)
    const deadline = Date.now() + 5000
    while (storedLeaves(store) === 0 && Date.now() < deadline) await sleep(10)
    expect(storedLeaves(store)).toBe(1)
  })

  it('stay waiting when a batch that would have written them rolls back', () => {
    const boom: Projection = {
      name: 'boom',
      schema: '',
      tables: [],
      handles: new Set(['Boom']),
      apply() {
        throw new Error('boom')
      },
    }
    const store = readStore({ treeMaxLagMs: 60_000, with: [boom] })
    const first = Array.from({ length: 5 }, (_, i) => recorded(i + 1))
    for (const event of first) store.applyBatch([event])
    const big = Array.from({ length: 64 }, (_, i) => recorded(6 + i))
    expect(() => store.applyBatch([...big, recorded(70, 'Boom')])).toThrow('boom')
    expect(store.checkpoint()).toBe(5n)
    expect(store.tree.size).toBe(5)
    expect(store.tree.root().toString('hex')).toBe(referenceRoot(first.map((e) => e.metadata.hash)))
    store.applyBatch(big)
    expect(store.tree.size).toBe(69)
    expect(store.tree.root().toString('hex')).toBe(
      referenceRoot([...first, ...big].map((e) => e.metadata.hash)),
    )
  })

  it('lost in a crash are added back from the store by the next start', async () => {
    const dataDir = tempDir('tree-lag-crash')
    const events = openSqliteEventStore(join(dataDir, 'events.db'))
    const dataKeys = openDataKeyStore({ dataDir })
    try {
      const codec = createEventCodec(dataKeys)
      for (let n = 0; n < 12; n++) {
        await events.append('sequence-crash', [newEvent('IdReserved')], n === 0 ? 'no_stream' : n - 1)
      }
      const all = await events.readAll({ fromPosition: 0n, limit: 100 })
      const path = join(dataDir, 'read-models.db')
      const before = new ReadStore(path, projections, { treeMaxLagMs: 60_000 })
      for (const event of all) before.applyBatch([codec.decode(event)])
      expect(storedLeaves(before)).toBe(0)
      before.db.close() // as a kill would: the waiting leaves never reach the file

      const after = readStore({}, path)
      expect(after.checkpoint()).toBe(all[all.length - 1].position)
      expect(storedLeaves(after)).toBe(0)
      const runner = createProjectionRunner({ store: events, readStore: after, codec })
      await runner.start()
      await runner.stop()
      expect(after.tree.size).toBe(all.length)
      expect(after.tree.root().toString('hex')).toBe(referenceRoot(all.map((e) => e.metadata.hash)))
    } finally {
      dataKeys.close()
      await events.close()
    }
  })
})
