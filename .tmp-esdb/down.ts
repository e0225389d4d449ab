import { randomUUID } from 'node:crypto'
import { execSync } from 'node:child_process'
import { openEsdbEventStore } from '../src/eventstore/esdb-event-store.ts'
const store = await openEsdbEventStore(process.env.EVENT_STORE_URL!)
const sub = store.subscribeAll(null, () => {})
await sub.caughtUp
execSync(`kill ${process.env.FAKE_PID}`)
await new Promise((r) => setTimeout(r, 300))
const t = Date.now()
const e = await store.append('s-' + randomUUID(), [{ type: 'A', data: {}, metadata: { event_id: randomUUID(), schema_version: 1, occurred_at: '', actor_id: null, correlation_id: null, causation_id: null } }], 'any').catch((e: Error) => e)
console.log('append while down:', (e as Error).name, (e as Error).message, Date.now() - t, 'ms')
const r = await store.readStream('x').catch((e: Error) => e)
console.log('read while down:', (r as Error).name)
const t2 = Date.now(); await store.close(); console.log('closed in', Date.now() - t2, 'ms')
