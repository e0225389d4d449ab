import { randomUUID } from 'node:crypto'
import { openEsdbEventStore } from '../src/eventstore/esdb-event-store.ts'
import type { NewEvent, RecordedEvent } from '../src/eventstore/event-store.ts'
import { verifyChain } from '../src/eventstore/hash-chain.ts'

const url = process.env.EVENT_STORE_URL!
const ev = (type: string, data: Record<string, unknown> = {}, id = randomUUID()): NewEvent => ({
  type, data, metadata: { event_id: id, schema_version: 1, occurred_at: new Date().toISOString(), actor_id: null, correlation_id: null, causation_id: null },
})
const assert = (c: unknown, m: string) => { if (!c) { console.error('FAIL', m); process.exitCode = 1 } else console.log('ok', m) }
const store = await openEsdbEventStore(url)
const run = randomUUID().slice(0, 6)

// paging: 1200 events in one stream, in batches
const s = `page_${run}`
const first = await store.append(s, [ev('P', { i: 0 })], 'no_stream')
for (let b = 0; b < 12; b++) await store.append(s, Array.from({ length: 100 }, (_, k) => ev('P', { i: 1 + b * 100 + k })), 'any')
const all = (await store.readAll({ fromPosition: first.position })).filter((e) => e.stream_id === s)
assert(all.length === 1200 && all.every((e, i) => e.data.i === i + 1), `readAll pages (${all.length})`)
const lim = await store.readAll({ fromPosition: first.position, limit: 750 })
assert(lim.length === 750, 'readAll limit')
const beyond = await store.readAll({ fromPosition: 10n ** 15n })
assert(beyond.length === 0, 'readAll beyond end')
const odd = (await store.readAll({ fromPosition: first.position + 1n })).filter((e) => e.stream_id === s)
assert(odd.length === 1200, 'readAll from a non-boundary position')
assert(!(await store.readAll()).some((e) => e.type.startsWith('$') || e.stream_id.startsWith('$') || e.stream_id === 'foreign-1'), 'no system or binary events')
assert(verifyChain(await store.readStream(s)) === null, 'chain over 1201 events')
assert((await store.readStream(s, { fromRevision: 1190 })).length === 11, 'readStream fromRevision')

// slow handler: caughtUp only after all historical events were handled
let handled = 0
const sub = store.subscribeAll(first.position, async (e) => { if (e.stream_id === s) { await new Promise((r) => setTimeout(r, 1)); handled++ } })
await sub.caughtUp
assert(handled === 1200, `caughtUp after handler returned for all (${handled})`)
await sub.close()

// concurrent 'any' appends keep a valid chain
const c = `conc_${run}`
await Promise.all(Array.from({ length: 8 }, (_, i) => store.append(c, [ev('C', { i })], 'any')))
const ce = await store.readStream(c)
assert(ce.length === 8 && verifyChain(ce) === null, 'concurrent any appends chain')

// handler failure during catch-up rejects caughtUp
const bad = store.subscribeAll(first.position, () => { throw new Error('boom') })
const r = await bad.caughtUp.then(() => 'resolved', (e: Error) => e.message)
assert(r === 'boom', 'handler error rejects caughtUp')
await bad.close()

// close while waiting for live events ends promptly
const idle = store.subscribeAll(null, () => {})
await idle.caughtUp
const t = Date.now(); await idle.close(); assert(Date.now() - t < 1000, 'close is prompt')

// non-uuid ids
const e2 = await store.append(`x_${run}`, [ev('X', {}, 'not-a-uuid')], 'any').catch((e: Error) => e.message)
assert(String(e2).includes('not a UUID'), 'non-uuid id refused')

// resubscribe after a drop (fake drops after FAKE_DROP_AFTER events): no gap, no duplicate
const d = `drop_${run}`
const seen: number[] = []
const dsub = store.subscribeAll(null, (e: RecordedEvent) => { if (e.stream_id === d) seen.push(e.data.i as number) })
await dsub.caughtUp
for (let i = 0; i < 30; i++) await store.append(d, [ev('D', { i })], 'any')
const until = Date.now() + 5000
while (seen.length < 30 && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
assert(seen.length === 30 && seen.every((v, i) => v === i), `live after drop: ${seen.length}`)
await dsub.close()
await store.close()
console.log('done')
