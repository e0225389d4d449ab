import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Api, api, claimsOf, login, type NewUser, newUser, register } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

let server: TestServer
let request: Api
let user: NewUser
let userId: number

beforeAll(async () => {
  server = await startServer()
  request = api(server.url)
  user = newUser('refresher')
  userId = (await register(request, user)).id
})
afterAll(async () => {
  await server?.close()
})

const refresh = (refresh_token: unknown) =>
  request('POST', '/auth/token-refresh', { json: { refresh_token } })

function expectInvalid(reply: { status: number; body: unknown; headers: Headers }) {
  expect(reply.status).toBe(401)
  expect(reply.headers.get('www-authenticate')).toBe('Bearer')
  expect(typeof (reply.body as { detail: unknown }).detail).toBe('string')
}

describe('POST /auth/token-refresh', () => {
  it('rotates: answers a new Token for the same session; the new refresh token works and the old one is 401', async () => {
    const first = await login(request, user)
    const sid = claimsOf(first.access_token).sid

    const second = await refresh(first.refresh_token)
    expect(second.status).toBe(200)
    expect(Object.keys(second.body).sort()).toEqual([
      'access_token',
      'expires_in',
      'refresh_token',
      'token_type',
    ])
    expect(second.body.token_type).toBe('bearer')
    expect(second.body.expires_in).toBe(900)
    expect(second.body.refresh_token).not.toBe(first.refresh_token)
    expect(second.body.access_token).not.toBe(first.access_token)
    const claims = claimsOf(second.body.access_token)
    expect(claims.sid).toBe(sid)
    expect(claims.sub).toBe(String(userId))
    expect(claims.amr).toEqual(['pwd'])

    const hello = await request('GET', '/protected', { token: second.body.access_token })
    expect(hello.status).toBe(200)
    expect(hello.body.user_id).toBe(userId)

    const third = await refresh(second.body.refresh_token)
    expect(third.status).toBe(200)
    expect(claimsOf(third.body.access_token).sid).toBe(sid)
    expect((await request('GET', '/protected', { token: third.body.access_token })).status).toBe(200)
  })

  it('revokes the whole session when an already-rotated token is presented again', async () => {
    const first = await login(request, user)
    const rotated = await refresh(first.refresh_token)
    expect(rotated.status).toBe(200)
    const newest = rotated.body

    // The thief (or the victim) replays the rotated-out token.
    const replay = await refresh(first.refresh_token)
    expectInvalid(replay)
    expect(replay.body.detail).toBe('Refresh token reuse detected; the session has been revoked')

    // Everything of that session stops working: the newest refresh token and both access tokens.
    expectInvalid(await refresh(newest.refresh_token))
    expectInvalid(await request('GET', '/protected', { token: newest.access_token }))
    expectInvalid(await request('GET', '/protected', { token: first.access_token }))

    // And a replay again stays 401.
    expectInvalid(await refresh(first.refresh_token))

    // Other sessions of the same user are untouched.
    const other = await login(request, user)
    expect((await request('GET', '/protected', { token: other.access_token })).status).toBe(200)
    const sessions = await request('GET', '/auth/sessions', { token: other.access_token })
    expect(sessions.status).toBe(200)
    expect(sessions.body.map((s: { id: number }) => String(s.id))).not.toContain(
      claimsOf(newest.access_token).sid,
    )
  })

  it('answers 401 for garbage and for well-formed but unknown tokens', async () => {
    const session = await login(request, user)
    const [sid, secret] = session.refresh_token.split('.')
    const forged = `${sid}.${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`
    for (const token of [
      'garbage',
      'not.a.token',
      `999999.${secret}`,
      forged,
      `${sid}.`,
      `.${secret}`,
      session.access_token.slice(0, 200),
    ]) {
      const reply = await refresh(token)
      expectInvalid(reply)
      expect(reply.body).toEqual({ detail: 'Invalid refresh token' })
    }
    // A forged token for the session does not count as reuse: the real one still rotates.
    expect((await refresh(session.refresh_token)).status).toBe(200)
  })

  it('slides the session lifetime forward on each refresh', async () => {
    const tokens = await login(request, user)
    const expiresAt = async (access: string) => {
      const list = await request('GET', '/auth/sessions', { token: access })
      return Date.parse(list.body.find((s: { is_current: boolean }) => s.is_current).expires_at)
    }
    const first = await expiresAt(tokens.access_token)
    const refreshed = await refresh(tokens.refresh_token)
    expect(refreshed.status).toBe(200)
    const second = await expiresAt(refreshed.body.access_token)
    expect(second).toBeGreaterThan(first)
    expect(second - Date.now()).toBeGreaterThan(29 * 24 * 3600 * 1000)
  })

  it('answers 422 when the refresh token is missing or not a string', async () => {
    const missing = await request('POST', '/auth/token-refresh', { json: {} })
    expect(missing.status).toBe(422)
    expect(missing.body).toEqual({
      detail: [{ loc: ['body', 'refresh_token'], msg: 'Field required', type: 'missing' }],
    })
    const noBody = await request('POST', '/auth/token-refresh')
    expect(noBody.status).toBe(422)
    expect(noBody.body.detail[0].loc[0]).toBe('body')
    const number = await refresh(12345)
    expect(number.status).toBe(422)
    expect(number.body.detail[0].loc).toEqual(['body', 'refresh_token'])
    const empty = await refresh('')
    expect(empty.status).toBe(422)
  })
})

describe('REFRESH_TOKEN_TTL_SECONDS=2', () => {
  let short: TestServer
  beforeAll(async () => {
    short = await startServer({ REFRESH_TOKEN_TTL_SECONDS: '2' })
  })
  afterAll(async () => {
    await short?.close()
  })

  it('refuses a refresh token after its session expired, and no longer lists the session', async () => {
    const shortRequest = api(short.url)
    const someone = newUser('shortlived')
    await register(shortRequest, someone)
    const doomed = await login(shortRequest, someone)
    const list = await shortRequest('GET', '/auth/sessions', { token: doomed.access_token })
    const expiresAt = Date.parse(list.body[0].expires_at)
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(2000)

    const waitMs = expiresAt + 500 - Date.now()
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs))

    const expired = await shortRequest('POST', '/auth/token-refresh', {
      json: { refresh_token: doomed.refresh_token },
    })
    expect(expired.status).toBe(401)
    expect(expired.headers.get('www-authenticate')).toBe('Bearer')
    expect(expired.body).toEqual({ detail: 'Invalid refresh token' })
    const fresh = await login(shortRequest, someone)
    const after = await shortRequest('GET', '/auth/sessions', { token: fresh.access_token })
    expect(after.body.map((s: { id: number }) => String(s.id))).toEqual([claimsOf(fresh.access_token).sid])
  })
})
