/**
 * The auditors' routes: a user's history, the hash-chain check, signed checkpoints, and the
 * proofs that a rewritten stream is caught — by the chain check when the hashes were left
 * alone, and only by an earlier checkpoint when they were recomputed.
 */

import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { CompactSign, compactVerify, decodeProtectedHeader, generateKeyPair, importJWK, type JWK } from 'jose'
import { Secret, TOTP } from 'otpauth'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { verifyConsistency, verifyInclusion, verifyTreeHead } from '../../scripts/verify-proof.ts'
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
import { referenceRoot } from '../support/merkle-reference.ts'
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
      `user-${userId}:EmailVerificationRequested`,
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

const payloadOf = (jws: string) => JSON.parse(Buffer.from(jws.split('.')[1], 'base64url').toString())

/** A server with an admin, a victim with a few events, and a bystander. */
async function auditedServer(options: { verifyOffLoopAbove?: number } = {}) {
  const server = await startServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP }, undefined, options)
  const t = {
    server,
    dataDir: server.dataDir,
    request: api(server.url),
    admin: { id: 0, token: '', user: newUser('x') },
    victimId: 0,
    bystanderId: 0,
  }
  t.admin = await bootstrap(t.request)
  const victim = newUser('tampered')
  t.victimId = (await register(t.request, victim)).id
  await login(t.request, victim)
  for (const path of [`/admin/deactivate-user/${t.victimId}`, `/admin/activate-user/${t.victimId}`])
    expect((await t.request('PUT', path, { token: t.admin.token })).status).toBe(200)
  const bystander = newUser('bystander')
  t.bystanderId = (await register(t.request, bystander)).id
  await login(t.request, bystander)
  return {
    get server() {
      return t.server
    },
    get request() {
      return t.request
    },
    get runtime() {
      return t.server.runtime
    },
    dataDir: t.dataDir,
    admin: t.admin,
    victimId: t.victimId,
    bystanderId: t.bystanderId,
    verify: (full = false) =>
      t.request('GET', `/admin/audit/verify${full ? '?full=true' : ''}`, { token: t.admin.token }),
    async checkpoint(): Promise<string> {
      const reply = await t.request('GET', '/admin/audit/checkpoint', { token: t.admin.token })
      expect(reply.status).toBe(200)
      expect(Object.keys(reply.body)).toEqual(['checkpoint'])
      return reply.body.checkpoint
    },
    verifyCheckpoint: (jws: unknown) =>
      t.request('POST', '/admin/audit/verify-checkpoint', {
        json: { checkpoint: jws },
        token: t.admin.token,
      }),
    /** Stops the server, lets `tamper` edit events.db, starts it again on the same DATA_DIR. */
    async tamper(edit: (db: DatabaseSync) => void): Promise<void> {
      await t.server.stop()
      const db = new DatabaseSync(join(t.dataDir, 'events.db'))
      try {
        edit(db)
      } finally {
        db.close()
      }
      t.server = await startServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP }, t.dataDir, options)
      t.request = api(t.server.url)
      t.admin.token = await adminLogin(t.request, t.admin.user)
    },
    async close() {
      await t.server.close()
    },
  }
}

describe('the transparency log: tree heads, proofs, verify', () => {
  let t: Awaited<ReturnType<typeof auditedServer>>
  beforeAll(async () => {
    t = await auditedServer()
  })
  afterAll(async () => {
    await t?.close()
  })

  it('verify: walks every event against its chain and the tree, then only what is new', async () => {
    const reply = await t.verify()
    expect(reply.status).toBe(200)
    const all = await t.runtime.store.readAll({ limit: 100_000 })
    expect(reply.body).toEqual({
      ok: true,
      streams_checked: new Set(all.map((e) => e.stream_id)).size,
      events_checked: all.length,
      tree_size: all.length,
      from_leaf: 0,
      first_broken: null,
    })
    // Incremental: the next verify starts at the head the last one reached.
    await register(t.request, newUser('later'))
    const next = (await t.verify()).body
    const now = await t.runtime.store.readAll({ limit: 100_000 })
    expect(next).toMatchObject({ ok: true, from_leaf: all.length, events_checked: now.length - all.length })
    expect((await t.verify(true)).body).toMatchObject({ ok: true, from_leaf: 0, events_checked: now.length })
  })

  it('checkpoint: a small signed tree head over every event, verifiable with the JWKS alone', async () => {
    const jws = await t.checkpoint()
    expect(jws.length).toBeLessThan(600)
    const header = decodeProtectedHeader(jws)
    expect(header).toMatchObject({ alg: 'EdDSA', typ: 'checkpoint+jws' })
    const jwks = (await t.request('GET', '/.well-known/jwks.json')).body
    const jwk = (jwks.keys as JWK[]).find((k) => k.kid === header.kid)
    expect(jwk, `kid ${header.kid} in the JWKS`).toBeDefined()
    await compactVerify(jws, await importJWK(jwk as JWK, 'EdDSA'))
    const head = verifyTreeHead(jws, jwks)
    expect(head).not.toBeNull()
    expect(Object.keys(payloadOf(jws)).sort()).toEqual(['issued_at', 'root_hash', 'tree_size'])
    const all = await t.runtime.store.readAll({ limit: 100_000 })
    expect(head?.tree_size).toBe(all.length)
    expect(head?.root_hash).toBe(referenceRoot(all.map((e) => e.metadata.hash)))
    const stranger = await generateKeyPair('EdDSA')
    await expect(compactVerify(jws, stranger.publicKey)).rejects.toThrow()
  })

  it('inclusion proofs, by stream and revision or by position, check out against the head', async () => {
    const jws = await t.checkpoint()
    const head = payloadOf(jws)
    const account = await t.runtime.store.readStream(`user-${t.victimId}`)
    for (const event of account) {
      const byStream = await t.request(
        'GET',
        `/admin/audit/proof/inclusion?stream=user-${t.victimId}&revision=${event.revision}&tree_size=${head.tree_size}`,
        { token: t.admin.token },
      )
      expect(byStream.status, JSON.stringify(byStream.body)).toBe(200)
      expect(Object.keys(byStream.body).sort()).toEqual([
        'audit_path',
        'leaf_hash',
        'leaf_index',
        'tree_size',
      ])
      expect(verifyInclusion({ ...byStream.body, event_hash: event.metadata.hash }, head.root_hash)).toBe(
        true,
      )
      const byPosition = await t.request(
        'GET',
        `/admin/audit/proof/inclusion?position=${event.position}&tree_size=${head.tree_size}`,
        { token: t.admin.token },
      )
      expect(byPosition.body).toEqual(byStream.body)
      // Not a proof for another event.
      expect(
        verifyInclusion({ ...byStream.body, leaf_index: byStream.body.leaf_index + 1 }, head.root_hash),
      ).toBe(false)
    }
    for (const query of [
      'stream=user-999999&revision=0',
      'position=99999999',
      `stream=user-${t.victimId}`,
      '',
    ]) {
      const reply = await t.request('GET', `/admin/audit/proof/inclusion?${query}`, { token: t.admin.token })
      expect([404, 422], query).toContain(reply.status)
    }
  })

  it('consistency proofs: a later head extends an earlier one', async () => {
    const first = payloadOf(await t.checkpoint())
    await register(t.request, newUser('grows'))
    const second = payloadOf(await t.checkpoint())
    expect(second.tree_size).toBeGreaterThan(first.tree_size)
    const reply = await t.request(
      'GET',
      `/admin/audit/proof/consistency?first=${first.tree_size}&second=${second.tree_size}`,
      { token: t.admin.token },
    )
    expect(reply.status).toBe(200)
    expect(verifyConsistency(reply.body, first.root_hash, second.root_hash)).toBe(true)
    expect(verifyConsistency(reply.body, first.root_hash, first.root_hash)).toBe(false)
    const backwards = await t.request(
      'GET',
      `/admin/audit/proof/consistency?first=${second.tree_size}&second=1`,
      {
        token: t.admin.token,
      },
    )
    expect(backwards.status).toBe(400)
  })

  it('history?proof=true: every event with its inclusion proof against the head in X-Tree-Head', async () => {
    const reply = await t.request('GET', `/admin/users/${t.victimId}/history?proof=true`, {
      token: t.admin.token,
    })
    expect(reply.status).toBe(200)
    const jwks = (await t.request('GET', '/.well-known/jwks.json')).body
    const head = verifyTreeHead(reply.headers.get('x-tree-head') ?? '', jwks)
    expect(head).not.toBeNull()
    expect(reply.body.length).toBeGreaterThan(3)
    for (const event of reply.body) {
      expect(event.inclusion.tree_size).toBe(head?.tree_size)
      expect(verifyInclusion({ ...event.inclusion, event_hash: event.hash }, head?.root_hash ?? '')).toBe(
        true,
      )
    }
    const plain = await t.request('GET', `/admin/users/${t.victimId}/history`, { token: t.admin.token })
    expect(plain.headers.get('x-tree-head')).toBeNull()
    expect(plain.body[0].inclusion).toBeUndefined()
  })

  it('verify-checkpoint: a tree head checks out now and after more events; a first-release checkpoint still verifies', async () => {
    const jws = await t.checkpoint()
    const reply = await t.verifyCheckpoint(jws)
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ ok: true, tree_size: payloadOf(jws).tree_size, first_broken: null })
    await register(t.request, newUser('afterhead'))
    expect((await t.verifyCheckpoint(jws)).body.ok).toBe(true)

    const streams: Record<string, { revision: number; hash: string }> = {}
    for (const e of await t.runtime.store.readAll({ limit: 100_000 }))
      streams[e.stream_id] = { revision: e.revision, hash: e.metadata.hash }
    const old = await t.runtime.tokens.signCheckpoint({ issued_at: new Date().toISOString(), streams })
    expect((await t.verifyCheckpoint(old)).body).toEqual({
      ok: true,
      streams_checked: Object.keys(streams).length,
      first_broken: null,
    })
  })

  it('verify-checkpoint: 400 for a tampered, unsigned, foreign or re-signed head; 422 without one', async () => {
    const jws = await t.checkpoint()
    const [h, p, s] = jws.split('.')
    const payload = payloadOf(jws)
    const forgedPayload = Buffer.from(JSON.stringify({ ...payload, root_hash: '0'.repeat(64) })).toString(
      'base64url',
    )
    const unsignedHeader = Buffer.from(JSON.stringify({ alg: 'none', typ: 'checkpoint+jws' })).toString(
      'base64url',
    )
    const flipped = `${s.slice(0, -2)}${s.at(-2) === 'A' ? 'B' : 'A'}${s.at(-1)}`
    // Re-signed with another key under the same kid, as someone who rewrote the log would.
    const stranger = await generateKeyPair('EdDSA')
    const resigned = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader(decodeProtectedHeader(jws) as { alg: string })
      .sign(stranger.privateKey)
    for (const bad of [
      `${h}.${forgedPayload}.${s}`,
      `${unsignedHeader}.${p}.`,
      `${h}.${p}.${flipped}`,
      `${h}.${p}`,
      resigned,
      'not-a-checkpoint',
      t.admin.token,
    ]) {
      const reply = await t.verifyCheckpoint(bad)
      expect(reply.status, bad.slice(0, 60)).toBe(400)
      expect(reply.body).toEqual({ detail: expect.any(String) })
    }
    expect((await t.verifyCheckpoint('')).status).toBe(422)
  })

  it('is open to auditors, 403 for users, 401 without a token', async () => {
    const u = newUser('auditroutes')
    const id = (await register(t.request, u)).id
    const userToken = (await login(t.request, u)).access_token
    const jws = await t.checkpoint()
    for (const [method, path, json] of [
      ['GET', '/admin/audit/verify', undefined],
      ['GET', '/admin/audit/checkpoint', undefined],
      ['GET', '/admin/audit/proof/inclusion?position=1', undefined],
      ['GET', '/admin/audit/proof/consistency?first=1&second=2', undefined],
      ['POST', '/admin/audit/verify-checkpoint', { checkpoint: jws }],
    ] as const) {
      expect((await t.request(method, path, { json, token: userToken })).status, path).toBe(403)
      expect((await t.request(method, path, { json })).status, path).toBe(401)
    }
    const role = await t.request('PUT', '/admin/user/role', {
      json: { user_id: id, role: 'auditor' },
      token: t.admin.token,
    })
    expect(role.status).toBe(200)
    const auditorToken = (await login(t.request, u)).access_token
    expect((await t.request('GET', '/admin/audit/verify', { token: auditorToken })).body.ok).toBe(true)
    const own = await t.request('GET', '/admin/audit/checkpoint', { token: auditorToken })
    const checked = await t.request('POST', '/admin/audit/verify-checkpoint', {
      json: { checkpoint: own.body.checkpoint },
      token: auditorToken,
    })
    expect(checked.body.ok).toBe(true)
  })
})

describe('tampering with the log is caught, at the first position that differs', () => {
  let t: Awaited<ReturnType<typeof auditedServer>>
  beforeEach(async () => {
    t = await auditedServer()
    expect((await t.verify()).body.ok).toBe(true)
  })
  afterEach(async () => {
    await t?.close()
  })

  const positionOf = async (stream: string, revision: number) =>
    String((await t.runtime.store.readStream(stream))[revision].position)

  it('an event rewritten with recomputed hashes: verify finds it; a rebuilt tree no longer extends the old head', async () => {
    const before = await t.checkpoint()
    const stream = `user-${t.victimId}`
    const position = await positionOf(stream, 0)
    await t.server.stop()
    rewriteStoredEvent(t.dataDir, stream, 'AccountRegistered', '"role":"user"', '"role":"admin"', true)
    await t.tamper(() => {})
    const history = (await t.request('GET', `/admin/users/${t.victimId}/history`, { token: t.admin.token }))
      .body
    expect(history[0].data.role).toBe('admin') // the rewrite took
    expect((await t.verify(true)).body.first_broken).toEqual({
      stream_id: stream,
      revision: 0,
      position,
      leaf_index: expect.any(Number),
      reason: 'differs_from_tree',
    })
    // The attacker rebuilds the read models too, so the tree matches the rewritten log...
    await t.runtime.runner.rebuild()
    const afterRebuild = (await t.verify()).body
    expect(afterRebuild.ok).toBe(false)
    expect(afterRebuild.first_broken.reason).toBe('tree_differs_from_verified_head')
    // ...and the head signed before the rewrite is not extended by the current log.
    const reply = await t.verifyCheckpoint(before)
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({
      ok: false,
      tree_size: payloadOf(before).tree_size,
      first_broken: { tree_size: payloadOf(before).tree_size, reason: 'differs_from_tree_head' },
    })
  })

  it('a rewrite without recomputed hashes: the chain check names stream, revision and position', async () => {
    const stream = `user-${t.bystanderId}`
    const position = await positionOf(stream, 0)
    await t.server.stop()
    const revision = rewriteStoredEvent(
      t.dataDir,
      stream,
      'AccountRegistered',
      '"role":"user"',
      '"role":"admin"',
      false,
    )
    await t.tamper(() => {})
    // Already verified history is re-checked with full=true (the default covers what is new).
    expect((await t.verify()).body.ok).toBe(true)
    expect((await t.verify(true)).body.first_broken).toMatchObject({
      stream_id: stream,
      revision,
      position,
      reason: 'hash_mismatch',
    })
  })

  it('a whole stream written after a tree head, deleted: verify finds its first event; a later head is not extended', async () => {
    const earlier = await t.checkpoint()
    const newcomer = newUser('deleted')
    const id = (await register(t.request, newcomer)).id
    await login(t.request, newcomer)
    const later = await t.checkpoint()
    const position = await positionOf(`user-${id}`, 0)
    await t.tamper((db) => db.prepare('DELETE FROM events WHERE stream_id = ?').run(`user-${id}`))
    expect((await t.verify(true)).body.first_broken).toMatchObject({
      stream_id: `user-${id}`,
      revision: 0,
      position,
      reason: 'missing_events',
    })
    await t.runtime.runner.rebuild()
    expect((await t.verifyCheckpoint(earlier)).body.ok).toBe(true) // it was written after this one
    expect((await t.verifyCheckpoint(later)).body).toMatchObject({
      ok: false,
      first_broken: { reason: 'differs_from_tree_head' },
    })
  })

  it('the log cut short: verify names the first missing event', async () => {
    const all = await t.runtime.store.readAll({ limit: 100_000 })
    const cut = all[all.length - 3]
    await t.tamper((db) => db.prepare('DELETE FROM events WHERE position >= ?').run(Number(cut.position)))
    expect((await t.verify(true)).body.first_broken).toEqual({
      stream_id: cut.stream_id,
      revision: cut.revision,
      position: String(cut.position),
      leaf_index: all.length - 3,
      reason: 'missing_events',
    })
  })

  it('two events swapped in the global order: verify names the first of them', async () => {
    const account = await t.runtime.store.readStream(`user-${t.victimId}`)
    const bystander = await t.runtime.store.readStream(`user-${t.bystanderId}`)
    const [a, b] = [account[1], bystander[0]]
    await t.tamper((db) => {
      const row = (p: bigint) =>
        db
          .prepare(
            'SELECT stream_id, revision, event_id, type, data, metadata FROM events WHERE position = ?',
          )
          .get(Number(p)) as Record<string, string | number>
      const [ra, rb] = [row(a.position), row(b.position)]
      const put = db.prepare(
        'UPDATE events SET stream_id = ?, revision = ?, event_id = ?, type = ?, data = ?, metadata = ? WHERE position = ?',
      )
      db.exec('BEGIN')
      db.prepare('UPDATE events SET stream_id = ?, event_id = ? WHERE position IN (?, ?)').run(
        'swap',
        'swap',
        -1,
        -1,
      )
      db.prepare(
        "UPDATE events SET stream_id = 'tmp-' || position, event_id = 'tmp-' || position WHERE position IN (?, ?)",
      ).run(Number(a.position), Number(b.position))
      put.run(rb.stream_id, rb.revision, rb.event_id, rb.type, rb.data, rb.metadata, Number(a.position))
      put.run(ra.stream_id, ra.revision, ra.event_id, ra.type, ra.data, ra.metadata, Number(b.position))
      db.exec('COMMIT')
    })
    expect((await t.verify(true)).body.first_broken).toMatchObject({
      position: String(a.position),
      reason: 'differs_from_tree',
    })
  })
})

describe('a long verify runs in a worker thread, with the same findings', () => {
  it('walks every event there, then finds a rewrite at the same place as on the loop', async () => {
    const onLoop = await auditedServer()
    const inWorker = await auditedServer({ verifyOffLoopAbove: 0 })
    try {
      const loopReply = (await onLoop.verify(true)).body
      const workerReply = (await inWorker.verify(true)).body
      expect(workerReply).toMatchObject({ ok: true, from_leaf: 0, first_broken: null })
      expect(workerReply.events_checked).toBe(workerReply.tree_size)
      expect(workerReply.streams_checked).toBe(loopReply.streams_checked)

      const stream = `user-${inWorker.bystanderId}`
      const position = String((await inWorker.runtime.store.readStream(stream))[0].position)
      await inWorker.server.stop()
      rewriteStoredEvent(
        inWorker.dataDir,
        stream,
        'AccountRegistered',
        '"role":"user"',
        '"role":"admin"',
        false,
      )
      await inWorker.tamper(() => {})
      expect((await inWorker.verify(true)).body.first_broken).toEqual({
        stream_id: stream,
        revision: 0,
        position,
        leaf_index: expect.any(Number),
        reason: 'hash_mismatch',
      })
    } finally {
      await onLoop.close()
      await inWorker.close()
    }
  })
})
