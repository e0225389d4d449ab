/**
 * The service as a child process (`node src/main.ts`) on a DATA_DIR of its own: started, awaited
 * until ready, stopped with a signal (SIGTERM, SIGINT) or killed (SIGKILL).
 *
 * Only `node:` modules are imported. Used by the crash trial (trial.ts), scripts/ and bench/, and
 * the tests that run the real process.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const BOOTSTRAP_TOKEN = 'crash-harness-bootstrap-token-0123456789'

export type ServerProcess = {
  child: ChildProcess
  pid: number
  url: string
  port: number
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Everything it wrote to stdout and stderr so far. */
  output(): string
}

/** A TCP port that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      const port = typeof address === 'object' && address ? address.port : 0
      probe.close(() => resolvePort(port))
    })
  })
}

export function spawnServer(options: {
  dataDir: string
  port: number
  env?: Record<string, string>
  /** Also append the output here (kept across restarts). */
  logFile?: string
}): ServerProcess {
  const child = spawn(process.execPath, ['src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATA_DIR: options.dataDir,
      PORT: String(options.port),
      HOST: '127.0.0.1',
      RATE_LIMIT_PER_MINUTE: '0',
      ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP_TOKEN,
      LOG_LEVEL: 'info',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const log = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : null
  const collect = (chunk: Buffer): void => {
    const text = chunk.toString('utf8')
    output = (output + text).slice(-200_000)
    log?.write(text)
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    child.once('exit', (code, signal) => {
      log?.end()
      done({ code, signal })
    })
  })
  return {
    child,
    pid: child.pid ?? -1,
    port: options.port,
    url: `http://127.0.0.1:${options.port}`,
    exited,
    output: () => output,
  }
}

/** Polls GET /readyz until it answers 200; throws with the server's output if it exits or times out. */
export async function waitReady(server: ServerProcess, timeoutMs = 30_000): Promise<number> {
  const started = performance.now()
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null
  void server.exited.then((e) => {
    exit = e
  })
  while (performance.now() - started < timeoutMs) {
    if (exit) {
      throw new Error(
        `server exited before it was ready (${JSON.stringify(exit)}):\n${server.output().slice(-3000)}`,
      )
    }
    try {
      const reply = await fetch(`${server.url}/readyz`, { signal: AbortSignal.timeout(2_000) })
      await reply.arrayBuffer()
      if (reply.status === 200) return performance.now() - started
    } catch {}
    await sleep(25)
  }
  throw new Error(`server not ready within ${timeoutMs} ms:\n${server.output().slice(-3000)}`)
}

/** Sends `signal` and waits for the exit (SIGKILL if it has not exited within `timeoutMs`). */
export async function stopServer(
  server: ServerProcess,
  signal: NodeJS.Signals,
  timeoutMs = 15_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) {
    return { code: server.child.exitCode, signal: server.child.signalCode, timedOut: false }
  }
  // By pid, not child.kill(): Deno reports any child it signalled as killed by that signal,
  // even one that handled it and exited 0.
  if (server.child.pid !== undefined) process.kill(server.child.pid, signal)
  const timer = sleep(timeoutMs).then(() => null)
  const exit = await Promise.race([server.exited, timer])
  if (exit) return { ...exit, timedOut: false }
  server.child.kill('SIGKILL')
  return { ...(await server.exited), timedOut: true }
}
