// A small pool of argon2 worker threads (see argon2-worker.ts). Workers start on demand up to
// `size` and are unref'd while idle, so an idle pool never keeps the process alive.
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import type { Argon2Job, Argon2JobResult } from './argon2-worker.ts'
import type { Argon2Params } from './phc.ts'

export type Argon2Input = { password: Uint8Array; salt: Uint8Array; params: Argon2Params; hashLength: number }

export type Argon2WorkerPool = {
  derive(input: Argon2Input): Promise<Uint8Array>
  close(): Promise<void>
}

type Task = { job: Argon2Job; resolve(hash: Uint8Array): void; reject(error: Error): void }
type Slot = { worker: Worker; task: Task | null; failure: Error | null }

const workerUrl = new URL('./argon2-worker.ts', import.meta.url)

export function createArgon2WorkerPool(size: number = availableParallelism()): Argon2WorkerPool {
  if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`invalid argon2 pool size: ${size}`)
  const slots: Slot[] = []
  const queue: Task[] = []
  let nextId = 1
  let closed = false

  function derive(input: Argon2Input): Promise<Uint8Array> {
    if (closed) return Promise.reject(new Error('argon2 worker pool is closed'))
    return new Promise((resolve, reject) => {
      queue.push({ job: { id: nextId++, ...input }, resolve, reject })
      dispatch()
    })
  }

  function dispatch(): void {
    while (!closed && queue.length > 0) {
      const slot = slots.find((s) => s.task === null) ?? (slots.length < size ? spawn() : null)
      if (!slot) return
      const task = queue.shift()!
      slot.task = task
      slot.worker.ref()
      slot.worker.postMessage(task.job)
    }
  }

  function spawn(): Slot {
    const slot: Slot = { worker: new Worker(workerUrl), task: null, failure: null }
    slot.worker.unref()
    slot.worker.on('message', (result: Argon2JobResult) => {
      const task = slot.task
      slot.task = null
      slot.worker.unref()
      if (task && task.job.id === result.id) {
        if ('error' in result) task.reject(new Error(`argon2 failed: ${result.error}`))
        else task.resolve(result.hash)
      }
      dispatch()
    })
    slot.worker.on('error', (error) => {
      slot.failure = error
    })
    slot.worker.on('exit', (code) => {
      slots.splice(slots.indexOf(slot), 1)
      slot.task?.reject(slot.failure ?? new Error(`argon2 worker exited (code ${code})`))
      slot.task = null
      dispatch()
    })
    slots.push(slot)
    return slot
  }

  async function close(): Promise<void> {
    closed = true
    for (const task of queue.splice(0)) task.reject(new Error('argon2 worker pool is closed'))
    await Promise.all(slots.map((slot) => slot.worker.terminate()))
  }

  return { derive, close }
}
