import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Api,
  api,
  claimsOf,
  ISO_UTC,
  login,
  type NewUser,
  newUser,
  register,
  type Tokens,
} from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

const BOOTSTRAP = 'activity-e2e-bootstrap-token'
const ACTIVITY_KEYS = ['ip_address', 'occurred_at', 'session_id', 'type', 'user_agent']

type Activity = {
  type: string
  occurred_at: string
  ip_address: string | null
  user_agent: string | null
  session_id: number | null
}

let server: TestServer
let request: Api
let adminToken: string
let adminId: number

const sid = (tokens: Tokens): number => Number(claimsOf(tokens.access_token).sid)

async function activity(token: string, query = ''): Promise<Activity[]> {
  const reply = await request('GET', `/auth/activity${query}`, { token })
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  expect(Array.isArray(reply.body)).toBe(true)
  return reply.body
}

beforeAll(async () => {
  server = await startServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP })
  request = api(server.url)
  const admin = newUser('actadmin')
  const created = await request('POST', '/admin/register', {
    json: admin,
    headers: { 'x-bootstrap-token': BOOTSTRAP },
  })
  expect(created.status).toBe(200)
  adminId = created.body.id
  const reply = await request('POST', '/admin/login', {
    json: { username: admin.username, password: admin.password },
  })
  adminToken = reply.body.access_token
})
afterAll(async () => {
  await server?.close()
})

describe('GET /auth/activity', () => {
  let user: NewUser
  let first: Tokens
  let reused: Tokens
  let revokedSession: Tokens
  let last: Tokens
  let events: Activity[]

  beforeAll(async () => {
    user = newUser('active')
    const userId = (await register(request, user)).id

    first = await login(request, user, { 'user-agent': 'ActivityAgent/1.0' })
    const failed = await request('POST', '/auth/login', {
      form: { username: user.username, password: `${user.password}-wrong` },
      headers: { 'user-agent': 'ActivityFailing/1.0' },
    })
    expect(failed.status).toBe(401)
    // The failure is recorded just after its answer (so timing cannot tell known users apart).
    await server.runtime.afterAnswer.settled()

    // Refresh-token reuse: rotate twice, then present the first rotated-out token again (the
    // token rotated out last would be within the two-tabs grace period).
    reused = await login(request, user, { 'user-agent': 'ActivityReuse/1.0' })
    let rotated = await request('POST', '/auth/token-refresh', {
      json: { refresh_token: reused.refresh_token },
    })
    expect(rotated.status).toBe(200)
    rotated = await request('POST', '/auth/token-refresh', {
      json: { refresh_token: rotated.body.refresh_token },
    })
    expect(rotated.status).toBe(200)
    const replay = await request('POST', '/auth/token-refresh', {
      json: { refresh_token: reused.refresh_token },
    })
    expect(replay.status).toBe(401)

    // A session revoked by the user from another session.
    revokedSession = await login(request, user, { 'user-agent': 'ActivityRevoked/1.0' })
    const revoke = await request('DELETE', `/auth/sessions/${sid(revokedSession)}`, {
      token: first.access_token,
    })
    expect(revoke.status).toBe(200)

    // A password change (it also revokes the other sessions).
    const newPassword = `${user.password}-changed`
    const changed = await request('PUT', '/auth/profile', {
      json: { password: newPassword, current_password: user.password },
      token: first.access_token,
    })
    expect(changed.status, JSON.stringify(changed.body)).toBe(200)
    user = { ...user, password: newPassword }

    // An admin lock and unlock.
    for (const [path, json] of [
      ['/admin/lock', { user_id: userId, reason: 'activity check', duration_minutes: 5 }],
      ['/admin/unlock', { user_id: userId }],
    ] as const) {
      expect((await request('POST', path, { json, token: adminToken })).status).toBe(200)
    }

    last = await login(request, user, { 'user-agent': 'ActivityLast/1.0' })
    events = await activity(last.access_token)
  })

  it('lists the caller’s security events newest first, with the ActivityEvent fields', () => {
    for (const e of events) {
      expect(Object.keys(e).sort()).toEqual(ACTIVITY_KEYS)
      expect(e.occurred_at).toMatch(ISO_UTC)
    }
    const times = events.map((e) => Date.parse(e.occurred_at))
    expect(times).toEqual([...times].sort((a, b) => b - a))
    expect(events.map((e) => e.type)).toEqual([
      'login',
      'unlocked',
      'sessions_revoked',
      'locked',
      'sessions_revoked',
      'password_changed',
      'session_revoked',
      'login',
      'refresh_token_reuse',
      'login',
      'login_failed',
      'login',
    ])
  })

  it('carries ip_address, user_agent and session_id where they apply', () => {
    const [newest, unlocked, , locked, , password, revoked, revokedLogin, reuse, reuseLogin, failed, oldest] =
      events
    expect(newest).toMatchObject({
      ip_address: '127.0.0.1',
      user_agent: 'ActivityLast/1.0',
      session_id: sid(last),
    })
    expect(oldest).toMatchObject({
      ip_address: '127.0.0.1',
      user_agent: 'ActivityAgent/1.0',
      session_id: sid(first),
    })
    expect(failed).toMatchObject({
      ip_address: '127.0.0.1',
      user_agent: 'ActivityFailing/1.0',
      session_id: null,
    })
    expect(reuseLogin).toMatchObject({ user_agent: 'ActivityReuse/1.0', session_id: sid(reused) })
    expect(reuse).toMatchObject({ type: 'refresh_token_reuse', session_id: sid(reused) })
    expect(revokedLogin).toMatchObject({ user_agent: 'ActivityRevoked/1.0', session_id: sid(revokedSession) })
    expect(revoked).toMatchObject({ type: 'session_revoked', session_id: sid(revokedSession) })
    for (const e of [password, locked, unlocked]) expect(e.session_id).toBeNull()
  })

  it('honours limit: the newest n; default 50; 422 above 500 or below 1', async () => {
    const three = await activity(last.access_token, '?limit=3')
    expect(three).toEqual(events.slice(0, 3))
    expect(await activity(last.access_token, '?limit=1')).toEqual(events.slice(0, 1))
    expect(await activity(last.access_token, '?limit=500')).toEqual(events)
    for (const bad of ['501', '0', '-1', 'ten', '2.5']) {
      const reply = await request('GET', `/auth/activity?limit=${bad}`, { token: last.access_token })
      expect(reply.status, `limit=${bad}`).toBe(422)
      expect(reply.body.detail[0].loc).toEqual(['query', 'limit'])
    }
  })

  it('is 401 without a token and for a revoked session’s token', async () => {
    const none = await request('GET', '/auth/activity')
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).toBe('Bearer')
    expect((await request('GET', '/auth/activity', { token: first.access_token })).status).toBe(401)
  })

  it('shows only the caller’s own events', async () => {
    const other = newUser('otheractive')
    await register(request, other)
    const otherTokens = await login(request, other, { 'user-agent': 'OtherAgent/1.0' })
    const otherFailed = await request('POST', '/auth/login', {
      form: { username: other.username, password: 'definitely-wrong-pw' },
    })
    expect(otherFailed.status).toBe(401)
    const theirs = await activity(otherTokens.access_token)
    expect(theirs.map((e) => e.type)).toEqual(['login_failed', 'login'])
    expect(theirs[1]).toMatchObject({ user_agent: 'OtherAgent/1.0', session_id: sid(otherTokens) })

    const mine = await activity(last.access_token)
    expect(mine).toEqual(events)
    expect(JSON.stringify(mine)).not.toContain('OtherAgent')
    // The admin who locked the user sees only their own login, not the lock they did.
    const adminEvents = await activity(adminToken)
    expect(adminEvents.map((e) => e.type)).toEqual(['login'])
    expect(adminEvents[0].session_id).toBe(Number(claimsOf(adminToken).sid))
    expect(adminId).toBeGreaterThan(0)
  })
})

describe('GET /auth/activity default limit', () => {
  it('returns the newest 50 by default, all with limit=500', { timeout: 180_000 }, async () => {
    const busy = newUser('busy')
    await register(request, busy)
    const logins: Tokens[] = []
    for (let i = 0; i < 53; i++) logins.push(await login(request, busy, { 'user-agent': `Busy/${i}` }))
    const newest = logins[logins.length - 1]
    const page = await activity(newest.access_token)
    expect(page).toHaveLength(50)
    expect(page[0]).toMatchObject({ type: 'login', user_agent: 'Busy/52', session_id: sid(newest) })
    expect(page[49]).toMatchObject({ user_agent: 'Busy/3' })
    const all = await activity(newest.access_token, '?limit=500')
    expect(all).toHaveLength(53)
    expect(all.slice(0, 50)).toEqual(page)
    expect(all.at(-1)).toMatchObject({ user_agent: 'Busy/0', session_id: sid(logins[0]) })
  })
})
