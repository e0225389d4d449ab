/** Reads the configuration, opens the store and read models, and serves the API. */
import { createApp } from './api/app.ts'
import { createNodeServer } from './api/node-server.ts'
import { startCheckpointWriter } from './app/checkpoint-writer.ts'
import { openRuntime } from './app/runtime.ts'
import { loadConfig } from './config.ts'
import { createLogger } from './logger.ts'

async function main(): Promise<void> {
  const config = loadConfig()
  const log = createLogger(config.logLevel)
  const runtime = await openRuntime(config, { log })
  // Node >= 24.7 and Bun hash with node:crypto argon2; Deno with hash-wasm in worker threads.
  log.info('password hashing', { argon2: runtime.passwords.backend, runtime: runtimeName() })
  const app = await createApp(runtime)
  const checkpoints = startCheckpointWriter({
    audit: runtime.audit,
    dataDir: config.dataDir,
    intervalMinutes: config.checkpointIntervalMinutes,
    log,
    now: runtime.now,
  })
  const server = createNodeServer(app.serve)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.port, config.host, resolve)
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : config.port
  log.info('listening', { url: `http://${config.host}:${port}`, docs: `http://${config.host}:${port}/docs` })

  let stopping = false
  const shutdown = (signal: string): void => {
    if (stopping) return
    stopping = true
    log.info('shutting down', { signal })
    checkpoints.stop()
    server.close(async () => {
      await app.close()
      await runtime.close()
      log.info('stopped')
      process.exit(0)
    })
    server.closeIdleConnections()
    setTimeout(() => server.closeAllConnections(), 10_000).unref()
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
}

function runtimeName(): string {
  const { bun, deno, node } = process.versions as Record<string, string | undefined>
  return bun ? `bun ${bun}` : deno ? `deno ${deno}` : `node ${node}`
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error)
  console.error(`auth-service failed to start: ${message}`)
  process.exit(1)
})
