/**
 * The auditors' routes: a user's history, the hash-chain check, signed checkpoints, and the
 * proofs that a rewritten stream is caught — by the chain check when the hashes were left
 * alone, and only by an earlier checkpoint when they were recomputed.
 */
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { compactVerify, decodeProtectedHeader, generateKeyPair, importJWK, type JWK } from 'jose'
import { Secret, TOTP } from 'otpauth'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AuditEvent } from '../../src/app/audit.ts'
import {
  type Api,
  api,
  claimsOf,
  login,
  type NewUser,
  newUser,
  register,
  type Tokens,
} from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'
import { rewriteStoredEvent } from '../support/tamper.ts'

const BOOTSTRAP = 'audit-e2e-bootstrap-token'
const AUDIT_EVENT_KEYS = ['actor_id', 'data', 'hash', 'occurred_at', 'revision', 'stream', 'type']

async function bootstrap(request: Api): Promise<{ id: number; token: string; user: NewUser }> {
  const user = newUser('auditadmin')
  const created = await request('POST', '/admin/register', {
    json: user,
    headers: { 'x-bootstrap-token': BOOTSTRAP },
  })
  expect(created.status).toBe(200)
  return { id: created.body.id, token: await adminLogin(request, user), user }
}

async function adminLogin(request: Api, user: NewUser): Promise<string> {
  const reply = await request('POST', '/admin/login', {
    json: { username: user.username, password: user.password },
  })
  expect(reply.status).toBe(200)
  return reply.body.access_token
}

describe('GET /admin/users/{user_id}/history', () => {
  let server: TestServer
  let request: Api
  let admin: { id: number; token: string }
  let user: NewUser
  let userId: number
  let tokens: Tokens
  let refreshed: Tokens
  let totpSecret: string
  let recoveryCodes: string[]
  let events: AuditEvent[]

  beforeAll(async () => {
    server = await startServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP })
    request = api(server.url)
    admin = await bootstrap(request)
    user = { ...newUser('audited'), full_name: 'Audrey Audited' }
    userId = (await register(request, user)).id
    tokens = await login(request, user, { 'user-agent': 'AuditAgent/1.0' })
    const r = await request('POST', '/auth/token-refresh', { json: { refresh_token: tokens.refresh_token } })
    expect(r.status).toBe(200)
    refreshed = r.body
    // 2FA enrolment, so the history has a TOTP secret and recovery-code hashes to hide.
    const setup = await request('GET', '/auth/generate-2fa-code', { token: refreshed.access_token })
    expect(setup.status).toBe(200)
    totpSecret = setup.body.secret
    const code = new TOTP({ secret: Secret.fromBase32(totpSecret) }).generate()
    const enabled = await request('POST', '/auth/enable-2fa', {
      json: { code },
      token: refreshed.access_token,
    })
    expect(enabled.status, JSON.stringify(enabled.body)).toBe(200)
    recoveryCodes = enabled.body.recovery_codes
    const failed = await request('POST', '/auth/login', {
      form: { username: user.username, password: `${user.password}-wrong` },
    })
    expect(failed.status).toBe(401)
    const locked = await request('POST', '/admin/lock', {
      json: { user_id: userId, reason: 'audit check', duration_minutes: 60 },
      token: admin.token,
    })
    expect(locked.status).toBe(200)
    const reply = await request('GET', `/admin/users/${userId}/history`, { token: admin.token })
    expect(reply.status).toBe(200)
    events = reply.body
  })
  afterAll(async () => {
    await server?.close()
  })

  it('lists the account’s and its sessions’ events in commit order, with the AuditEvent fields', async () => {
    for (const e of events) {
      expect(Object.keys(e).sort()).toEqual(AUDIT_EVENT_KEYS)
      expect(e.hash).toMatch(/^[0-9a-f]{64}$/)
      expect(Number.isNaN(Date.parse(e.occurred_at))).toBe(false)
    }
    const sid = claimsOf(tokens.access_token).sid
    const types = events.map((e) => `${e.stream}:${e.type}`)
    expect(types).toEqual([
      `user-${userId}:AccountRegistered`,
      `session-${sid}:SessionStarted`,
      `session-${sid}:SessionRefreshed`,
      `user-${userId}:TotpEnrollmentStarted`,
      `user-${userId}:TotpEnabled`,
      `user-${userId}:LoginFailed`,
      `user-${userId}:AccountLocked`,
      `user-${userId}:SessionsRevoked`,
    ])
    // Commit order is the store's global order; each stream's revisions count up from 0.
    const all = await server.runtime.store.readAll({ limit: 100_000 })
    const mine = all.filter((e) => e.stream_id === `user-${userId}` || e.stream_id === `session-${sid}`)
    expect(events.map((e) => [e.stream, e.revision, e.hash])).toEqual(
      mine.map((e) => [e.stream_id, e.revision, e.metadata.hash]),
    )
    for (const stream of new Set(events.map((e) => e.stream))) {
      const revisions = events.filter((e) => e.stream === stream).map((e) => e.revision)
      expect(revisions).toEqual(revisions.map((_, i) => i))
    }
    const times = events.map((e) => Date.parse(e.occurred_at))
    expect(times).toEqual([...times].sort((a, b) => a - b))
  })

  it('shows personal data decrypted for a live account, and who did what', () => {
    const registered = events[0]
    expect(registered.data).toMatchObject({
      user_id: userId,
      username: user.username,
      email: user.email,
      full_name: 'Audrey Audited',
      role: 'user',
    })
    expect(registered.actor_id).toBeNull()
    const started = events.find((e) => e.type === 'SessionStarted')
    expect(started?.data).toMatchObject({
      user_id: userId,
      ip_address: '127.0.0.1',
      user_agent: 'AuditAgent/1.0',
    })
    expect(started?.actor_id).toBe(userId)
    expect(events.find((e) => e.type === 'LoginFailed')?.data).toMatchObject({
      reason: 'password',
      ip_address: '127.0.0.1',
    })
    const lock = events.find((e) => e.type === 'AccountLocked')
    expect(lock?.data).toMatchObject({ reason: 'admin', note: 'audit check' })
    expect(lock?.actor_id).toBe(admin.id)
    expect(events.find((e) => e.type === 'SessionsRevoked')?.data).toMatchObject({ reason: 'locked' })
  })

  it('never shows a password hash, refresh-token hash, TOTP secret or recovery-code hash', () => {
    const byType = (t: string) => events.find((e) => e.type === t)?.data
    expect(byType('AccountRegistered')?.password_hash).toBe('[redacted]')
    expect(byType('SessionStarted')?.refresh_token_hash).toBe('[redacted]')
    expect(byType('SessionRefreshed')?.refresh_token_hash).toBe('[redacted]')
    expect(byType('TotpEnrollmentStarted')?.secret).toBe('[redacted]')
    expect(byType('TotpEnabled')?.recovery_code_hashes).toBe('[redacted]')
    const text = JSON.stringify(events)
    expect(text).not.toContain('$argon2')
    expect(text).not.toContain(totpSecret)
    expect(text).not.toContain(user.password)
    for (const code of recoveryCodes) expect(text).not.toContain(code)
    // Refresh-token hashes are caught by the shared leak check on every response (support/e2e.ts);
    // here, also no 64-hex value in data at all (hashes only in the `hash` field).
    for (const e of events) expect(JSON.stringify(e.data)).not.toMatch(/[0-9a-f]{64}/)
  })

  it('is readable by an auditor; 403 for users; 401 without a token; 404 for an unknown id', async () => {
    const auditor = newUser('histauditor')
    const auditorId = (await register(request, auditor)).id
    const promoted = await request('PUT', '/admin/user/role', {
      json: { user_id: auditorId, role: 'auditor' },
      token: admin.token,
    })
    expect(promoted.status).toBe(200)
    const auditorToken = (await login(request, auditor)).access_token
    const asAuditor = await request('GET', `/admin/users/${userId}/history`, { token: auditorToken })
    expect(asAuditor.status).toBe(200)
    expect(asAuditor.body).toEqual(events)

    const other = newUser('nosy')
    await register(request, other)
    const otherToken = (await login(request, other)).access_token
    expect((await request('GET', `/admin/users/${userId}/history`, { token: otherToken })).status).toBe(403)
    const ownHistory = await request('GET', `/admin/users/${auditorId}/history`, { token: otherToken })
    expect(ownHistory.status).toBe(403)
    const none = await request('GET', `/admin/users/${userId}/history`)
    expect(none.status).toBe(401)
    const unknown = await request('GET', '/admin/users/876543/history', { token: admin.token })
    expect(unknown.status).toBe(404)
    expect(unknown.body).toEqual({ detail: 'User not found' })
    expect((await request('GET', '/admin/users/abc/history', { token: admin.token })).status).toBe(422)
  })
})

describe('GET /admin/audit/verify, /admin/audit/checkpoint, POST /admin/audit/verify-checkpoint', () => {
  let server: TestServer
  let request: Api
  let dataDir: string
  let admin: { id: number; token: string; user: NewUser }
  let victimId: number
  let bystanderId: number

  beforeAll(async () => {
    server = await startServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP })
    dataDir = server.dataDir
    request = api(server.url)
    admin = await bootstrap(request)
    const victim = newUser('tampered')
    victimId = (await register(request, victim)).id
    await login(request, victim)
    // Later events in the victim's stream, so the recomputation has a tail to redo.
    for (const path of [`/admin/deactivate-user/${victimId}`, `/admin/activate-user/${victimId}`])
      expect((await request('PUT', path, { token: admin.token })).status).toBe(200)
    const bystander = newUser('bystander')
    bystanderId = (await register(request, bystander)).id
    await login(request, bystander)
  })
  afterAll(async () => {
    await server?.close()
  })

  const verify = () => request('GET', '/admin/audit/verify', { token: admin.token })
  const checkpoint = async (): Promise<string> => {
    const reply = await request('GET', '/admin/audit/checkpoint', { token: admin.token })
    expect(reply.status).toBe(200)
    expect(Object.keys(reply.body)).toEqual(['checkpoint'])
    return reply.body.checkpoint
  }
  const verifyCheckpoint = (jws: unknown) =>
    request('POST', '/admin/audit/verify-checkpoint', { json: { checkpoint: jws }, token: admin.token })

  async function restart(): Promise<void> {
    await server.stop()
    server = await startServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP }, dataDir)
    request = api(server.url)
    admin.token = await adminLogin(request, admin.user)
  }

  it('verify: every chain holds, with counts of streams and events', async () => {
    const reply = await verify()
    expect(reply.status).toBe(200)
    expect(Object.keys(reply.body).sort()).toEqual([
      'events_checked',
      'first_broken',
      'ok',
      'streams_checked',
    ])
    const all = await server.runtime.store.readAll({ limit: 100_000 })
    expect(reply.body).toEqual({
      ok: true,
      streams_checked: new Set(all.map((e) => e.stream_id)).size,
      events_checked: all.length,
      first_broken: null,
    })
  })

  it('checkpoint: a JWS that verifies with the JWKS key of its kid, over every stream’s head', async () => {
    const jws = await checkpoint()
    const header = decodeProtectedHeader(jws)
    expect(header.alg).toBe('EdDSA')
    const jwks = await request('GET', '/.well-known/jwks.json')
    const jwk = (jwks.body.keys as JWK[]).find((k) => k.kid === header.kid)
    expect(jwk, `kid ${header.kid} in the JWKS`).toBeDefined()
    const key = await importJWK(jwk as JWK, 'EdDSA')
    const { payload } = await compactVerify(jws, key)
    const body = JSON.parse(new TextDecoder().decode(payload))
    expect(Number.isNaN(Date.parse(body.issued_at))).toBe(false)
    const all = await server.runtime.store.readAll({ limit: 100_000 })
    const heads: Record<string, { revision: number; hash: string }> = {}
    for (const e of all) heads[e.stream_id] = { revision: e.revision, hash: e.metadata.hash }
    expect(body.streams).toEqual(heads)
    const history = (await request('GET', `/admin/users/${victimId}/history`, { token: admin.token })).body
    const last = history.filter((e: AuditEvent) => e.stream === `user-${victimId}`).at(-1)
    expect(body.streams[`user-${victimId}`]).toEqual({ revision: last.revision, hash: last.hash })

    // It does not verify under another Ed25519 key.
    const stranger = await generateKeyPair('EdDSA')
    await expect(compactVerify(jws, stranger.publicKey)).rejects.toThrow()
  })

  it('verify-checkpoint: a fresh checkpoint checks out', async () => {
    const jws = await checkpoint()
    const reply = await verifyCheckpoint(jws)
    expect(reply.status).toBe(200)
    const streams = Object.keys(JSON.parse(Buffer.from(jws.split('.')[1], 'base64url').toString()).streams)
    expect(reply.body).toEqual({ ok: true, streams_checked: streams.length, first_broken: null })
    // Later events do not break an earlier checkpoint.
    const later = newUser('later')
    await register(request, later)
    await login(request, later)
    expect((await verifyCheckpoint(jws)).body.ok).toBe(true)
  })

  it('verify-checkpoint: 400 for a tampered, unsigned or foreign string; 422 without one', async () => {
    const jws = await checkpoint()
    const [h, p, s] = jws.split('.')
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString())
    payload.streams[`user-${victimId}`].hash = '0'.repeat(64)
    const forgedPayload = Buffer.from(JSON.stringify(payload)).toString('base64url')
    const unsignedHeader = Buffer.from(JSON.stringify({ alg: 'none', typ: 'checkpoint+jws' })).toString(
      'base64url',
    )
    const flipped = `${s.slice(0, -2)}${s.at(-2) === 'A' ? 'B' : 'A'}${s.at(-1)}`
    const accessToken = admin.token
    for (const bad of [
      `${h}.${forgedPayload}.${s}`,
      `${unsignedHeader}.${p}.`,
      `${unsignedHeader}.${forgedPayload}.`,
      `${h}.${p}.${flipped}`,
      `${h}.${p}`,
      'not-a-checkpoint',
      accessToken,
    ]) {
      const reply = await verifyCheckpoint(bad)
      expect(reply.status, bad.slice(0, 60)).toBe(400)
      expect(reply.body).toEqual({ detail: expect.any(String) })
    }
    expect((await verifyCheckpoint('')).status).toBe(422)
    expect(
      (await request('POST', '/admin/audit/verify-checkpoint', { json: {}, token: admin.token })).status,
    ).toBe(422)
  })

  it('is open to auditors, 403 for users, 401 without a token', async () => {
    const u = newUser('auditroutes')
    const id = (await register(request, u)).id
    const userToken = (await login(request, u)).access_token
    const jws = await checkpoint()
    for (const [method, path, json] of [
      ['GET', '/admin/audit/verify', undefined],
      ['GET', '/admin/audit/checkpoint', undefined],
      ['POST', '/admin/audit/verify-checkpoint', { checkpoint: jws }],
    ] as const) {
      expect((await request(method, path, { json, token: userToken })).status, path).toBe(403)
      expect((await request(method, path, { json })).status, path).toBe(401)
    }
    expect(
      (
        await request('PUT', '/admin/user/role', {
          json: { user_id: id, role: 'auditor' },
          token: admin.token,
        })
      ).status,
    ).toBe(200)
    const auditorToken = (await login(request, u)).access_token
    expect((await request('GET', '/admin/audit/verify', { token: auditorToken })).body.ok).toBe(true)
    const own = await request('GET', '/admin/audit/checkpoint', { token: auditorToken })
    expect(own.status).toBe(200)
    const checked = await request('POST', '/admin/audit/verify-checkpoint', {
      json: { checkpoint: own.body.checkpoint },
      token: auditorToken,
    })
    expect(checked.body.ok).toBe(true)
  })

  it('a stream rewritten with recomputed hashes fools the chain check, but not an earlier checkpoint', async () => {
    const before = await checkpoint()
    const oldHead = JSON.parse(Buffer.from(before.split('.')[1], 'base64url').toString()).streams[
      `user-${victimId}`
    ]
    await server.stop()
    rewriteStoredEvent(
      dataDir,
      `user-${victimId}`,
      'AccountRegistered',
      '"role":"user"',
      '"role":"admin"',
      true,
    )
    await restart()

    const history = (await request('GET', `/admin/users/${victimId}/history`, { token: admin.token })).body
    expect(history[0].data.role).toBe('admin') // the rewrite took
    const chains = await verify()
    expect(chains.status).toBe(200)
    expect(chains.body).toMatchObject({ ok: true, first_broken: null }) // fooled

    const reply = await verifyCheckpoint(before)
    expect(reply.status).toBe(200)
    expect(reply.body.ok).toBe(false)
    expect(reply.body.first_broken).toEqual({
      stream: `user-${victimId}`,
      revision: oldHead.revision,
      reason: expect.any(String),
    })
    // A checkpoint taken after the rewrite vouches only for the rewritten history.
    expect((await verifyCheckpoint(await checkpoint())).body.ok).toBe(true)
  })

  it('a stream cut short (its last event removed, head moved back) passes the chain check but not a checkpoint', async () => {
    const u = newUser('truncated')
    const id = (await register(request, u)).id
    expect((await request('POST', '/admin/lock', { json: { user_id: id }, token: admin.token })).status).toBe(
      200,
    )
    // Later events elsewhere, so the removed ones are not the newest in the store (SQLite would
    // hand their positions out again, behind the read models' checkpoint).
    await register(request, newUser('afterwards'))
    const before = await checkpoint()
    const head = JSON.parse(Buffer.from(before.split('.')[1], 'base64url').toString()).streams[`user-${id}`]
    await server.stop()
    const db = new DatabaseSync(join(dataDir, 'events.db'))
    try {
      // Drop the lock and the revocation; the head goes back to the registration.
      db.prepare('DELETE FROM events WHERE stream_id = ? AND revision > 0').run(`user-${id}`)
      const first = db
        .prepare('SELECT metadata FROM events WHERE stream_id = ? AND revision = 0')
        .get(`user-${id}`) as {
        metadata: string
      }
      db.prepare('UPDATE streams SET revision = 0, head_hash = ? WHERE stream_id = ?').run(
        JSON.parse(first.metadata).hash,
        `user-${id}`,
      )
    } finally {
      db.close()
    }
    await restart()
    expect((await verify()).body.ok).toBe(true)
    const reply = await verifyCheckpoint(before)
    expect(reply.body.ok).toBe(false)
    expect(reply.body.first_broken).toEqual({
      stream: `user-${id}`,
      revision: head.revision,
      reason: 'missing_events',
    })
  })

  it('a rewrite without recomputed hashes is caught by the chain check, naming stream and revision', async () => {
    const before = await checkpoint()
    await server.stop()
    const revision = rewriteStoredEvent(
      dataDir,
      `user-${bystanderId}`,
      'AccountRegistered',
      '"role":"user"',
      '"role":"admin"',
      false,
    )
    await restart()
    const chains = await verify()
    expect(chains.status).toBe(200)
    expect(chains.body.ok).toBe(false)
    expect(chains.body.first_broken).toEqual({
      stream_id: `user-${bystanderId}`,
      revision,
      reason: 'hash_mismatch',
    })
    const reply = await verifyCheckpoint(before)
    expect(reply.body.ok).toBe(false)
    expect(reply.body.first_broken).toMatchObject({ stream: `user-${bystanderId}`, revision })
  })
})
