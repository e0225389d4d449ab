/** Runs a verify's walk (log-walk.ts) in a worker thread and waits for its one answer. */
import { Worker } from 'node:worker_threads'
import type { EventStoreSettings } from '../app/runtime.ts'
import type { WalkRange, WalkResult } from './log-walk.ts'

const workerUrl = new URL('./verify-worker.ts', import.meta.url)

export function walkInWorker(settings: EventStoreSettings, range: WalkRange): Promise<WalkResult> {
  const { dataDir, eventStoreUrl, sqliteSynchronous } = settings
  return new Promise((resolve, reject) => {
    let result: WalkResult | null = null
    const worker = new Worker(workerUrl, {
      workerData: { settings: { dataDir, eventStoreUrl, sqliteSynchronous }, range },
    })
    worker.once('message', (message: WalkResult) => {
      result = message
    })
    worker.once('error', reject)
    worker.once('exit', (code) => {
      if (result) resolve(result)
      else reject(new Error(`the verify worker stopped (exit code ${code}) without an answer`))
    })
  })
}
