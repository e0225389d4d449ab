// Worker thread for the wasm argon2id backend: hash-wasm is CPU-bound and synchronous inside,
// so it runs here and never on the main thread's event loop. One job at a time per worker.
import { parentPort } from 'node:worker_threads'
import { argon2id } from 'hash-wasm'
import type { Argon2Params } from './phc.ts'

export type Argon2Job = {
  id: number
  password: Uint8Array
  salt: Uint8Array
  params: Argon2Params
  hashLength: number
}

export type Argon2JobResult = { id: number; hash: Uint8Array } | { id: number; error: string }

async function run(job: Argon2Job): Promise<Argon2JobResult> {
  try {
    const hash = await argon2id({
      password: job.password,
      salt: job.salt,
      memorySize: job.params.memoryKiB,
      iterations: job.params.passes,
      parallelism: job.params.parallelism,
      hashLength: job.hashLength,
      outputType: 'binary',
    })
    return { id: job.id, hash }
  } catch (error) {
    return { id: job.id, error: error instanceof Error ? error.message : String(error) }
  }
}

const port = parentPort
if (!port) throw new Error('argon2-worker.ts must be started as a worker thread')
port.on('message', (job: Argon2Job) => {
  void run(job).then((result) => port.postMessage(result))
})
