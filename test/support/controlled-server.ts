/**
 * Like `startServer`, but with a clock the test moves (`openRuntime(config, { now })`) and a
 * logger the test can read, for expiry, TOTP time steps and background work such as mail retries.
 */
import { rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { createApp } from '../../src/api/app.ts'
import { createNodeServer } from '../../src/api/node-server.ts'
import { openRuntime } from '../../src/app/runtime.ts'
import { loadConfig } from '../../src/config.ts'
import type { Logger, LogLevel } from '../../src/logger.ts'
import { tempDataDir } from './runtime.ts'
import type { TestServer } from './server.ts'

export type TestClock = {
  now(): Date
  /** Moves the clock forward by `ms` milliseconds. */
  advance(ms: number): void
}

/** A clock that stands still until the test moves it. */
export function testClock(startMs = Date.now()): TestClock {
  let current = startMs
  return {
    now: () => new Date(current),
    advance(ms) {
      current += ms
    },
  }
}

export type LogEntry = { level: LogLevel; message: string; fields: Record<string, unknown> }

export type RecordingLogger = Logger & {
  entries: LogEntry[]
  /** Resolves with the first entry (already logged or still to come) with this message. */
  waitFor(message: string, timeoutMs?: number): Promise<LogEntry>
}

export function recordingLogger(): RecordingLogger {
  const entries: LogEntry[] = []
  const at =
    (level: LogLevel) =>
    (message: string, fields: Record<string, unknown> = {}): void => {
      entries.push({ level, message, fields })
    }
  return {
    entries,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    async waitFor(message, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const entry = entries.find((e) => e.message === message)
        if (entry) return entry
        if (Date.now() > deadline) {
          throw new Error(`no log entry "${message}" within ${timeoutMs} ms; got ${JSON.stringify(entries)}`)
        }
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    },
  }
}

export async function startControlledServer(
  options: { env?: Record<string, string>; clock?: TestClock; log?: Logger } = {},
): Promise<TestServer> {
  const dataDir = tempDataDir()
  const config = loadConfig({ RATE_LIMIT_PER_MINUTE: '0', ...options.env, DATA_DIR: dataDir, PORT: '0' })
  const runtime = await openRuntime(config, { now: options.clock?.now, log: options.log })
  const app = await createApp(runtime)
  const server = createNodeServer(app.serve)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await app.close()
    await runtime.close()
  }
  return {
    url: `http://127.0.0.1:${port}`,
    dataDir,
    runtime,
    stop,
    async close() {
      await stop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
