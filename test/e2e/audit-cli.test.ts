/**
 * The auditors' command line (`npm run audit -- ...`) against a DATA_DIR that a real server
 * wrote and then stopped: JSON on stdout, exit 0 when all is well, 1 when something is broken,
 * 2 on bad usage.
 */
import { spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { AuditEvent } from '../../src/app/audit.ts'
import { runAudit } from '../../src/cli/audit.ts'
import { openSqliteEventStore } from '../../src/eventstore/sqlite-event-store.ts'
import { type Api, api, login, type NewUser, newUser, register } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'
import { rewriteStoredEvent } from '../support/tamper.ts'
import { tempDir } from '../support/temp.ts'

const BOOTSTRAP = 'audit-cli-e2e-bootstrap-token'
// A CLI run in a process of its own takes a second or more on a busy machine.
vi.setConfig({ testTimeout: 180_000, hookTimeout: 60_000 })
const ROOT = resolve(import.meta.dirname, '../..')
/** Files an auditor keeps (checkpoints, proofs, keys), outside DATA_DIR, which some tests search. */
const besideDataDir = tempDir('audit-cli-files')

let server: TestServer
let dataDir: string
let userId: number
let erasedId: number
let crashId: number
let httpHistory: AuditEvent[]
let erasedHistory: AuditEvent[]
let lockedAt: string
let unlockedAt: string
/** The service's public keys, as an outside auditor would have them. */
let jwks: unknown

type CliResult = { status: number | null; stdout: string; stderr: string; json: () => unknown }

/** The command line in this process (runAudit, as the entry point calls it): fast enough to run often. */
async function cli(...args: string[]): Promise<CliResult> {
  const out: string[] = []
  const err: string[] = []
  const status = await runAudit(args, {
    env: { ...process.env, DATA_DIR: dataDir, EVENT_STORE_URL: '' },
    out: (line) => out.push(`${line}\n`),
    err: (text) => err.push(`${text}\n`),
  })
  const stdout = out.join('')
  return { status, stdout, stderr: err.join(''), json: () => JSON.parse(stdout) }
}

/** The real entry point, `npm run audit -- …`, as a process of its own (about a second each). */
function spawnCli(...args: string[]): CliResult {
  const result = spawnSync(process.execPath, ['src/cli/audit.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, DATA_DIR: dataDir, EVENT_STORE_URL: '' },
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { ...result, json: () => JSON.parse(result.stdout) }
}

function expectExit(result: CliResult, code: number): void {
  expect(result.status, `exit code; stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(code)
}

function expectUsage(result: CliResult): void {
  expectExit(result, 2)
  expect(result.stderr).toContain('usage: npm run audit -- <command>')
  expect(result.stdout).toBe('')
}

const rewriteEvent = (stream: string, type: string, from: string, to: string, recompute: boolean): number =>
  rewriteStoredEvent(dataDir, stream, type, from, to, recompute)

function eventCount(): number {
  const db = new DatabaseSync(join(dataDir, 'events.db'), { readOnly: true })
  try {
    return (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n
  } finally {
    db.close()
  }
}

function readModels(): Record<string, unknown[]> {
  const db = new DatabaseSync(join(dataDir, 'read-models.db'), { readOnly: true })
  try {
    const out: Record<string, unknown[]> = {}
    for (const table of [
      'users',
      'sessions',
      'session_owners',
      'session_revocations',
      'activity',
      'checkpoint',
    ])
      out[table] = db.prepare(`SELECT * FROM ${table} ORDER BY 1`).all()
    return out
  } finally {
    db.close()
  }
}

const between = (a: string, b: string): string => new Date((Date.parse(a) + Date.parse(b)) / 2).toISOString()

beforeAll(async () => {
  server = await startServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP })
  dataDir = server.dataDir
  const request: Api = api(server.url)
  const admin = newUser('cliadmin')
  expect(
    (await request('POST', '/admin/register', { json: admin, headers: { 'x-bootstrap-token': BOOTSTRAP } }))
      .status,
  ).toBe(200)
  const adminToken = (
    await request('POST', '/admin/login', { json: { username: admin.username, password: admin.password } })
  ).body.access_token

  const user: NewUser = { ...newUser('cliuser'), full_name: 'Cliff Client' }
  userId = (await register(request, user)).id
  const tokens = await login(request, user, { 'user-agent': 'CliAgent/1.0' })
  expect(
    (await request('POST', '/auth/token-refresh', { json: { refresh_token: tokens.refresh_token } })).status,
  ).toBe(200)
  expect(
    (
      await request('POST', '/admin/lock', {
        json: { user_id: userId, reason: 'cli check' },
        token: adminToken,
      })
    ).status,
  ).toBe(200)
  // Distinct timestamps for the lock and the unlock (the clock is read once per command).
  const lockTime = Date.now()
  while (Date.now() <= lockTime + 2) await new Promise((r) => setTimeout(r, 2))
  expect(
    (await request('POST', '/admin/unlock', { json: { user_id: userId }, token: adminToken })).status,
  ).toBe(200)
  await login(request, user)

  const erased = newUser('clierased')
  erasedId = (await register(request, erased)).id
  await login(request, erased, { 'user-agent': 'CliErasedAgent/1.0' })
  expect((await request('DELETE', `/admin/user/${erasedId}`, { token: adminToken })).status).toBe(200)

  const crash = newUser('clicrash')
  crashId = (await register(request, crash)).id
  await login(request, crash, { 'user-agent': 'CliCrashAgent/1.0' })

  httpHistory = (await request('GET', `/admin/users/${userId}/history`, { token: adminToken })).body
  erasedHistory = (await request('GET', `/admin/users/${erasedId}/history`, { token: adminToken })).body
  lockedAt = httpHistory.find((e) => e.type === 'AccountLocked')!.occurred_at
  unlockedAt = httpHistory.find((e) => e.type === 'AccountUnlocked')!.occurred_at
  expect(Date.parse(unlockedAt)).toBeGreaterThan(Date.parse(lockedAt))
  jwks = (await request('GET', '/.well-known/jwks.json')).body
  await server.stop()
})

/** Writes a tree head to a file of its own, for verify-proof's --head. */
function headFileOf(jws: string): string {
  const path = join(besideDataDir, `head-${process.pid}-${Date.now()}.jws`)
  writeFileSync(path, `${jws}\n`)
  return path
}
afterAll(async () => {
  await server?.close()
})

describe('npm run audit -- history', () => {
  it('prints the user’s events as JSON, the same as the HTTP history (from its own process)', async () => {
    const result = spawnCli('history', String(userId))
    expectExit(result, 0)
    const events = result.json() as AuditEvent[]
    expect(events).toEqual(httpHistory)
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['AccountRegistered', 'SessionStarted', 'SessionRefreshed', 'AccountLocked']),
    )
    expect(events[0].data).toMatchObject({ full_name: 'Cliff Client', password_hash: '[redacted]' })
    expect(result.stdout).not.toContain('$argon2')
  })

  it('shows an erased user’s events with "[erased]" personal data', async () => {
    const result = await cli('history', String(erasedId))
    expectExit(result, 0)
    const events = result.json() as AuditEvent[]
    expect(events).toEqual(erasedHistory)
    expect(events[0].data).toMatchObject({ username: '[erased]', email: '[erased]' })
    expect(events.find((e) => e.type === 'SessionStarted')?.data.user_agent).toBe('[erased]')
    expect(result.stdout).not.toContain('CliErasedAgent')
    expect(events.at(-1)?.type).toBe('AccountDeleted')
  })

  it('exits 2 for an unknown user or a malformed id', async () => {
    expectUsage(await cli('history', '987654'))
    expectUsage(await cli('history', 'abc'))
    expectUsage(await cli('history', '0'))
    expectUsage(await cli('history'))
  })
})

describe('npm run audit -- state', () => {
  it('shows the account as it was: locked between the lock and the unlock, not before or after', async () => {
    const during = await cli('state', String(userId), '--as-of', between(lockedAt, unlockedAt))
    expectExit(during, 0)
    const locked = during.json() as Record<string, unknown>
    expect(locked).toMatchObject({
      status: 'active',
      id: userId,
      lock: { reason: 'admin', note: 'cli check' },
    })
    expect(locked.as_of).toBe(between(lockedAt, unlockedAt))

    const atLock = (await cli('state', String(userId), '--as-of', lockedAt)).json() as Record<string, unknown>
    expect(atLock.lock).toMatchObject({ reason: 'admin' })

    const after = await cli('state', String(userId), '--as-of', unlockedAt)
    expectExit(after, 0)
    expect((after.json() as Record<string, unknown>).lock).toBeNull()

    const now = await cli('state', String(userId))
    expectExit(now, 0)
    expect((now.json() as Record<string, unknown>).lock).toBeNull()

    const registeredAt = httpHistory[0].occurred_at
    const before = await cli('state', String(userId), '--as-of', between(registeredAt, lockedAt))
    expectExit(before, 0)
    expect(before.json()).toMatchObject({ status: 'active', lock: null, role: 'user' })
  })

  it('never prints the password hash or reset tokens', async () => {
    const result = await cli('state', String(userId))
    expect(result.stdout).not.toContain('$argon2')
    const state = result.json() as Record<string, unknown>
    expect(state).not.toHaveProperty('passwordHash')
    expect(state).not.toHaveProperty('resetTokens')
    expect(state).not.toHaveProperty('totp')
    expect(state.totp_enabled).toBe(false)
  })

  it('exits 2 for an unknown user or a bad timestamp', async () => {
    expectUsage(await cli('state', '987654'))
    expectUsage(await cli('state', String(userId), '--as-of', 'yesterday-ish'))
    expectUsage(await cli('state'))
  })
})

describe('npm run audit -- verify, checkpoint, rebuild', () => {
  let checkpointFile: string

  it('verify exits 0 when the log matches its chains and tree; --full walks it all again', async () => {
    const result = await cli('verify')
    expectExit(result, 0)
    expect(result.json()).toEqual({
      ok: true,
      chains: {
        ok: true,
        streams_checked: expect.any(Number),
        events_checked: eventCount(),
        tree_size: eventCount(),
        from_leaf: 0,
        first_broken: null,
      },
    })
    // The next verify starts at the tree head this one reached; --full from the first event.
    expect((await cli('verify')).json()).toMatchObject({
      chains: { from_leaf: eventCount(), events_checked: 0 },
    })
    expect((await cli('verify', '--full')).json()).toMatchObject({
      chains: { from_leaf: 0, events_checked: eventCount() },
    })
  })

  it('checkpoint --out writes a signed tree head that verify --checkpoint accepts', async () => {
    checkpointFile = join(besideDataDir, `checkpoint-${process.pid}-${Date.now()}.jws`)
    const result = await cli('checkpoint', '--out', checkpointFile)
    expectExit(result, 0)
    const printed = result.json() as { checkpoint: string; written_to: string }
    expect(printed.written_to).toBe(checkpointFile)
    expect(readFileSync(checkpointFile, 'utf8').trim()).toBe(printed.checkpoint)
    const payload = JSON.parse(Buffer.from(printed.checkpoint.split('.')[1], 'base64url').toString())
    expect(payload).toEqual({
      tree_size: eventCount(),
      root_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      issued_at: expect.any(String),
    })

    const verified = await cli('verify', '--checkpoint', checkpointFile)
    expectExit(verified, 0)
    expect(verified.json()).toMatchObject({
      ok: true,
      checkpoint: { ok: true, tree_size: eventCount(), first_broken: null },
    })
  })

  it('proof inclusion and consistency print proofs that verify-proof checks with the public keys alone', async () => {
    const head = readFileSync(checkpointFile, 'utf8').trim()
    const jwksFile = join(besideDataDir, `jwks-${process.pid}.json`)
    writeFileSync(jwksFile, JSON.stringify(jwks))
    const userStream = `user-${userId}`
    const inclusion = await cli('proof', 'inclusion', '--stream', userStream, '--revision', '0')
    expectExit(inclusion, 0)
    const inclusionFile = join(besideDataDir, `inclusion-${process.pid}.json`)
    writeFileSync(inclusionFile, inclusion.stdout)
    const checked = await cli(
      'verify-proof',
      '--jwks',
      jwksFile,
      '--head',
      headFileOf(head),
      '--inclusion',
      inclusionFile,
    )
    expectExit(checked, 0)
    expect(JSON.parse(checked.stdout.trim().split('\n').at(-1) as string)).toMatchObject({ ok: true })

    const size = (
      JSON.parse(Buffer.from(head.split('.')[1], 'base64url').toString()) as { tree_size: number }
    ).tree_size
    const consistency = await cli('proof', 'consistency', '--first', '3', '--second', String(size))
    expectExit(consistency, 0)
    expect(consistency.json()).toMatchObject({ first: 3, second: size, proof: expect.any(Array) })

    // A proof for another leaf does not check out: exit 1.
    const wrong = {
      ...(inclusion.json() as { leaf_index: number }),
      leaf_index: (inclusion.json() as { leaf_index: number }).leaf_index + 1,
    }
    writeFileSync(inclusionFile, JSON.stringify(wrong))
    expectExit(
      await cli('verify-proof', '--jwks', jwksFile, '--head', headFileOf(head), '--inclusion', inclusionFile),
      1,
    )
    expectExit(await cli('proof', 'inclusion', '--stream', 'user-999999', '--revision', '0'), 2)
    expectExit(await cli('proof', 'sideways'), 2)
  })

  it('verify --checkpoint exits 1 for a tree head whose signature does not verify', async () => {
    const jws = readFileSync(checkpointFile, 'utf8').trim()
    const [h, p, s] = jws.split('.')
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString())
    payload.tree_size -= 1
    const forged = join(besideDataDir, `forged-${process.pid}-${Date.now()}.jws`)
    writeFileSync(forged, `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}\n`)
    const result = await cli('verify', '--checkpoint', forged)
    expectExit(result, 1)
    expect(result.json()).toMatchObject({ ok: false, checkpoint: { ok: false } })
  })

  it('rebuild replays every event and ends with the same read models', async () => {
    const before = readModels()
    const result = await cli('rebuild')
    expectExit(result, 0)
    const report = result.json() as { events_applied: number; seconds: number }
    expect(report.events_applied).toBe(eventCount())
    expect(typeof report.seconds).toBe('number')
    expect(readModels()).toEqual(before)
  })

  it('a rewrite with recomputed hashes: verify --full names it; after a rebuild the old tree head fails', async () => {
    rewriteEvent(`user-${userId}`, 'AccountRegistered', '"role":"user"', '"role":"admin"', true)
    expect(((await cli('history', String(userId))).json() as AuditEvent[])[0].data.role).toBe('admin')

    const full = await cli('verify', '--full')
    expectExit(full, 1)
    expect(full.json()).toMatchObject({
      ok: false,
      chains: { first_broken: { stream_id: `user-${userId}`, revision: 0, reason: 'differs_from_tree' } },
    })
    // Rebuilt read models give a tree that matches the rewritten log, but not the old head.
    expectExit(await cli('rebuild'), 0)
    const result = await cli('verify', '--checkpoint', checkpointFile)
    expectExit(result, 1)
    expect(result.json()).toMatchObject({
      ok: false,
      chains: { first_broken: { reason: 'tree_differs_from_verified_head' } },
      checkpoint: { ok: false, first_broken: { reason: 'differs_from_tree_head' } },
    })
  })

  it('a rewrite without recomputed hashes fails verify --full, naming stream and revision', async () => {
    const revision = rewriteEvent(
      `user-${erasedId}`,
      'AccountRegistered',
      '"role":"user"',
      '"role":"admin"',
      false,
    )
    const result = await cli('verify', '--full')
    expectExit(result, 1)
    expect(result.json()).toMatchObject({
      ok: false,
      chains: {
        ok: false,
        first_broken: { stream_id: `user-${erasedId}`, revision, reason: 'hash_mismatch' },
      },
    })
  })
})

describe('npm run audit -- rebuild, after a deletion that was never projected', () => {
  function wrappedKey(owner: string): { wrapped: Uint8Array | null } | undefined {
    const db = new DatabaseSync(join(dataDir, 'keys.db'), { readOnly: true })
    try {
      return db.prepare('SELECT wrapped FROM data_keys WHERE owner = ?').get(owner) as
        | { wrapped: Uint8Array | null }
        | undefined
    } finally {
      db.close()
    }
  }

  it('destroys the data key when it replays the AccountDeleted (a crash hit between append and projection)', async () => {
    const owner = `user-${crashId}`
    expect(wrappedKey(owner)?.wrapped).toBeInstanceOf(Uint8Array)
    // What DELETE /admin/user appends, written as if the service died before projecting it.
    const store = openSqliteEventStore(join(dataDir, 'events.db'))
    try {
      const stream = await store.readStream(owner)
      const registered = stream[0].data
      const metadata = () => ({
        event_id: randomUUID(),
        schema_version: 1,
        occurred_at: new Date().toISOString(),
        actor_id: '1',
        correlation_id: null,
        causation_id: null,
      })
      await store.append(
        owner,
        [
          {
            type: 'SessionsRevoked',
            data: { reason: 'deleted', except_session_id: null },
            metadata: metadata(),
          },
          {
            type: 'AccountDeleted',
            data: { username_key: registered.username_key, email_key: registered.email_key },
            metadata: metadata(),
          },
        ],
        stream.at(-1)!.revision,
      )
    } finally {
      await store.close()
    }

    const result = await cli('rebuild')
    expectExit(result, 0)
    expect((result.json() as { events_applied: number }).events_applied).toBe(eventCount())
    expect(wrappedKey(owner), 'a tombstone, not the key').toEqual({ wrapped: null })

    const history = await cli('history', String(crashId))
    expectExit(history, 0)
    const events = history.json() as AuditEvent[]
    expect(events[0].data).toMatchObject({ username: '[erased]', email: '[erased]' })
    expect(history.stdout).not.toContain('CliCrashAgent')
    for (const file of readdirSync(dataDir, { recursive: true, withFileTypes: true }))
      if (file.isFile())
        expect(readFileSync(join(file.parentPath, file.name)).includes('CliCrashAgent/1.0'), file.name).toBe(
          false,
        )
  })
})

describe('npm run audit -- (bad usage)', () => {
  it('exits 2 with the usage text', async () => {
    expectUsage(spawnCli('frobnicate'))
    expectUsage(await cli())
    expectUsage(await cli('frobnicate'))
    expectUsage(await cli('verify', '--no-such-option'))
    expectUsage(await cli('verify', '--checkpoint', join(dataDir, 'no-such-checkpoint.jws')))
  })
})
