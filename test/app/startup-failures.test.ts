/** Bad stores and directories: a clear message naming the problem, a non-zero exit, nothing overwritten. */
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { describe, expect, it } from 'vitest'
import { openTestRuntime, tempDataDir } from '../support/runtime.ts'

function start(env: Record<string, string>): { status: number | null; stderr: string } {
  const result = spawnSync(process.execPath, ['src/main.ts'], {
    env: { ...process.env, PORT: '0', RATE_LIMIT_PER_MINUTE: '0', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  })
  return { status: result.status, stderr: result.stderr }
}

describe('startup refuses bad input clearly', () => {
  it('a corrupt events.db: names the file, exits non-zero, leaves the file as it was', () => {
    const dir = tempDataDir()
    const garbage = Buffer.from('not a database at all '.repeat(500))
    writeFileSync(join(dir, 'events.db'), garbage)
    const { status, stderr } = start({ DATA_DIR: dir })
    expect(status).toBe(1)
    expect(stderr).toMatch(/events\.db/)
    expect(readFileSync(join(dir, 'events.db')).equals(garbage)).toBe(true)
  })

  it('a SQLite file of another application', () => {
    const dir = tempDataDir()
    const db = new DatabaseSync(join(dir, 'events.db'))
    db.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY)')
    db.close()
    const { status, stderr } = start({ DATA_DIR: dir })
    expect(status).toBe(1)
    expect(stderr).toMatch(/another application/)
  })

  it('an unknown event type in a stream', async () => {
    const t = await openTestRuntime()
    await t.runtime.accounts.register(
      { username: 'zoe', email: 'zoe@example.com', password: 'correct horse battery', role: 'user' },
      { actorId: null },
    )
    await t.runtime.close()
    const db = new DatabaseSync(join(t.dataDir, 'events.db'))
    db.prepare("UPDATE events SET type = 'AccountTeleported' WHERE stream_id = 'user-1'").run()
    db.close()
    // Read models that have not seen the event yet, as after an upgrade gone wrong.
    for (const suffix of ['', '-wal', '-shm'])
      rmSync(join(t.dataDir, `read-models.db${suffix}`), { force: true })
    const { status, stderr } = start({ DATA_DIR: t.dataDir })
    expect(status).toBe(1)
    expect(stderr).toMatch(/unknown event type "AccountTeleported" at user-1@0/)
  })

  it('a DATA_DIR that cannot be written', () => {
    const parent = tempDataDir()
    // Tests run as root, who may write anywhere: a directory under a file cannot be created by anyone.
    writeFileSync(join(parent, 'a-file'), 'x')
    const { status, stderr } = start({ DATA_DIR: join(parent, 'a-file', 'data') })
    expect(status).toBe(1)
    expect(stderr).toMatch(/DATA_DIR .*a-file\/data cannot be created/)
  })

  it('an unreachable EventStoreDB', () => {
    const { status, stderr } = start({
      DATA_DIR: tempDataDir(),
      EVENT_STORE_URL: 'esdb://127.0.0.1:1?tls=false',
    })
    expect(status).toBe(1)
    expect(stderr).toMatch(/127\.0\.0\.1:1/)
  })

  it('an unreachable PostgreSQL: names it without its password', () => {
    const { status, stderr } = start({
      DATA_DIR: tempDataDir(),
      EVENT_STORE_URL: 'postgres://auth:s3cret-password@127.0.0.1:1/auth',
    })
    expect(status).toBe(1)
    expect(stderr).toMatch(/PostgreSQL at .*127\.0\.0\.1:1.* is unreachable/)
    expect(stderr).not.toContain('s3cret-password')
  })

  it('a bad configuration value', () => {
    const { status, stderr } = start({ DATA_DIR: tempDataDir(), RATE_LIMIT_PER_MINUTE: 'lots' })
    expect(status).toBe(1)
    expect(stderr).toMatch(/RATE_LIMIT_PER_MINUTE must be an integer/)
  })

  it('a UNIQUENESS_SECRET other than the one the store was written with: names the setting, writes nothing', async () => {
    const dir = tempDataDir()
    const first = Buffer.alloc(32, 1).toString('base64')
    const t = await openTestRuntime(dir, { UNIQUENESS_SECRET: first })
    await t.runtime.close()
    const before = readFileSync(join(dir, 'events.db'))
    const { status, stderr } = start({
      DATA_DIR: dir,
      UNIQUENESS_SECRET: Buffer.alloc(32, 2).toString('base64'),
    })
    expect(status).toBe(1)
    expect(stderr).toMatch(/UNIQUENESS_SECRET does not match/)
    expect(readFileSync(join(dir, 'events.db')).equals(before)).toBe(true)
    // Nor in the WAL, which Node leaves behind at exit while Bun checkpoints it into the file.
    const wal = join(dir, 'events.db-wal')
    expect(existsSync(wal) ? statSync(wal).size : 0).toBe(0)
    // The right one starts.
    const again = await openTestRuntime(dir, { UNIQUENESS_SECRET: first })
    await again.runtime.close()
  })

  it('a UNIQUENESS_SECRET that is not the base64 of 32 bytes', () => {
    const { status, stderr } = start({ DATA_DIR: tempDataDir(), UNIQUENESS_SECRET: 'c2hvcnQ=' })
    expect(status).toBe(1)
    expect(stderr).toMatch(/UNIQUENESS_SECRET must be the base64 of 32 bytes/)
  })

  it('read models built from another event store: refused, naming read-models.db', async () => {
    const [a, b] = [tempDataDir(), tempDataDir()]
    for (const dir of [a, b]) await (await openTestRuntime(dir)).runtime.close()
    for (const suffix of ['', '-wal', '-shm']) rmSync(join(b, `read-models.db${suffix}`), { force: true })
    copyFileSync(join(a, 'read-models.db'), join(b, 'read-models.db'))
    const { status, stderr } = start({ DATA_DIR: b })
    expect(status).toBe(1)
    expect(stderr).toMatch(/read-models\.db.*another event store/)
    // Deleting them is the way out: they are rebuilt from this store.
    rmSync(join(b, 'read-models.db'))
    const again = await openTestRuntime(b)
    await again.runtime.close()
  })
})
