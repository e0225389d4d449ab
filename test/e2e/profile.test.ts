import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Api,
  api,
  claimsOf,
  expectUnauthorized,
  login,
  type NewUser,
  newUser,
  register,
  type Tokens,
  USER_RESPONSE_KEYS,
} from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

let server: TestServer
let request: Api
let viewer: NewUser
let viewerTokens: Tokens

beforeAll(async () => {
  server = await startServer()
  request = api(server.url)
  viewer = newUser('viewer')
  await register(request, viewer)
  viewerTokens = await login(request, viewer)
})
afterAll(async () => {
  await server?.close()
})

describe('GET /auth/verify-user/{username}', () => {
  let target: NewUser
  let targetId: number
  beforeAll(async () => {
    target = { ...newUser('target'), email: `amelia.${Date.now()}@example.com`, full_name: 'Amelia T' }
    targetId = (await register(request, target)).id
  })

  it('shows another user with the email masked like a***@example.com', async () => {
    const reply = await request('GET', `/auth/verify-user/${target.username}`, {
      token: viewerTokens.access_token,
    })
    expect(reply.status).toBe(200)
    expect(Object.keys(reply.body).sort()).toEqual(USER_RESPONSE_KEYS)
    expect(reply.body).toMatchObject({
      id: targetId,
      username: target.username,
      email: 'a***@example.com',
      full_name: 'Amelia T',
      role: 'user',
      is_active: true,
      is_locked: false,
      is_2fa_enabled: false,
    })
    expect(JSON.stringify(reply.body)).not.toContain(target.email)
  })

  it('finds the user case-insensitively', async () => {
    const reply = await request('GET', `/auth/verify-user/${target.username.toUpperCase()}`, {
      token: viewerTokens.access_token,
    })
    expect(reply.status).toBe(200)
    expect(reply.body.id).toBe(targetId)
    expect(reply.body.email).toBe('a***@example.com')
  })

  it('shows the user themself their email unmasked', async () => {
    const own = await login(request, target)
    const reply = await request('GET', `/auth/verify-user/${target.username}`, { token: own.access_token })
    expect(reply.status).toBe(200)
    expect(reply.body.email).toBe(target.email)
    expect(reply.body.id).toBe(targetId)
  })

  it('answers 404 for an unknown username', async () => {
    const reply = await request('GET', '/auth/verify-user/no_such_user_here', {
      token: viewerTokens.access_token,
    })
    expect(reply.status).toBe(404)
    expect(reply.body).toEqual({ detail: 'User not found' })
  })

  it('answers 401 without a token', async () => {
    expectUnauthorized(await request('GET', `/auth/verify-user/${target.username}`))
  })
})

describe('PUT /auth/profile', () => {
  it('changes full_name without current_password, and can clear it with null', async () => {
    const user = newUser('named')
    await register(request, user)
    const tokens = await login(request, user)
    const reply = await request('PUT', '/auth/profile', {
      token: tokens.access_token,
      json: { full_name: 'New Name' },
    })
    expect(reply.status).toBe(200)
    expect(Object.keys(reply.body).sort()).toEqual(USER_RESPONSE_KEYS)
    expect(reply.body).toMatchObject({ username: user.username, email: user.email, full_name: 'New Name' })
    const seen = await request('GET', `/auth/verify-user/${user.username}`, { token: tokens.access_token })
    expect(seen.body.full_name).toBe('New Name')

    const cleared = await request('PUT', '/auth/profile', {
      token: tokens.access_token,
      json: { full_name: null },
    })
    expect(cleared.status).toBe(200)
    expect(cleared.body.full_name).toBeNull()
    // The session survives a profile change that is not a password change.
    expect((await request('GET', '/protected', { token: tokens.access_token })).status).toBe(200)
  })

  it('answers 422 for invalid fields', async () => {
    const badEmail = await request('PUT', '/auth/profile', {
      token: viewerTokens.access_token,
      json: { email: 'nope', current_password: viewer.password },
    })
    expect(badEmail.status).toBe(422)
    expect(badEmail.body.detail).toEqual([
      { loc: ['body', 'email'], msg: 'value is not a valid email address', type: 'value_error' },
    ])
    const longName = await request('PUT', '/auth/profile', {
      token: viewerTokens.access_token,
      json: { full_name: 'x'.repeat(101) },
    })
    expect(longName.status).toBe(422)
    expect(longName.body.detail[0].loc).toEqual(['body', 'full_name'])
    const weak = await request('PUT', '/auth/profile', {
      token: viewerTokens.access_token,
      json: { password: 'password123', current_password: viewer.password },
    })
    expect(weak.status).toBe(422)
    expect(weak.body.detail).toEqual([
      { loc: ['body', 'password'], msg: 'Password is too common', type: 'value_error' },
    ])
  })

  it('changes the email only with the right current_password (401 without or wrong)', async () => {
    const user = newUser('mover')
    await register(request, user)
    const tokens = await login(request, user)
    const newEmail = `moved.${Date.now()}@example.com`

    const without = await request('PUT', '/auth/profile', {
      token: tokens.access_token,
      json: { email: newEmail },
    })
    expectUnauthorized(without)
    expect(without.body).toEqual({ detail: 'Current password is incorrect' })
    const wrong = await request('PUT', '/auth/profile', {
      token: tokens.access_token,
      json: { email: newEmail, current_password: 'not my password' },
    })
    expectUnauthorized(wrong)
    expect(wrong.body).toEqual({ detail: 'Current password is incorrect' })
    // Nothing changed, and the failed checks did not end the session.
    const unchanged = await request('GET', `/auth/verify-user/${user.username}`, {
      token: tokens.access_token,
    })
    expect(unchanged.status).toBe(200)
    expect(unchanged.body.email).toBe(user.email)

    const ok = await request('PUT', '/auth/profile', {
      token: tokens.access_token,
      json: { email: newEmail, current_password: user.password },
    })
    expect(ok.status).toBe(200)
    expect(ok.body.email).toBe(newEmail)

    // The old address is free again, the new one is taken.
    const reuseOld = await request('POST', '/auth/register', {
      json: { ...newUser('heir'), email: user.email },
    })
    expect(reuseOld.status).toBe(200)
    const takeNew = await request('POST', '/auth/register', { json: { ...newUser('late'), email: newEmail } })
    expect(takeNew.status).toBe(409)
  })

  it('throttles wrong current passwords and counts them as failed logins, so a stolen token cannot guess the password', async () => {
    const user = newUser('guessed')
    const { id } = await register(request, user)
    const tokens = await login(request, user)
    const change = (currentPassword: string) =>
      request('PUT', '/auth/profile', {
        token: tokens.access_token,
        json: { password: 'another long password', current_password: currentPassword },
      })
    for (let i = 0; i < 5; i++) expectUnauthorized(await change(`guess number ${i}`))
    // The 6th try through that session is refused without checking, even with the right password.
    const throttled = await change(user.password)
    expect(throttled.status).toBe(423)
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(14 * 60)
    const events = await server.runtime.store.readStream(`user-${id}`)
    expect(events.filter((e) => e.type === 'LoginFailed')).toHaveLength(5)
    expect(events.map((e) => e.type)).not.toContain('PasswordChanged')
  })

  it('answers 409 when the new email is taken (in any case)', async () => {
    const user = newUser('clasher')
    const other = newUser('holder')
    await register(request, user)
    await register(request, other)
    const tokens = await login(request, user)
    const reply = await request('PUT', '/auth/profile', {
      token: tokens.access_token,
      json: { email: other.email.toUpperCase(), current_password: user.password },
    })
    expect(reply.status).toBe(409)
    expect(reply.body).toEqual({ detail: 'Email already registered' })
    const still = await request('GET', `/auth/verify-user/${user.username}`, { token: tokens.access_token })
    expect(still.body.email).toBe(user.email)
  })

  it('treats its own email (in another case) as no change that needs a password', async () => {
    const user = newUser('sameMail')
    await register(request, user)
    const tokens = await login(request, user)
    const reply = await request('PUT', '/auth/profile', {
      token: tokens.access_token,
      json: { email: user.email, full_name: 'Still Me' },
    })
    expect(reply.status).toBe(200)
    expect(reply.body.full_name).toBe('Still Me')
  })

  it('needs current_password for a password change; the change revokes the other sessions and keeps this one', async () => {
    const user = newUser('rotator')
    await register(request, user)
    const current = await login(request, user)
    const other = await login(request, user)
    const newPassword = `${user.password}-v2!`

    const without = await request('PUT', '/auth/profile', {
      token: current.access_token,
      json: { password: newPassword },
    })
    expectUnauthorized(without)
    const wrong = await request('PUT', '/auth/profile', {
      token: current.access_token,
      json: { password: newPassword, current_password: 'definitely wrong' },
    })
    expectUnauthorized(wrong)
    expect((await request('GET', '/protected', { token: other.access_token })).status).toBe(200)

    const changed = await request('PUT', '/auth/profile', {
      token: current.access_token,
      json: { password: newPassword, current_password: user.password },
    })
    expect(changed.status).toBe(200)
    expect(Object.keys(changed.body).sort()).toEqual(USER_RESPONSE_KEYS)
    expect(JSON.stringify(changed.body)).not.toContain(newPassword)

    // The other session is gone at once, access and refresh.
    expectUnauthorized(await request('GET', '/protected', { token: other.access_token }))
    expectUnauthorized(
      await request('POST', '/auth/token-refresh', { json: { refresh_token: other.refresh_token } }),
    )
    // This one lives on, access and refresh.
    expect((await request('GET', '/protected', { token: current.access_token })).status).toBe(200)
    const sessions = await request('GET', '/auth/sessions', { token: current.access_token })
    expect(sessions.status).toBe(200)
    expect(sessions.body.map((s: { id: number }) => s.id)).toEqual([
      Number(claimsOf(current.access_token).sid),
    ])
    const refreshed = await request('POST', '/auth/token-refresh', {
      json: { refresh_token: current.refresh_token },
    })
    expect(refreshed.status).toBe(200)
    expect((await request('GET', '/protected', { token: refreshed.body.access_token })).status).toBe(200)

    // The new password works at login, the old one does not.
    const oldLogin = await request('POST', '/auth/login', {
      form: { username: user.username, password: user.password },
    })
    expect(oldLogin.status).toBe(401)
    const newLogin = await request('POST', '/auth/login', {
      form: { username: user.username, password: newPassword },
    })
    expect(newLogin.status).toBe(200)
  })

  it('answers 401 without a token or with a garbage one', async () => {
    expectUnauthorized(await request('PUT', '/auth/profile', { json: { full_name: 'x' } }))
    expectUnauthorized(
      await request('PUT', '/auth/profile', { json: { full_name: 'x' }, token: 'abc.def.ghi' }),
    )
  })
})
