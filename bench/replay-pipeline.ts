/**
 * How fast could a replay go with reading and decrypting in a worker thread? A measurement for
 * issue #11 (rebuild at ≥ 100k events/s), not the service's path: the projection runner replays
 * on one thread.
 *
 * On one seeded DATA_DIR (left as it is), into fresh read models in a temporary directory, in one
 * run and in this order:
 *   1. in-thread: `ProjectionRunner.start()` on an empty read store, the catch-up the service and
 *      `npm run audit -- rebuild` do (read, preload keys, decrypt, project, tree);
 *   2. pipelined: a worker thread reads and decrypts batches of 2,000 (with its own store and key
 *      connections) and posts them, at most 4 ahead; this thread only applies them.
 * Both must end with the same tree root. Prints seconds and events/s of each, when the worker's
 * first batch arrived, and how long this thread spent applying.
 *
 * Usage: npx node bench/replay-pipeline.ts --data-dir DIR (seed one with bench/seed.ts)
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { projections } from '../projections/index.ts'
import { createEventCodec, type DecodedEvent } from '../src/app/event-codec.ts'
import { openDataKeys, openEventStore } from '../src/app/runtime.ts'
import { loadConfig } from '../src/config.ts'
import { createProjectionRunner } from '../src/readstore/projection-runner.ts'
import { ReadStore } from '../src/readstore/read-store.ts'

const BATCH = 2000
const AHEAD = 4

async function openSource(dataDir: string) {
  const config = loadConfig({ ...process.env, DATA_DIR: dataDir })
  const store = await openEventStore(config)
  const dataKeys = await openDataKeys(config, store)
  return { store, dataKeys, codec: createEventCodec(dataKeys) }
}

/** The worker: reads and decodes every event, posting a batch whenever the main thread has room. */
async function decodeInWorker(dataDir: string): Promise<void> {
  const { store, dataKeys, codec } = await openSource(dataDir)
  let room = AHEAD
  let wake: (() => void) | null = null
  parentPort!.on('message', () => {
    room++
    wake?.()
    wake = null
  })
  let position = 0n
  for (;;) {
    const batch = await store.readAll({ fromPosition: position, limit: BATCH })
    if (batch.length === 0) break
    await codec.preload(batch)
    const decoded = batch.map((event) => codec.decode(event))
    position = batch[batch.length - 1].position
    while (room === 0) await new Promise<void>((resume) => (wake = resume))
    room--
    parentPort!.postMessage(decoded)
  }
  parentPort!.postMessage(null)
  await dataKeys.close()
  await store.close()
}

async function inThread(dataDir: string, readStore: ReadStore): Promise<void> {
  const { store, dataKeys, codec } = await openSource(dataDir)
  const runner = createProjectionRunner({ store, readStore, codec })
  await runner.start()
  await runner.stop()
  await dataKeys.close()
  await store.close()
}

async function pipelined(
  dataDir: string,
  readStore: ReadStore,
): Promise<{ firstBatchMs: number; applyMs: number }> {
  const started = performance.now()
  const worker = new Worker(new URL(import.meta.url), { workerData: { dataDir } })
  let firstBatchMs = 0
  let applyMs = 0
  readStore.suspendIndexes()
  try {
    await new Promise<void>((resolve, reject) => {
      worker.once('error', reject)
      worker.on('message', (batch: DecodedEvent[] | null) => {
        if (batch === null) return resolve()
        firstBatchMs ||= performance.now() - started
        worker.postMessage('room')
        const applying = performance.now()
        readStore.applyBatch(batch)
        applyMs += performance.now() - applying
      })
    })
  } finally {
    readStore.resumeIndexes()
    await worker.terminate()
  }
  return { firstBatchMs, applyMs }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'data-dir': { type: 'string' } } })
  const dataDir = values['data-dir']
  if (!dataDir) throw new Error('usage: npx node bench/replay-pipeline.ts --data-dir DIR')
  const scratch = mkdtempSync(join(tmpdir(), 'auth-bench-pipeline-'))
  const loadBefore = loadavg()[0]
  try {
    const results: Record<string, { seconds: number; events: number; root: string }> = {}
    let pipeline = { firstBatchMs: 0, applyMs: 0 }
    for (const variant of ['in-thread', 'pipelined'] as const) {
      const readStore = new ReadStore(join(scratch, `${variant}.db`), projections)
      const started = performance.now()
      if (variant === 'in-thread') await inThread(dataDir, readStore)
      else pipeline = await pipelined(dataDir, readStore)
      const seconds = (performance.now() - started) / 1000
      results[variant] = { seconds, events: readStore.tree.size, root: readStore.tree.root().toString('hex') }
      readStore.close()
      const r = results[variant]
      console.error(
        `${variant}: ${r.events} events in ${r.seconds.toFixed(2)} s = ${Math.round(r.events / r.seconds)}/s`,
      )
    }
    if (results['in-thread'].root !== results.pipelined.root)
      throw new Error('the two replays built different trees')
    const [a, b] = [results['in-thread'], results.pipelined]
    console.log(
      `\n| replay of ${a.events.toLocaleString('en')} events | seconds | events/s |\n|---|---:|---:|\n` +
        `| in-thread (the service's catch-up) | ${a.seconds.toFixed(2)} | ${Math.round(a.events / a.seconds).toLocaleString('en')} |\n` +
        `| worker reads and decrypts, this thread applies | ${b.seconds.toFixed(2)} | ${Math.round(b.events / b.seconds).toLocaleString('en')} |\n\n` +
        `Pipelined: first batch after ${pipeline.firstBatchMs.toFixed(0)} ms, this thread applying for ` +
        `${(pipeline.applyMs / 1000).toFixed(2)} s of ${b.seconds.toFixed(2)} s. ${cpus().length} CPUs, load average ` +
        `${loadBefore.toFixed(1)} before, ${loadavg()[0].toFixed(1)} after; same tree root.`,
    )
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
}

if (isMainThread) await main()
else await decodeInWorker((workerData as { dataDir: string }).dataDir)
