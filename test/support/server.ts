/** Starts the real service on a free port with its own DATA_DIR, for end-to-end tests over HTTP. */
import { rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { requestParts } from '../../harness/client.ts'
import { createApp } from '../../src/api/app.ts'
import { createNodeServer } from '../../src/api/node-server.ts'
import { openRuntime, type Runtime } from '../../src/app/runtime.ts'
import { loadConfig } from '../../src/config.ts'
import type { Logger } from '../../src/logger.ts'
import { tempDataDir } from './runtime.ts'

export type TestServer = {
  url: string
  dataDir: string
  runtime: Runtime
  /** Stops the server, keeping DATA_DIR. */
  stop(): Promise<void>
  /** Stops the server and deletes DATA_DIR. */
  close(): Promise<void>
}

export async function startServer(
  env: Record<string, string> = {},
  dataDir = tempDataDir(),
  options: { now?: () => Date; log?: Logger; verifyOffLoopAbove?: number; port?: number } = {},
): Promise<TestServer> {
  const config = loadConfig({ RATE_LIMIT_PER_MINUTE: '0', ...env, DATA_DIR: dataDir, PORT: '0' })
  const runtime = await openRuntime(config, options)
  const app = await createApp(runtime)
  const server = createNodeServer(app.serve)
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve))
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

/** A small fetch wrapper: JSON in, JSON (or text) out, with the status and headers. */
export async function call(
  base: string,
  method: string,
  path: string,
  options: {
    json?: unknown
    form?: Record<string, string>
    token?: string
    headers?: Record<string, string>
    raw?: string
  } = {},
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies loosely
): Promise<{ status: number; body: any; headers: Headers }> {
  const parts = requestParts(options)
  const { headers } = parts
  const body = parts.body ?? options.raw
  const response = await fetch(`${base}${path}`, { method, headers, body })
  const text = await response.text()
  let parsed: unknown = text
  try {
    parsed = JSON.parse(text)
  } catch {}
  return { status: response.status, body: parsed, headers: response.headers }
}
