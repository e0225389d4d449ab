/**
 * Authentications that race a change of the account, over HTTP (issue #10, items 1, 2 and 6):
 * a login with the old password that overlaps a password reset or change, a 2FA challenge
 * issued before a password, 2FA, lock or activation change, and reset tokens mailed to an
 * address the account no longer has. The mail goes to a real SMTP server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TOTP_PERIOD_MS, totp } from '../../harness/totp.ts'
import { startControlledServer, type TestClock, testClock } from '../support/controlled-server.ts'
import { type Api, api, login, type NewUser, newUser, type Reply, register } from '../support/e2e.ts'
import type { TestServer } from '../support/server.ts'
import { type SmtpSink, startSmtp } from '../support/smtp.ts'

const BOOTSTRAP = 'races-e2e-bootstrap-token'
const RESET_TOKEN = /Reset token: (\d+\.[A-Za-z0-9_-]{43})\b/
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

let smtp: SmtpSink
let server: TestServer
let clock: TestClock
let request: Api
let adminToken: string

beforeAll(async () => {
  smtp = await startSmtp()
  clock = testClock()
  server = await startControlledServer({
    clock,
    env: { SMTP_URL: `smtp://127.0.0.1:${smtp.port}`, ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP },
  })
  request = api(server.url)
  const admin = newUser('raceadmin')
  const created = await request('POST', '/admin/register', {
    json: admin,
    headers: { 'x-bootstrap-token': BOOTSTRAP },
  })
  expect(created.status).toBe(200)
  adminToken = (
    await request('POST', '/admin/login', { json: { username: admin.username, password: admin.password } })
  ).body.access_token
})
afterAll(async () => {
  await server?.close()
  await smtp?.close()
})

/** Reset mails to `email` (registering mails its verification token there too). */
const resetMailsTo = (email: string) =>
  smtp.mails.filter((m) => m.envelopeTo.includes(email) && m.headers.subject === 'Reset your password')

async function mailedResetToken(email: string): Promise<string> {
  const before = resetMailsTo(email).length
  expect((await request('POST', '/auth/password-reset-request', { json: { email } })).status).toBe(200)
  const deadline = Date.now() + 10_000
  for (;;) {
    const mails = resetMailsTo(email)
    if (mails.length > before) return RESET_TOKEN.exec(mails[mails.length - 1].text)![1]
    if (Date.now() > deadline) throw new Error(`no reset mail to ${email}`)
    await sleep(10)
  }
}

const passwordLogin = (user: NewUser, password = user.password): Promise<Reply> =>
  request('POST', '/auth/login', { form: { username: user.username, password } })

/** Whether the tokens of a login still work: an access token at /protected, a refresh. */
async function tokensWork(reply: Reply): Promise<{ access: boolean; refresh: boolean }> {
  const access = await request('GET', '/protected', { token: reply.body.access_token })
  const refresh = await request('POST', '/auth/token-refresh', {
    json: { refresh_token: reply.body.refresh_token },
  })
  return { access: access.status === 200, refresh: refresh.status === 200 }
}

/**
 * Starts `change` and, `delayMs` later, a login with the old password; after both, a login that
 * succeeded must have been revoked by the change. The delays sweep the window the attack used.
 */
async function raceLoginAgainst(
  tag: string,
  change: (user: NewUser, id: number) => Promise<() => Promise<Reply>>,
): Promise<{ succeeded: number; trials: number }> {
  let succeeded = 0
  const delays = [0, 5, 10, 15, 20, 25, 30, 35, 40, 50]
  for (const delayMs of delays) {
    const user = newUser(`${tag}${delayMs}`)
    const { id } = await register(request, user)
    const run = await change(user, id)
    const changing = run()
    await sleep(delayMs)
    const raced = await passwordLogin(user)
    expect((await changing).status, 'the change itself').toBe(200)
    if (raced.status === 200) {
      succeeded++
      expect(await tokensWork(raced), `login ${delayMs} ms after the change began`).toEqual({
        access: false,
        refresh: false,
      })
    } else {
      expect(raced.status, JSON.stringify(raced.body)).toBe(401)
    }
    // The old password is refused from now on, the new one works.
    expect((await passwordLogin(user)).status).toBe(401)
  }
  return { succeeded, trials: delays.length }
}

describe('a login with the old password that overlaps a password change', () => {
  it('during a password reset: refused, or its session revoked with the others', async () => {
    await raceLoginAgainst('resetrace', async (user) => {
      const token = await mailedResetToken(user.email)
      return () =>
        request('POST', '/auth/password-reset', {
          json: { token, new_password: `New-Passw0rd-${user.username}` },
        })
    })
  })

  it('during a password change at PUT /auth/profile: refused, or its session revoked', async () => {
    await raceLoginAgainst('changerace', async (user) => {
      const { access_token } = await login(request, user)
      return () =>
        request('PUT', '/auth/profile', {
          token: access_token,
          json: { password: `New-Passw0rd-${user.username}`, current_password: user.password },
        })
    })
  })
})

describe('a 2FA challenge issued before a change of the account', () => {
  const step = (): number => Math.floor(clock.now().getTime() / TOTP_PERIOD_MS)

  async function enrolled(tag: string): Promise<{ user: NewUser; id: number; secret: string }> {
    const user = newUser(tag)
    const { id } = await register(request, user)
    const token = (await login(request, user)).access_token
    const setup = await request('GET', '/auth/generate-2fa-code', { token })
    const enabled = await request('POST', '/auth/enable-2fa', {
      token,
      json: { code: totp(setup.body.secret, step()) },
    })
    expect(enabled.status).toBe(200)
    return { user, id, secret: setup.body.secret }
  }

  async function challengeOf(user: NewUser, password = user.password): Promise<string> {
    const reply = await passwordLogin(user, password)
    expect(reply.body.requires_2fa, JSON.stringify(reply.body)).toBe(true)
    return reply.body.access_token
  }

  const verify = (challenge: string, secret: string): Promise<Reply> => {
    clock.advance(TOTP_PERIOD_MS) // a fresh time step each time
    return request('POST', '/auth/verify-2fa', { token: challenge, json: { code: totp(secret, step()) } })
  }

  it('control: completes with a fresh code when nothing changed', async () => {
    const { user, secret } = await enrolled('challengeok')
    expect((await verify(await challengeOf(user), secret)).status).toBe(200)
  })

  it('dies with a password reset', async () => {
    const { user, secret } = await enrolled('challengereset')
    const challenge = await challengeOf(user)
    const token = await mailedResetToken(user.email)
    const newPassword = `New-Passw0rd-${user.username}`
    expect(
      (await request('POST', '/auth/password-reset', { json: { token, new_password: newPassword } })).status,
    ).toBe(200)
    const late = await verify(challenge, secret)
    expect(late.status).toBe(401)
    expect(late.body).toEqual({ detail: 'Invalid challenge token' })
    // A challenge from the new password works.
    expect((await verify(await challengeOf(user, newPassword), secret)).status).toBe(200)
  })

  it('dies with a lock, even one lifted before the code arrives', async () => {
    const { user, id, secret } = await enrolled('challengelock')
    const challenge = await challengeOf(user)
    for (const path of ['/admin/lock', '/admin/unlock']) {
      expect((await request('POST', path, { json: { user_id: id }, token: adminToken })).status).toBe(200)
    }
    expect((await verify(challenge, secret)).status).toBe(401)
  })

  it('dies with a deactivation, even one undone before the code arrives', async () => {
    const { user, id, secret } = await enrolled('challengedeact')
    const challenge = await challengeOf(user)
    for (const path of [`/admin/deactivate-user/${id}`, `/admin/activate-user/${id}`]) {
      expect((await request('PUT', path, { token: adminToken })).status).toBe(200)
    }
    expect((await verify(challenge, secret)).status).toBe(401)
  })

  it('dies with a deletion', async () => {
    const { user, id, secret } = await enrolled('challengedelete')
    const challenge = await challengeOf(user)
    expect((await request('DELETE', `/admin/user/${id}`, { token: adminToken })).status).toBe(200)
    expect((await verify(challenge, secret)).status).toBe(401)
  })

  it('dies when 2FA is turned off (and on again)', async () => {
    const { user, secret } = await enrolled('challenge2fa')
    const stale = await challengeOf(user)
    const otp = await verify(await challengeOf(user), secret)
    expect(otp.status).toBe(200)
    const disabled = await request('POST', '/auth/disable-2fa', { token: otp.body.access_token })
    expect(disabled.status).toBe(200)
    const setup = await request('GET', '/auth/generate-2fa-code', { token: otp.body.access_token })
    clock.advance(TOTP_PERIOD_MS)
    const enabled = await request('POST', '/auth/enable-2fa', {
      token: otp.body.access_token,
      json: { code: totp(setup.body.secret, step()) },
    })
    expect(enabled.status).toBe(200)
    expect((await verify(stale, setup.body.secret)).status).toBe(401)
  })
})

describe('an email change', () => {
  it('voids the reset tokens mailed to the old address; a token mailed to the new one works', async () => {
    const user = newUser('mover')
    await register(request, user)
    const oldToken = await mailedResetToken(user.email)
    const { access_token } = await login(request, user)
    const newEmail = `moved.${user.email}`
    const changed = await request('PUT', '/auth/profile', {
      token: access_token,
      json: { email: newEmail, current_password: user.password },
    })
    expect(changed.status).toBe(200)
    const stale = await request('POST', '/auth/password-reset', {
      json: { token: oldToken, new_password: `Stale-Passw0rd-${user.username}` },
    })
    expect(stale.status).toBe(400)
    const fresh = await mailedResetToken(newEmail)
    const reset = await request('POST', '/auth/password-reset', {
      json: { token: fresh, new_password: `Fresh-Passw0rd-${user.username}` },
    })
    expect(reset.status).toBe(200)
  })
})
