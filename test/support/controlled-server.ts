/**
 * Like `startServer`, but with a clock the test moves (`openRuntime(config, { now })`) and a
 * logger the test can read, for expiry, TOTP time steps and background work such as mail retries.
 */
import type { Logger, LogLevel } from '../../src/logger.ts'
import { tempDataDir } from './runtime.ts'
import { startServer, type TestServer } from './server.ts'

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

export function startControlledServer(
  options: { env?: Record<string, string>; clock?: TestClock; log?: Logger } = {},
): Promise<TestServer> {
  return startServer(options.env, tempDataDir(), { now: options.clock?.now, log: options.log })
}
