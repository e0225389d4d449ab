/**
 * DELETE /admin/user/{id} erases by crypto-shredding. Besides the API's view (404 everywhere,
 * "[erased]" in the auditors' history, the chain still verifies), this proves it on disk: no
 * file under DATA_DIR still holds the deleted user's email, name, username or user agent, nor
 * the wrapped data key, nor the HMAC keys of the email and username, in UTF-8 or UTF-16.
 */
import { createHmac } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AuditEvent } from '../../src/app/audit.ts'
import {
  type Api,
  api,
  login,
  type NewUser,
  newUser,
  type Reply,
  register,
  type Tokens,
} from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

const BOOTSTRAP = 'erasure-e2e-bootstrap-token'
const suffix = process.pid.toString(36)

/** The user whose traces are searched for on disk; never registered again in this file. */
const victim: NewUser & { full_name: string } = {
  username: `zebquux_${suffix}`,
  email: 'erase-me-7f3a@example.com',
  password: 'Tr0ub4dor&3-zebediah-quux',
  full_name: 'Zebediah Quux',
}
const VICTIM_AGENT = 'ErasureProbe/1.0'
const FAILED_AGENT = 'ErasureProbeFailing/2.0'

let server: TestServer
let request: Api
let dataDir: string
let adminToken: string
let observerToken: string
let victimId: number
let victimTokens: Tokens
let wrappedKey: Buffer
let checkpointBefore: string

function filesUnder(dir: string): string[] {
  const out: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...filesUnder(path))
    else if (entry.isFile()) out.push(path)
  }
  return out
}

/** UTF-8, UTF-16LE and UTF-16BE forms of a text, as SQLite or anything else could store it. */
function encodings(text: string): { label: string; bytes: Buffer }[] {
  const le = Buffer.from(text, 'utf16le')
  const be = Buffer.from(le).swap16()
  return [
    { label: 'utf8', bytes: Buffer.from(text, 'utf8') },
    { label: 'utf16le', bytes: le },
    { label: 'utf16be', bytes: be },
  ]
}

/** Every (file, value, encoding) where one of the values is found in a file under DATA_DIR. */
function findOnDisk(values: Record<string, string | Buffer>): string[] {
  const found: string[] = []
  const needles: { what: string; bytes: Buffer }[] = []
  for (const [what, value] of Object.entries(values)) {
    if (Buffer.isBuffer(value)) needles.push({ what: `${what} (raw)`, bytes: value })
    else
      for (const form of new Set([value, value.toLowerCase()]))
        for (const { label, bytes } of encodings(form))
          needles.push({ what: `${what} "${form}" ${label}`, bytes })
  }
  for (const file of filesUnder(dataDir)) {
    const content = readFileSync(file)
    for (const needle of needles)
      if (content.includes(needle.bytes)) found.push(`${file.slice(dataDir.length + 1)}: ${needle.what}`)
  }
  return found
}

/**
 * The HMAC under which uniqueness holds a value: with the secret (in DATA_DIR too), it lets
 * anyone test a guess of the erased value, so it must be gone as well.
 */
function uniquenessKey(kind: 'username' | 'email', value: string): string {
  const secret = Buffer.from(readFileSync(join(dataDir, 'keys', 'uniqueness.key'), 'utf8').trim(), 'base64')
  return createHmac('sha256', secret)
    .update(`${kind}:${value.normalize('NFKC').trim().toLowerCase()}`)
    .digest('base64url')
}

const victimTraces = (): Record<string, string | Buffer> => ({
  email: victim.email,
  full_name: victim.full_name,
  username: victim.username,
  user_agent: VICTIM_AGENT,
  failed_login_user_agent: FAILED_AGENT,
  wrapped_data_key: wrappedKey,
  email_key: uniquenessKey('email', victim.email),
  username_key: uniquenessKey('username', victim.username),
})

function readWrappedKey(owner: string): Buffer | null {
  const db = new DatabaseSync(join(dataDir, 'keys.db'), { readOnly: true })
  try {
    const row = db.prepare('SELECT wrapped FROM data_keys WHERE owner = ?').get(owner) as
      | { wrapped: Uint8Array | null }
      | undefined
    return row?.wrapped ? Buffer.from(row.wrapped) : null
  } finally {
    db.close()
  }
}

async function adminLogin(user: { username: string; password: string }): Promise<string> {
  const reply = await request('POST', '/admin/login', {
    json: { username: user.username, password: user.password },
  })
  expect(reply.status).toBe(200)
  return reply.body.access_token
}

const admin = newUser('eraser')
const observer = newUser('observer')

function expectNotFound(reply: Reply, what: string): void {
  expect(reply.status, `${what}: ${JSON.stringify(reply.body)}`).toBe(404)
  expect(reply.body).toEqual({ detail: expect.any(String) })
}

/** The erased account answers 404 on every route but the auditors' history. */
async function expectGoneEverywhere(id: number, user: NewUser): Promise<void> {
  const routes: [string, string, unknown][] = [
    ['PUT', `/admin/deactivate-user/${id}`, undefined],
    ['PUT', `/admin/activate-user/${id}`, undefined],
    ['PUT', '/admin/user/role', { user_id: id, role: 'admin' }],
    ['POST', '/admin/lock', { user_id: id, reason: 'x' }],
    ['POST', '/admin/unlock', { user_id: id }],
    ['DELETE', `/admin/user/${id}`, undefined],
  ]
  for (const [method, path, json] of routes)
    expectNotFound(await request(method, path, { json, token: adminToken }), `${method} ${path}`)
  expectNotFound(
    await request('GET', `/auth/verify-user/${user.username}`, { token: observerToken }),
    'verify-user',
  )
  const listed = await request('GET', `/admin/users?q=${encodeURIComponent(user.username)}`, {
    token: adminToken,
  })
  expect(listed.status).toBe(200)
  expect(listed.body).toEqual([])
  const all = await request('GET', '/admin/users?limit=1000', { token: adminToken })
  expect(all.body.map((u: { id: number }) => u.id)).not.toContain(id)
  const refused = await request('POST', '/auth/login', {
    form: { username: user.username, password: user.password },
  })
  expect(refused.status).toBe(401)
  expect(refused.body).toEqual({ detail: 'Incorrect username or password' })
}

async function history(id: number): Promise<AuditEvent[]> {
  const reply = await request('GET', `/admin/users/${id}/history`, { token: adminToken })
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  return reply.body
}

function expectErasedHistory(events: AuditEvent[], id: number): void {
  const text = JSON.stringify(events)
  for (const value of [victim.email, victim.full_name, victim.username, VICTIM_AGENT, FAILED_AGENT])
    expect(text).not.toContain(value)
  const registered = events.find((e) => e.type === 'AccountRegistered')
  expect(registered?.stream).toBe(`user-${id}`)
  expect(registered?.data).toMatchObject({
    user_id: id,
    username: '[erased]',
    email: '[erased]',
    full_name: '[erased]',
    role: 'user',
    password_hash: '[redacted]',
  })
  const failed = events.filter((e) => e.type === 'LoginFailed')
  expect(failed.length).toBeGreaterThan(0)
  for (const e of failed) expect(e.data).toMatchObject({ ip_address: '[erased]', user_agent: '[erased]' })
  const started = events.filter((e) => e.type === 'SessionStarted')
  expect(started.length).toBeGreaterThan(0)
  for (const e of started) {
    expect(e.stream).toMatch(/^session-\d+$/)
    expect(e.data).toMatchObject({ user_id: id, ip_address: '[erased]', user_agent: '[erased]' })
  }
  expect(events.map((e) => e.type)).toEqual(
    expect.arrayContaining(['AccountRegistered', 'LoginFailed', 'SessionStarted', 'SessionRefreshed']),
  )
  const deleted = events.at(-1)
  expect(deleted?.type).toBe('AccountDeleted')
  expect(deleted?.actor_id).toBe(adminIdRef.id)
  const revoked = events.find((e) => e.type === 'SessionsRevoked' && e.data.reason === 'deleted')
  expect(revoked?.actor_id).toBe(adminIdRef.id)
  for (const e of events) expect(e.hash).toMatch(/^[0-9a-f]{64}$/)
}

async function expectChainsVerify(): Promise<void> {
  const reply = await request('GET', '/admin/audit/verify', { token: adminToken })
  expect(reply.status).toBe(200)
  expect(reply.body).toMatchObject({ ok: true, first_broken: null })
  expect(reply.body.events_checked).toBeGreaterThan(0)
}

const adminIdRef = { id: 0 }

beforeAll(async () => {
  server = await startServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP })
  dataDir = server.dataDir
  request = api(server.url)
  const created = await request('POST', '/admin/register', {
    json: admin,
    headers: { 'x-bootstrap-token': BOOTSTRAP },
  })
  expect(created.status).toBe(200)
  adminIdRef.id = created.body.id
  adminToken = await adminLogin(admin)
  await register(request, observer)
  observerToken = (await login(request, observer)).access_token
})
afterAll(async () => {
  await server?.close()
})

/** Other users, registered around the victim so its rows share pages with theirs. */
const neighbours: NewUser[] = []
async function neighbour(tag: string): Promise<NewUser> {
  const user = { ...newUser(`nb${tag}`), full_name: `Neighbour ${tag}` }
  await register(request, user)
  neighbours.push(user)
  return user
}

describe('DELETE /admin/user/{user_id}', () => {
  it('before: the victim’s personal data is on disk in the read models (so the search can fail)', async () => {
    // Neighbours before and after, so the victim's rows share pages with other rows.
    for (let i = 0; i < 3; i++) await login(request, await neighbour(`before${i}`))
    victimId = (await register(request, victim)).id
    for (let i = 0; i < 3; i++) await login(request, await neighbour(`after${i}`))

    const failed = await request('POST', '/auth/login', {
      form: { username: victim.username, password: `${victim.password}-wrong` },
      headers: { 'user-agent': FAILED_AGENT },
    })
    expect(failed.status).toBe(401)
    victimTokens = await login(request, victim, { 'user-agent': VICTIM_AGENT })
    const refreshed = await request('POST', '/auth/token-refresh', {
      json: { refresh_token: victimTokens.refresh_token },
    })
    expect(refreshed.status).toBe(200)
    victimTokens = refreshed.body
    expect((await request('GET', '/protected', { token: victimTokens.access_token })).status).toBe(200)

    const sessions = await request('GET', '/auth/sessions', { token: victimTokens.access_token })
    expect(sessions.body[0].user_agent).toBe(VICTIM_AGENT)
    const own = await request('GET', `/auth/verify-user/${victim.username}`, { token: observerToken })
    expect(own.status).toBe(200)
    expect(own.body.full_name).toBe(victim.full_name)

    const key = readWrappedKey(`user-${victimId}`)
    expect(key, 'the victim has a data key before deletion').not.toBeNull()
    wrappedKey = key as Buffer
    expect(wrappedKey.length).toBeGreaterThanOrEqual(32)

    const readModelFiles = filesUnder(dataDir).filter((f) => /read-models\.db(-wal)?$/.test(f))
    const holding = readModelFiles.filter((f) => readFileSync(f).includes(Buffer.from(victim.email)))
    expect(holding.length, 'the email is in read-models.db or its WAL before deletion').toBeGreaterThan(0)
    const found = findOnDisk(victimTraces())
    expect(found.some((f) => f.includes('email'))).toBe(true)
    expect(found.some((f) => f.includes('user_agent'))).toBe(true)
    expect(found.some((f) => f.includes('wrapped_data_key'))).toBe(true)
    expect(
      found.some((f) => f.includes('email_key')),
      'the email claim is on disk',
    ).toBe(true)
    expect(
      found.some((f) => f.includes('username_key')),
      'the username claim is on disk',
    ).toBe(true)
  })

  it('answers a Message; the token, refresh token and login stop working; the id is 404 everywhere', async () => {
    const before = await request('GET', '/admin/audit/checkpoint', { token: adminToken })
    expect(before.status).toBe(200)
    checkpointBefore = before.body.checkpoint
    const reply = await request('DELETE', `/admin/user/${victimId}`, { token: adminToken })
    expect(reply.status, JSON.stringify(reply.body)).toBe(200)
    expect(reply.body).toEqual({ message: expect.any(String) })

    const hello = await request('GET', '/protected', { token: victimTokens.access_token })
    expect(hello.status).toBe(401)
    expect(hello.headers.get('www-authenticate')).toBe('Bearer')
    const refresh = await request('POST', '/auth/token-refresh', {
      json: { refresh_token: victimTokens.refresh_token },
    })
    expect(refresh.status).toBe(401)
    await expectGoneEverywhere(victimId, victim)
    expect(readWrappedKey(`user-${victimId}`)).toBeNull()
  })

  it('keeps the history with personal data "[erased]", and the chains still verify', async () => {
    expectErasedHistory(await history(victimId), victimId)
    await expectChainsVerify()
    // Erasure rewrites nothing: a checkpoint from before the deletion still holds.
    const checked = await request('POST', '/admin/audit/verify-checkpoint', {
      json: { checkpoint: checkpointBefore },
      token: adminToken,
    })
    expect(checked.status).toBe(200)
    expect(checked.body).toMatchObject({ ok: true, first_broken: null })
  })

  it('leaves no trace of the personal data or the data key in any file under DATA_DIR', () => {
    expect(findOnDisk(victimTraces())).toEqual([])
    // The neighbours are untouched.
    expect(findOnDisk({ neighbour: neighbours[0].email }).length).toBeGreaterThan(0)
  })

  it('stays erased across a restart on the same DATA_DIR', async () => {
    await server.stop()
    expect(findOnDisk(victimTraces())).toEqual([])
    server = await startServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP }, dataDir)
    request = api(server.url)
    adminToken = await adminLogin(admin)
    observerToken = (await login(request, observer)).access_token
    await expectGoneEverywhere(victimId, victim)
    expectErasedHistory(await history(victimId), victimId)
    await expectChainsVerify()
    // The neighbours still have their data.
    const n = await request('GET', `/auth/verify-user/${neighbours[0].username}`, { token: adminToken })
    expect(n.status).toBe(200)
    expect(n.body.email).toBe(neighbours[0].email)
    expect(findOnDisk(victimTraces())).toEqual([])
  })

  it('frees the username and email: they can be registered again, as a new account', async () => {
    const reused = { ...newUser('reused'), full_name: 'Reused Person' }
    const oldId = (await register(request, reused)).id
    const oldTokens = await login(request, reused, { 'user-agent': 'ReusedAgent/1.0' })
    expect((await request('DELETE', `/admin/user/${oldId}`, { token: adminToken })).status).toBe(200)
    expect((await request('GET', '/protected', { token: oldTokens.access_token })).status).toBe(401)

    const again = await request('POST', '/auth/register', { json: { ...reused, full_name: 'Second Life' } })
    expect(again.status, JSON.stringify(again.body)).toBe(200)
    expect(again.body.id).not.toBe(oldId)
    expect(again.body).toMatchObject({
      username: reused.username,
      email: reused.email,
      full_name: 'Second Life',
      role: 'user',
    })
    const fresh = await login(request, reused)
    const hello = await request('GET', '/protected', { token: fresh.access_token })
    expect(hello.body.user_id).toBe(again.body.id)
    // The old token stays dead; the old id stays gone; the old history stays erased.
    expect((await request('GET', '/protected', { token: oldTokens.access_token })).status).toBe(401)
    expectNotFound(
      await request('PUT', `/admin/deactivate-user/${oldId}`, { token: adminToken }),
      'old id after reuse',
    )
    const oldHistory = await history(oldId)
    const registered = oldHistory.find((e) => e.type === 'AccountRegistered')
    expect(registered?.data).toMatchObject({ username: '[erased]', email: '[erased]', full_name: '[erased]' })
    expect(JSON.stringify(oldHistory)).not.toContain(reused.email)
    const newHistory = await history(again.body.id)
    expect(newHistory[0].data).toMatchObject({ username: reused.username, email: reused.email })
    expect(newHistory.every((e) => e.stream !== `user-${oldId}`)).toBe(true)
    const found = await request('GET', `/auth/verify-user/${reused.username}`, { token: adminToken })
    expect(found.body.id).toBe(again.body.id)
    // Taken again: a third registration is a conflict.
    expect((await request('POST', '/auth/register', { json: reused })).status).toBe(409)
    await expectChainsVerify()
  })

  it('is 403 for a user token and for the admin on themself', async () => {
    const someone = await neighbour('notallowed')
    const id = (await request('GET', `/admin/users?q=${someone.username}`, { token: adminToken })).body[0].id
    expect((await request('DELETE', `/admin/user/${id}`, { token: observerToken })).status).toBe(403)
    expect((await request('DELETE', `/admin/user/${adminIdRef.id}`, { token: adminToken })).status).toBe(403)
    expect(
      (
        await request('POST', '/auth/login', {
          form: { username: someone.username, password: someone.password },
        })
      ).status,
    ).toBe(200)
  })
})
