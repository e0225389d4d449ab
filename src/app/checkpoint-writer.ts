/**
 * Signs a tree head (the log-wide Merkle tree's size and root) at an interval and keeps it in
 * `<dataDir>/checkpoints/`, so that an auditor always has a recent one to hold the store to
 * (copy them off the machine: a checkpoint is only as safe as the place it is kept).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '../logger.ts'
import type { Audit } from './audit.ts'

export function startCheckpointWriter(options: {
  audit: Audit
  dataDir: string
  intervalMinutes: number
  log: Logger
  now: () => Date
}): { writeNow(): Promise<string>; stop(): void } {
  const dir = join(options.dataDir, 'checkpoints')

  async function writeNow(): Promise<string> {
    const jws = await options.audit.checkpoint()
    mkdirSync(dir, { recursive: true })
    const path = join(dir, `${options.now().toISOString().replace(/[:.]/g, '-')}.jws`)
    writeFileSync(path, `${jws}\n`)
    options.log.info('checkpoint written', { path })
    return path
  }

  const timer =
    options.intervalMinutes > 0
      ? setInterval(() => {
          writeNow().catch((error: unknown) =>
            options.log.error('checkpoint failed', { error: (error as Error).message }),
          )
        }, options.intervalMinutes * 60_000)
      : null
  timer?.unref()
  return {
    writeNow,
    stop: () => {
      if (timer) clearInterval(timer)
    },
  }
}
