import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Api,
  api,
  claimsOf,
  expectUnauthorized,
  ISO_UTC,
  login,
  type NewUser,
  newUser,
  register,
} from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

let server: TestServer
let request: Api
let owner: NewUser
let stranger: NewUser

beforeAll(async () => {
  server = await startServer()
  request = api(server.url)
  owner = newUser('owner')
  stranger = newUser('stranger')
  await register(request, owner)
  await register(request, stranger)
})
afterAll(async () => {
  await server?.close()
})

const SESSION_KEYS = [
  'created_at',
  'expires_at',
  'id',
  'ip_address',
  'is_current',
  'last_used_at',
  'user_agent',
]
const sid = (token: string): number => Number(claimsOf(token).sid)

describe('GET /auth/sessions', () => {
  it('lists the caller’s active sessions; is_current only for the caller’s one; records ip and user agent', async () => {
    const phone = await login(request, owner, { 'user-agent': 'PhoneBrowser/1.0' })
    const laptop = await login(request, owner, { 'user-agent': 'LaptopBrowser/2.0' })
    const theirs = await login(request, stranger, { 'user-agent': 'StrangerAgent/3.0' })

    const reply = await request('GET', '/auth/sessions', {
      token: laptop.access_token,
      headers: { 'user-agent': 'LaptopBrowser/2.0' },
    })
    expect(reply.status).toBe(200)
    expect(Array.isArray(reply.body)).toBe(true)
    const ids = reply.body.map((s: { id: number }) => s.id)
    expect(ids).toEqual(expect.arrayContaining([sid(phone.access_token), sid(laptop.access_token)]))
    expect(ids).not.toContain(sid(theirs.access_token))

    for (const session of reply.body) {
      expect(Object.keys(session).sort()).toEqual(SESSION_KEYS)
      expect(session.created_at).toMatch(ISO_UTC)
      expect(session.last_used_at).toMatch(ISO_UTC)
      expect(session.expires_at).toMatch(ISO_UTC)
      expect(Date.parse(session.expires_at)).toBeGreaterThan(Date.now() + 29 * 24 * 3600 * 1000)
      expect(session.is_current).toBe(session.id === sid(laptop.access_token))
    }
    expect(reply.body.filter((s: { is_current: boolean }) => s.is_current)).toHaveLength(1)

    const byId = new Map(reply.body.map((s: { id: number }) => [s.id, s]))
    expect(byId.get(sid(phone.access_token))).toMatchObject({
      ip_address: '127.0.0.1',
      user_agent: 'PhoneBrowser/1.0',
      is_current: false,
    })
    expect(byId.get(sid(laptop.access_token))).toMatchObject({
      ip_address: '127.0.0.1',
      user_agent: 'LaptopBrowser/2.0',
      is_current: true,
    })

    // The same list seen from the other session marks that one as current.
    const fromPhone = await request('GET', '/auth/sessions', { token: phone.access_token })
    expect(fromPhone.status).toBe(200)
    const current = fromPhone.body.filter((s: { is_current: boolean }) => s.is_current)
    expect(current.map((s: { id: number }) => s.id)).toEqual([sid(phone.access_token)])
  })

  it('answers 401 without a token or with a bad one', async () => {
    expectUnauthorized(await request('GET', '/auth/sessions'))
    expectUnauthorized(await request('GET', '/auth/sessions', { token: 'garbage' }))
  })
})

describe('DELETE /auth/sessions/{session_id}', () => {
  it('revokes at once: the access token of that session is 401 immediately and its refresh token too', async () => {
    const keep = await login(request, owner)
    const doomed = await login(request, owner)
    // The doomed session is in use (its token is cached as valid) before it is revoked.
    expect((await request('GET', '/protected', { token: doomed.access_token })).status).toBe(200)

    const reply = await request('DELETE', `/auth/sessions/${sid(doomed.access_token)}`, {
      token: keep.access_token,
    })
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ message: 'Session revoked' })

    expectUnauthorized(await request('GET', '/protected', { token: doomed.access_token }))
    expectUnauthorized(await request('GET', '/auth/sessions', { token: doomed.access_token }))
    expectUnauthorized(
      await request('POST', '/auth/token-refresh', { json: { refresh_token: doomed.refresh_token } }),
    )
    // The caller’s own session lives on, and the revoked one is no longer listed.
    const list = await request('GET', '/auth/sessions', { token: keep.access_token })
    expect(list.status).toBe(200)
    const ids = list.body.map((s: { id: number }) => s.id)
    expect(ids).toContain(sid(keep.access_token))
    expect(ids).not.toContain(sid(doomed.access_token))

    // Revoking it again is an idempotent no-op.
    const again = await request('DELETE', `/auth/sessions/${sid(doomed.access_token)}`, {
      token: keep.access_token,
    })
    expect(again.status).toBe(200)
    expect(again.body).toEqual({ message: 'Session revoked' })
  })

  it('lets a session revoke itself', async () => {
    const self = await login(request, owner)
    const reply = await request('DELETE', `/auth/sessions/${sid(self.access_token)}`, {
      token: self.access_token,
    })
    expect(reply.status).toBe(200)
    expectUnauthorized(await request('GET', '/protected', { token: self.access_token }))
  })

  it('answers 404 for another user’s session and leaves it working', async () => {
    const mine = await login(request, owner)
    const theirs = await login(request, stranger)
    const reply = await request('DELETE', `/auth/sessions/${sid(theirs.access_token)}`, {
      token: mine.access_token,
    })
    expect(reply.status).toBe(404)
    expect(reply.body).toEqual({ detail: 'Session not found' })
    expect((await request('GET', '/protected', { token: theirs.access_token })).status).toBe(200)
  })

  it('answers 404 for a session that does not exist', async () => {
    const mine = await login(request, owner)
    const reply = await request('DELETE', '/auth/sessions/987654', { token: mine.access_token })
    expect(reply.status).toBe(404)
    expect(reply.body).toEqual({ detail: 'Session not found' })
  })

  it('answers 422 for a session id that is not a positive integer', async () => {
    const mine = await login(request, owner)
    for (const id of ['abc', '1.5', '-3', '0', '1.0', '1e3', '0x10', '%201']) {
      const reply = await request('DELETE', `/auth/sessions/${id}`, { token: mine.access_token })
      expect(reply.status, id).toBe(422)
      expect(reply.body.detail).toHaveLength(1)
      expect(reply.body.detail[0].loc).toEqual(['path', 'session_id'])
      expect(typeof reply.body.detail[0].msg).toBe('string')
      expect(typeof reply.body.detail[0].type).toBe('string')
    }
  })

  it('answers 401 without a token', async () => {
    const mine = await login(request, owner)
    expectUnauthorized(await request('DELETE', `/auth/sessions/${sid(mine.access_token)}`))
    expect((await request('GET', '/protected', { token: mine.access_token })).status).toBe(200)
  })
})
