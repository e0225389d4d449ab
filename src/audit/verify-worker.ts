/**
 * A verify's walk in a worker thread (see verify-off-loop.ts): its own connection to the event
 * store and a read-only one to the read models' Merkle tree, so the service's event loop only
 * waits for one message.
 */
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { parentPort, workerData } from 'node:worker_threads'
import { type EventStoreSettings, openEventStore } from '../app/runtime.ts'
import { MerkleTree } from '../readstore/merkle-tree.ts'
import { type WalkRange, walkLog } from './log-walk.ts'

const { settings, range } = workerData as { settings: EventStoreSettings; range: WalkRange }
const store = await openEventStore(settings)
const db = new DatabaseSync(join(settings.dataDir, 'read-models.db'), { readOnly: true })
try {
  parentPort?.postMessage(await walkLog({ store, tree: new MerkleTree(db) }, range))
} finally {
  db.close()
  await store.close()
}
