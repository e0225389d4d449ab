import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Api, api, claimsOf, login, type NewUser, newUser, register } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

let server: TestServer
let request: Api
let user: NewUser
let userId: number

beforeAll(async () => {
  // Sessions may live longer than one refresh token here, so that sliding can be seen.
  server = await startServer({ SESSION_MAX_AGE_SECONDS: String(90 * 24 * 3600) })
  request = api(server.url)
  user = newUser('refresher')
  userId = (await register(request, user)).id
})
afterAll(async () => {
  await server?.close()
})

/** The stored hash of a refresh token's secret (`<session id>.<secret>`). */
const hashOf = (refreshToken: string): string =>
  createHash('sha256')
    .update(refreshToken.slice(refreshToken.indexOf('.') + 1))
    .digest('hex')

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

  it('revokes the whole session when an older rotated-out token is presented again', async () => {
    const first = await login(request, user)
    const rotated = await refresh(first.refresh_token)
    expect(rotated.status).toBe(200)
    const again = await refresh(rotated.body.refresh_token)
    expect(again.status).toBe(200)
    const newest = again.body

    // The thief (or the victim) replays a token older than the one just rotated out: no grace.
    const replay = await refresh(first.refresh_token)
    expectInvalid(replay)
    expect(replay.body.detail).toBe('Refresh token reuse detected; the session has been revoked')

    // Everything of that session stops working: the newest refresh token and the access tokens.
    expectInvalid(await refresh(newest.refresh_token))
    expectInvalid(await refresh(rotated.body.refresh_token))
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
      // An access token where a refresh token belongs is an invalid refresh token, not a 422.
      session.access_token,
      // Only canonical ids: the right secret behind a spelling of the id that Number() accepts.
      ` ${sid}.${secret}`,
      `${sid} .${secret}`,
      `0${sid}.${secret}`,
      `${sid}e0.${secret}`,
      `+${sid}.${secret}`,
      `0x${Number(sid).toString(16)}.${secret}`,
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

describe('two tabs refreshing at once (REFRESH_REUSE_GRACE_SECONDS, default 10)', () => {
  it('gives both tabs working tokens of the same session, and leaves one line of tokens alive', async () => {
    const tokens = await login(request, user)
    const sid = claimsOf(tokens.access_token).sid
    const [a, b] = await Promise.all([refresh(tokens.refresh_token), refresh(tokens.refresh_token)])
    expect([a.status, b.status]).toEqual([200, 200])
    expect(claimsOf(a.body.access_token).sid).toBe(sid)
    expect(claimsOf(b.body.access_token).sid).toBe(sid)
    expect(a.body.refresh_token).not.toBe(b.body.refresh_token)
    for (const reply of [a, b]) {
      expect((await request('GET', '/protected', { token: reply.body.access_token })).status).toBe(200)
    }
    // The tab that refreshed last holds the live line; the other one's token was rotated out
    // in turn and is itself only good for the grace period.
    const events = await server.runtime.store.readStream(`session-${sid}`)
    expect(events.map((e) => e.type)).toEqual(['SessionStarted', 'SessionRefreshed', 'SessionRefreshed'])
    expect(events[2].data.within_grace).toBe(true)
    const winnerHash = events[1].data.refresh_token_hash
    const [winner, loser] = [a, b].map((r) => r.body.refresh_token as string)
    const live = hashOf(winner) === winnerHash ? loser : winner
    const next = await refresh(live)
    expect(next.status).toBe(200)
    expect(claimsOf(next.body.access_token).sid).toBe(sid)
    // The original token is now two rotations old: a reuse, and the session ends.
    const stale = await refresh(tokens.refresh_token)
    expect(stale.status).toBe(401)
    expect(stale.body.detail).toBe('Refresh token reuse detected; the session has been revoked')
    expectInvalid(await refresh(next.body.refresh_token))
  })

  it('counts the just-rotated token as a reuse once the grace period is over', async () => {
    const graceful = await startServer({ REFRESH_REUSE_GRACE_SECONDS: '1' })
    try {
      const r = api(graceful.url)
      const someone = newUser('graceful')
      await register(r, someone)
      const tokens = await login(r, someone)
      const post = (token: string) => r('POST', '/auth/token-refresh', { json: { refresh_token: token } })
      const rotated = await post(tokens.refresh_token)
      expect(rotated.status).toBe(200)
      await new Promise((resolve) => setTimeout(resolve, 1_200))
      const late = await post(tokens.refresh_token)
      expect(late.status).toBe(401)
      expect(late.body.detail).toBe('Refresh token reuse detected; the session has been revoked')
      expect((await post(rotated.body.refresh_token)).status).toBe(401)
    } finally {
      await graceful.close()
    }
  })

  it('with REFRESH_REUSE_GRACE_SECONDS=0, presenting the just-rotated token at once is a reuse', async () => {
    const strict = await startServer({ REFRESH_REUSE_GRACE_SECONDS: '0' })
    try {
      const r = api(strict.url)
      const someone = newUser('strict')
      await register(r, someone)
      const tokens = await login(r, someone)
      const post = (token: string) => r('POST', '/auth/token-refresh', { json: { refresh_token: token } })
      const rotated = await post(tokens.refresh_token)
      expect(rotated.status).toBe(200)
      const replay = await post(tokens.refresh_token)
      expect(replay.status).toBe(401)
      expect(replay.body.detail).toBe('Refresh token reuse detected; the session has been revoked')
      expect((await r('GET', '/protected', { token: rotated.body.access_token })).status).toBe(401)
    } finally {
      await strict.close()
    }
  })
})

describe('SESSION_MAX_AGE_SECONDS=2', () => {
  it('ends a session 2 s after its login, however recently it was refreshed', async () => {
    const capped = await startServer({ SESSION_MAX_AGE_SECONDS: '2' })
    try {
      const r = api(capped.url)
      const someone = newUser('capped')
      await register(r, someone)
      const tokens = await login(r, someone)
      const post = (token: string) => r('POST', '/auth/token-refresh', { json: { refresh_token: token } })
      const loggedInAt = Date.now()
      let current = tokens.refresh_token
      // Refresh every 400 ms: a sliding lifetime alone would keep the session alive forever.
      while (Date.now() - loggedInAt < 1_500) {
        const next = await post(current)
        expect(next.status).toBe(200)
        current = next.body.refresh_token
        const list = await r('GET', '/auth/sessions', { token: next.body.access_token })
        expect(Date.parse(list.body[0].expires_at)).toBeLessThanOrEqual(loggedInAt + 2_500)
        await new Promise((resolve) => setTimeout(resolve, 400))
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, loggedInAt + 2_300 - Date.now())))
      const ended = await post(current)
      expect(ended.status).toBe(401)
      expect(ended.body).toEqual({ detail: 'Invalid refresh token' })
      // The user logs in again.
      expect((await login(r, someone)).token_type).toBe('bearer')
    } finally {
      await capped.close()
    }
  })
})
