/**
 * The cluster proof's reference read models (issue 12): a fresh rebuild from the shared PostgreSQL
 * event store, made in this process with the service's own projections, codec and shared data keys
 * (as `npm run audit -- rebuild` does, but into a new file and without destroying any data key: it
 * only reads). Every instance's read models, what it serves and what it stores, are compared with
 * it (harness/cluster.ts).
 *
 *   const rebuild = await openRebuild(env, dir)  // env: the instances' shared settings
 *   await rebuild.settle()                        // replays every event, until the log stops growing
 *   rebuild.queries.listUsers(...)                // the same queries the service answers with
 *   rebuild.close()
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { projections } from '../projections/index.ts'
import { createEventCodec } from '../src/app/event-codec.ts'
import { openDataKeys, openEventStore } from '../src/app/runtime.ts'
import { storeIdentity } from '../src/app/settings-fingerprint.ts'
import { loadConfig } from '../src/config.ts'
import { createProjectionRunner } from '../src/readstore/projection-runner.ts'
import { createQueries, type Queries } from '../src/readstore/queries.ts'
import { ReadStore } from '../src/readstore/read-store.ts'

export type Rebuild = {
  /** The rebuilt read-model file (compare it with `compareReadModels` of harness/oracle.ts). */
  path: string
  queries: Queries
  /** The position of the last event applied. */
  readonly position: bigint
  /** Events applied since the rebuild began. */
  readonly events: number
  /** The root (hex) of the rebuilt Merkle tree over its first `size` events, null beyond it. */
  rootAt(size: number): string | null
  /**
   * Applies every event in the log, then again until no new event arrived for `quietMs`
   * (an instance may still record something after its answer, such as a failed login).
   */
  settle(quietMs?: number, timeoutMs?: number): Promise<void>
  close(): Promise<void>
}

export async function openRebuild(env: Record<string, string>, dir: string): Promise<Rebuild> {
  mkdirSync(dir, { recursive: true })
  const config = loadConfig({ ...env, DATA_DIR: dir })
  const store = await openEventStore(config)
  const dataKeys = await openDataKeys(config, store)
  const path = join(dir, 'read-models.db')
  const readStore = new ReadStore(path, projections)
  // As the service records it, so the two files hold the same tables.
  readStore.belongTo(await storeIdentity(store))
  const codec = createEventCodec(dataKeys)
  const runner = createProjectionRunner({ store, readStore, codec })
  let events = 0
  runner.onApplied(() => {
    events++
  })
  const catchUp = async (): Promise<void> => {
    await runner.start()
    await runner.stop()
  }
  return {
    path,
    queries: createQueries(readStore.db),
    get position() {
      return runner.position
    },
    get events() {
      return events
    },
    rootAt(size: number) {
      if (!Number.isSafeInteger(size) || size < 1 || size > readStore.tree.size) return null
      return readStore.tree.subtree()(0, size).toString('hex')
    },
    async settle(quietMs = 500, timeoutMs = 20_000) {
      const until = performance.now() + timeoutMs
      await catchUp()
      for (;;) {
        await sleep(quietMs)
        const newer = await store.readAll({ fromPosition: runner.position, limit: 1 })
        if (newer.length === 0) return
        if (performance.now() > until) throw new Error(`the event log kept growing for ${timeoutMs} ms`)
        await catchUp()
      }
    },
    async close() {
      await runner.stop()
      readStore.close()
      await dataKeys.close()
      await store.close()
    },
  }
}
