/**
 * Email verification end to end over HTTP, with mail delivered to a real SMTP server
 * (`smtp-server`) and a clock the test moves: the token mailed at registration (user, vendor,
 * admin), single use, expiry, resend voiding the old token, REQUIRE_VERIFIED_EMAIL=1 refusing
 * logins to an unverified address, the change of address (at once, or pending until confirmed),
 * the notice to the old address, reset tokens dying with it, UserResponse and the activity.
 */

import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startControlledServer, type TestClock, testClock } from '../support/controlled-server.ts'
import { type Api, api, login, type NewUser, newUser, register, USER_RESPONSE_KEYS } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'
import { type CapturedMail, type SmtpSink, startSmtp } from '../support/smtp.ts'

const MAIL_FROM = 'Auth Service <no-reply@auth.test>'
const VERIFY_SUBJECT = 'Confirm your email address'
const VERIFICATION_TOKEN = /Verification token: (\d+\.[A-Za-z0-9_-]{43})\b/
const RESET_TOKEN = /Reset token: (\d+\.[A-Za-z0-9_-]{43})\b/
const DAY_MS = 86_400_000
/** How long "no mail arrives" is waited for; a real mail arrives within milliseconds. */
const QUIET_MS = 1_000

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

let smtp: SmtpSink

beforeAll(async () => {
  smtp = await startSmtp()
})
afterAll(async () => {
  await smtp?.close()
})

function mailsTo(email: string, subject?: string): CapturedMail[] {
  return smtp.mails.filter(
    (m) =>
      m.envelopeTo.some((to) => to.toLowerCase() === email.toLowerCase()) &&
      (subject === undefined || m.headers.subject === subject),
  )
}

/** Waits until `count` mails to `email` (with this subject) arrived, and returns them. */
async function waitForMailsTo(email: string, count: number, subject?: string): Promise<CapturedMail[]> {
  const deadline = Date.now() + 10_000
  while (mailsTo(email, subject).length < count) {
    if (Date.now() > deadline)
      throw new Error(`expected ${count} mail(s) to ${email}, got ${mailsTo(email, subject).length}`)
    await sleep(20)
  }
  return mailsTo(email, subject)
}

function tokenIn(mail: CapturedMail, pattern = VERIFICATION_TOKEN): string {
  const match = pattern.exec(mail.text)
  expect(match, `no token in the mail:\n${mail.text}`).not.toBeNull()
  return match![1]
}

/** The token of the `n`th (1-based) verification mail to `email`, once it arrived. */
async function verificationToken(email: string, n = 1): Promise<string> {
  const mails = await waitForMailsTo(email, n, VERIFY_SUBJECT)
  return tokenIn(mails[n - 1])
}

function smtpServer(env: Record<string, string> = {}, clock?: TestClock): Promise<TestServer> {
  return startControlledServer({
    clock,
    env: { SMTP_URL: `smtp://127.0.0.1:${smtp.port}`, MAIL_FROM, ...env },
  })
}

describe('REQUIRE_VERIFIED_EMAIL unset (0)', () => {
  const BOOTSTRAP = 'email-verification-bootstrap-0123'
  let server: TestServer
  let clock: TestClock
  let request: Api

  beforeAll(async () => {
    clock = testClock()
    server = await smtpServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP }, clock)
    request = api(server.url)
  })
  afterAll(async () => {
    await server?.close()
  })

  const verify = (token: string) => request('POST', '/auth/verify-email', { json: { token } })
  const profile = async (user: NewUser, token: string) =>
    (await request('GET', `/auth/verify-user/${user.username}`, { token })).body

  it('registration mails a single-use token; the answer says unverified; the token verifies once', async () => {
    const user = newUser('verifyme')
    const created = await register(request, user)
    expect(Object.keys(created).sort()).toEqual(USER_RESPONSE_KEYS)
    expect(created).toMatchObject({ email: user.email, email_verified: false, pending_email: null })
    const [mail] = await waitForMailsTo(user.email, 1)
    expect(mail.headers.subject).toBe(VERIFY_SUBJECT)
    expect(mail.envelopeFrom).toBe('no-reply@auth.test')
    const token = tokenIn(mail)
    expect(token.startsWith(`${created.id}.`)).toBe(true)
    // Only the hash is kept: the secret is in no answer and in no stored event.
    expect(JSON.stringify(created)).not.toContain(token.split('.')[1])
    const events = await server.runtime.store.readStream(`user-${created.id}`)
    const history = JSON.stringify(events, (_, value) => (typeof value === 'bigint' ? String(value) : value))
    const secret = token.split('.')[1]
    expect(history).not.toContain(secret)
    const requested = events.find((e) => e.type === 'EmailVerificationRequested')
    expect(requested?.data).toMatchObject({ token_hash: createHash('sha256').update(secret).digest('hex') })

    const tokens = await login(request, user)
    expect((await profile(user, tokens.access_token)).email_verified).toBe(false)

    const ok = await verify(token)
    expect(ok.status, JSON.stringify(ok.body)).toBe(200)
    expect(ok.body).toEqual({ message: expect.any(String) })
    expect(await profile(user, tokens.access_token)).toMatchObject({
      email_verified: true,
      pending_email: null,
    })

    const again = await verify(token)
    expect(again.status).toBe(400)
    expect(again.body).toEqual({ detail: expect.stringMatching(/invalid|expired|used/i) })
  })

  it('vendors and admins get the mail too, and verify alike', async () => {
    const vendor = { ...newUser('vendorv'), company_name: 'Verified Goods' }
    const created = await request('POST', '/vendor/register_vendor', { json: vendor })
    expect(created.status, JSON.stringify(created.body)).toBe(200)
    const admin = newUser('adminv')
    const made = await request('POST', '/admin/register', {
      json: admin,
      headers: { 'x-bootstrap-token': BOOTSTRAP },
    })
    expect(made.status, JSON.stringify(made.body)).toBe(200)
    expect(made.body.email_verified).toBe(false)
    for (const who of [vendor, admin])
      expect((await verify(await verificationToken(who.email))).status).toBe(200)
    const adminToken = (
      await request('POST', '/admin/login', { json: { username: admin.username, password: admin.password } })
    ).body.access_token
    const listed = await request('GET', `/admin/users?q=${encodeURIComponent(vendor.username)}`, {
      token: adminToken,
    })
    expect(listed.body.map((u: { email_verified: boolean }) => u.email_verified)).toEqual([true])
    expect((await profile(admin, adminToken)).email_verified).toBe(true)
  })

  it('a token works until EMAIL_VERIFICATION_TTL_SECONDS (default 24 h), not after', async () => {
    const early = newUser('earlybird')
    const late = newUser('latecomer')
    await register(request, early)
    await register(request, late)
    const earlyToken = await verificationToken(early.email)
    const lateToken = await verificationToken(late.email)
    clock.advance(DAY_MS - 1_000)
    expect((await verify(earlyToken)).status).toBe(200)
    clock.advance(2_000)
    const expired = await verify(lateToken)
    expect(expired.status).toBe(400)
    expect(typeof expired.body.detail).toBe('string')
    // A new one still can be had, and works.
    const tokens = await login(request, late)
    expect((await request('POST', '/auth/verify-email/resend', { token: tokens.access_token })).status).toBe(
      200,
    )
    expect((await verify(await verificationToken(late.email, 2))).status).toBe(200)
  })

  it('resend mails a new token and voids the old one; at most one a minute; refused once verified', async () => {
    const user = newUser('resender')
    await register(request, user)
    const first = await verificationToken(user.email)
    const { access_token } = await login(request, user)
    const resend = () => request('POST', '/auth/verify-email/resend', { token: access_token })

    const tooSoon = await resend()
    expect(tooSoon.status).toBe(429)
    expect(Number(tooSoon.headers.get('retry-after'))).toBeGreaterThanOrEqual(59)
    expect(Number(tooSoon.headers.get('retry-after'))).toBeLessThanOrEqual(60)
    await sleep(QUIET_MS)
    expect(mailsTo(user.email)).toHaveLength(1)

    clock.advance(61_000)
    const again = await resend()
    expect(again.status, JSON.stringify(again.body)).toBe(200)
    expect(again.body).toEqual({ message: expect.any(String) })
    const second = await verificationToken(user.email, 2)
    expect(second).not.toBe(first)
    expect((await verify(first)).status).toBe(400)
    expect((await verify(second)).status).toBe(200)

    clock.advance(61_000)
    const done = await resend()
    expect(done.status).toBe(400)
    expect(done.body.detail).toMatch(/already verified/i)
    expect((await request('POST', '/auth/verify-email/resend')).status).toBe(401)
  })

  it('malformed, unknown and foreign tokens answer 400 (an empty one 422) and verify nothing', async () => {
    const user = newUser('garbagev')
    const other = newUser('otherv')
    const { id } = await register(request, user)
    const otherId = (await register(request, other)).id
    const real = await verificationToken(user.email)
    const [, secret] = real.split('.')
    const flipped = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`
    for (const token of ['garbage', `${id}.${flipped}`, `${otherId}.${secret}`, `0.${secret}`, `${real}x`]) {
      const reply = await verify(token)
      expect(reply.status, token).toBe(400)
      expect(reply.body).toEqual({ detail: expect.any(String) })
    }
    expect((await verify('')).status).toBe(422)
    expect((await request('POST', '/auth/verify-email', { json: {} })).status).toBe(422)
    const otherTokens = await login(request, other)
    expect((await profile(other, otherTokens.access_token)).email_verified).toBe(false)
    expect((await verify(real)).status).toBe(200)
  })

  it('works over tRPC as auth.verifyEmail, from the same procedure', async () => {
    const user = newUser('trpcverify')
    await register(request, user)
    const token = await verificationToken(user.email)
    const call = (t: string) =>
      fetch(`${server.url}/trpc/auth.verifyEmail`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: t }),
      })
    const ok = await call(token)
    expect(ok.status).toBe(200)
    expect(await ok.json()).toEqual({ result: { data: { message: 'Email address verified' } } })
    const reused = await call(token)
    expect(reused.status).toBe(400)
    expect(((await reused.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
      'BAD_REQUEST',
    )
  })

  it('a change of address takes effect at once, unverified; the token goes to the new address, a notice to the old; reset tokens and the old token die', async () => {
    const user = newUser('mover')
    await register(request, user)
    const oldToken = await verificationToken(user.email)
    const tokens = await login(request, user)
    expect(
      (await request('POST', '/auth/password-reset-request', { json: { email: user.email } })).status,
    ).toBe(200)
    const [resetMail] = await waitForMailsTo(user.email, 1, 'Reset your password')
    const resetToken = tokenIn(resetMail, RESET_TOKEN)

    const newEmail = `moved.${user.username}@example.org`
    const changed = await request('PUT', '/auth/profile', {
      token: tokens.access_token,
      json: { email: newEmail, current_password: user.password },
    })
    expect(changed.status, JSON.stringify(changed.body)).toBe(200)
    expect(changed.body).toMatchObject({ email: newEmail, email_verified: false, pending_email: null })

    const [notice] = await waitForMailsTo(user.email, 1, 'Your email address was changed')
    expect(notice.text).toContain(user.username)
    expect(notice.text).toContain(`m***@example.org`)
    expect(notice.text).not.toContain(newEmail)
    const newToken = await verificationToken(newEmail)
    // Only the registration token went to the old address.
    expect(mailsTo(user.email, VERIFY_SUBJECT)).toHaveLength(1)

    const reset = await request('POST', '/auth/password-reset', {
      json: { token: resetToken, new_password: `Never-Applied-${user.username}` },
    })
    expect(reset.status).toBe(400)
    expect((await verify(oldToken)).status).toBe(400)
    expect((await verify(newToken)).status).toBe(200)
    expect(await profile({ ...user, email: newEmail }, tokens.access_token)).toMatchObject({
      email: newEmail,
      email_verified: true,
    })

    const activity = await request('GET', '/auth/activity', { token: tokens.access_token })
    const types: string[] = activity.body.map((a: { type: string }) => a.type)
    expect(types.slice(0, 2)).toEqual(['email_verified', 'email_changed'])
    expect(types).not.toContain('email_verification_requested')
  })

  it('a second change voids the token of the first', async () => {
    const user = newUser('twicemover')
    await register(request, user)
    const tokens = await login(request, user)
    const change = (email: string) =>
      request('PUT', '/auth/profile', {
        token: tokens.access_token,
        json: { email, current_password: user.password },
      })
    const first = `first.${user.username}@example.org`
    const second = `second.${user.username}@example.org`
    expect((await change(first)).status).toBe(200)
    const firstToken = await verificationToken(first)
    expect((await change(second)).status).toBe(200)
    const secondToken = await verificationToken(second)
    expect((await verify(firstToken)).status).toBe(400)
    expect((await verify(secondToken)).status).toBe(200)
  })
})

describe('REQUIRE_VERIFIED_EMAIL=1', () => {
  const BOOTSTRAP = 'email-verification-bootstrap-4567'
  const TTL_SECONDS = 3600
  let server: TestServer
  let clock: TestClock
  let request: Api

  beforeAll(async () => {
    clock = testClock()
    server = await smtpServer(
      {
        ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP,
        REQUIRE_VERIFIED_EMAIL: '1',
        EMAIL_VERIFICATION_TTL_SECONDS: String(TTL_SECONDS),
      },
      clock,
    )
    request = api(server.url)
  })
  afterAll(async () => {
    await server?.close()
  })

  const verify = (token: string) => request('POST', '/auth/verify-email', { json: { token } })
  const formLogin = (path: string, user: NewUser, password = user.password) =>
    request('POST', path, { form: { username: user.username, password } })
  const jsonLogin = (path: string, user: NewUser) =>
    request('POST', path, { json: { username: user.username, password: user.password } })

  async function verifiedUser(tag: string): Promise<NewUser> {
    const user = newUser(tag)
    await register(request, user)
    expect((await verify(await verificationToken(user.email))).status).toBe(200)
    return user
  }

  it('every login route answers 403 for an unverified address, saying so, until it is verified', async () => {
    const user = newUser('unverified')
    const vendor = { ...newUser('unvendor'), company_name: 'Pending Goods' }
    const admin = newUser('unadmin')
    await register(request, user)
    expect((await request('POST', '/vendor/register_vendor', { json: vendor })).status).toBe(200)
    expect(
      (await request('POST', '/admin/register', { json: admin, headers: { 'x-bootstrap-token': BOOTSTRAP } }))
        .status,
    ).toBe(200)
    const attempts = [
      () => formLogin('/auth/login', user),
      () => formLogin('/token', user),
      () => jsonLogin('/vendor/login', vendor),
      () => jsonLogin('/admin/login', admin),
    ]
    for (const attempt of attempts) {
      const refused = await attempt()
      expect(refused.status, JSON.stringify(refused.body)).toBe(403)
      expect(refused.body).toEqual({ detail: expect.stringMatching(/email address not verified/i) })
      expect(refused.body).not.toHaveProperty('access_token')
    }
    // Without the password nothing is told: a wrong one is the usual 401.
    expect((await formLogin('/auth/login', user, `${user.password}-wrong`)).status).toBe(401)

    for (const who of [user, vendor, admin])
      expect((await verify(await verificationToken(who.email))).status).toBe(200)
    for (const attempt of attempts) {
      const ok = await attempt()
      expect(ok.status, JSON.stringify(ok.body)).toBe(200)
      expect(typeof ok.body.access_token).toBe('string')
    }
  })

  it('a refused login mails a new token when the last one is 5 minutes old, and the old one stops working', async () => {
    const user = newUser('lostmail')
    await register(request, user)
    const first = await verificationToken(user.email)
    expect((await formLogin('/auth/login', user)).status).toBe(403)
    await server.runtime.afterAnswer.settled()
    await sleep(QUIET_MS)
    expect(mailsTo(user.email, VERIFY_SUBJECT)).toHaveLength(1) // the first is still fresh

    clock.advance(5 * 60_000)
    expect((await formLogin('/auth/login', user)).status).toBe(403)
    const second = await verificationToken(user.email, 2)
    expect(second).not.toBe(first)
    expect((await verify(first)).status).toBe(400)
    expect((await verify(second)).status).toBe(200)
    expect((await formLogin('/auth/login', user)).status).toBe(200)
  })

  it('EMAIL_VERIFICATION_TTL_SECONDS sets the lifetime', async () => {
    const user = newUser('shortttl')
    await register(request, user)
    const token = await verificationToken(user.email)
    clock.advance(TTL_SECONDS * 1000)
    expect((await verify(token)).status).toBe(400)
  })

  it('a change of address waits for its confirmation: the old address stays, pending_email shows the new one', async () => {
    const user = await verifiedUser('pendingmover')
    const tokens = await login(request, user)
    // A reset token mailed to the old address before the change...
    await request('POST', '/auth/password-reset-request', { json: { email: user.email } })
    const resetToken = tokenIn((await waitForMailsTo(user.email, 1, 'Reset your password'))[0], RESET_TOKEN)

    const newEmail = `pending.${user.username}@example.org`
    const changed = await request('PUT', '/auth/profile', {
      token: tokens.access_token,
      json: { email: newEmail, current_password: user.password },
    })
    expect(changed.status, JSON.stringify(changed.body)).toBe(200)
    expect(Object.keys(changed.body).sort()).toEqual(USER_RESPONSE_KEYS)
    expect(changed.body).toMatchObject({ email: user.email, email_verified: true, pending_email: newEmail })

    const [notice] = await waitForMailsTo(user.email, 1, 'Your email address is about to change')
    expect(notice.text).toContain('p***@example.org')
    const token = await verificationToken(newEmail)
    // Until confirmed: the old address is the account's, and the new one is nobody's.
    const self = await request('GET', `/auth/verify-user/${user.username}`, { token: tokens.access_token })
    expect(self.body).toMatchObject({ email: user.email, pending_email: newEmail })
    expect((await formLogin('/auth/login', user)).status).toBe(200)
    const viewer = await verifiedUser('pendingviewer')
    const viewerTokens = await login(request, viewer)
    const seen = await request('GET', `/auth/verify-user/${user.username}`, {
      token: viewerTokens.access_token,
    })
    expect(seen.body.pending_email).toBe('p***@example.org')

    expect((await verify(token)).status).toBe(200)
    const after = await request('GET', `/auth/verify-user/${user.username}`, { token: tokens.access_token })
    expect(after.body).toMatchObject({ email: newEmail, email_verified: true, pending_email: null })
    await waitForMailsTo(user.email, 1, 'Your email address was changed')

    // ...dies with the change; the old address is free, the new one taken.
    const reset = await request('POST', '/auth/password-reset', {
      json: { token: resetToken, new_password: `Never-Applied-${user.username}` },
    })
    expect(reset.status).toBe(400)
    expect(
      (await request('POST', '/auth/register', { json: { ...newUser('heir'), email: user.email } })).status,
    ).toBe(200)
    expect(
      (await request('POST', '/auth/register', { json: { ...newUser('late'), email: newEmail } })).status,
    ).toBe(409)
    const activity = await request('GET', '/auth/activity', { token: tokens.access_token })
    expect(activity.body.slice(0, 2).map((a: { type: string }) => a.type)).toEqual([
      'email_verified',
      'email_changed',
    ])
  })

  it('a pending change ends when its token expires; resend then goes to the current address', async () => {
    const user = newUser('expiringmove')
    await register(request, user)
    // Unverified: the account holder cannot sign in, so verify first, then change.
    expect((await verify(await verificationToken(user.email))).status).toBe(200)
    const tokens = await login(request, user)
    const newEmail = `expiring.${user.username}@example.org`
    const changed = await request('PUT', '/auth/profile', {
      token: tokens.access_token,
      json: { email: newEmail, current_password: user.password },
    })
    expect(changed.body.pending_email).toBe(newEmail)
    const token = await verificationToken(newEmail)
    clock.advance(TTL_SECONDS * 1000)
    const fresh = await login(request, user)
    const self = await request('GET', `/auth/verify-user/${user.username}`, { token: fresh.access_token })
    expect(self.body).toMatchObject({ email: user.email, pending_email: null, email_verified: true })
    expect((await verify(token)).status).toBe(400)
    // Nothing left to confirm.
    expect((await request('POST', '/auth/verify-email/resend', { token: fresh.access_token })).status).toBe(
      400,
    )
  })

  it('resend during a pending change goes to the new address', async () => {
    const user = await verifiedUser('resendpending')
    const tokens = await login(request, user)
    const newEmail = `resent.${user.username}@example.org`
    await request('PUT', '/auth/profile', {
      token: tokens.access_token,
      json: { email: newEmail, current_password: user.password },
    })
    const first = await verificationToken(newEmail)
    clock.advance(61_000)
    const resent = await request('POST', '/auth/verify-email/resend', { token: tokens.access_token })
    expect(resent.status).toBe(200)
    const second = await verificationToken(newEmail, 2)
    expect((await verify(first)).status).toBe(400)
    expect((await verify(second)).status).toBe(200)
    const self = await request('GET', `/auth/verify-user/${user.username}`, { token: tokens.access_token })
    expect(self.body.email).toBe(newEmail)
  })

  it('a taken address answers 409 at once, or at the confirmation when it was taken meanwhile', async () => {
    const user = await verifiedUser('contested')
    const other = await verifiedUser('incumbent')
    const tokens = await login(request, user)
    const change = (email: string) =>
      request('PUT', '/auth/profile', {
        token: tokens.access_token,
        json: { email, current_password: user.password },
      })
    expect((await change(other.email.toUpperCase())).status).toBe(409)

    const wanted = `wanted.${user.username}@example.org`
    expect((await change(wanted)).status).toBe(200)
    const token = await verificationToken(wanted)
    // Not claimed until confirmed: someone else registers it first.
    expect(
      (await request('POST', '/auth/register', { json: { ...newUser('squatter'), email: wanted } })).status,
    ).toBe(200)
    const late = await verify(token)
    expect(late.status).toBe(409)
    const self = await request('GET', `/auth/verify-user/${user.username}`, { token: tokens.access_token })
    expect(self.body.email).toBe(user.email)
  })
})

describe('a read-model file from before email verification', () => {
  it('gains the new columns at start (idempotently) and projects into them', async () => {
    const env = { SMTP_URL: `smtp://127.0.0.1:${smtp.port}` }
    const server = await startServer(env)
    const dataDir = server.dataDir
    const user = newUser('oldfile')
    await register(api(server.url), user)
    const token = await verificationToken(user.email)
    await server.stop()

    // The users table as the first release wrote it: without the three columns.
    const db = new DatabaseSync(join(dataDir, 'read-models.db'))
    for (const column of ['email_verified', 'pending_email', 'pending_email_expires_at'])
      db.exec(`ALTER TABLE users DROP COLUMN ${column}`)
    db.close()

    const first = await startServer(env, dataDir)
    await first.stop()
    const restarted = await startServer(env, dataDir) // a second start finds them there
    try {
      const request = api(restarted.url)
      const tokens = await login(request, user)
      const self = await request('GET', `/auth/verify-user/${user.username}`, { token: tokens.access_token })
      expect(self.status).toBe(200)
      expect(self.body).toMatchObject({ email_verified: false, pending_email: null })
      expect((await request('POST', '/auth/verify-email', { json: { token } })).status).toBe(200)
      const after = await request('GET', `/auth/verify-user/${user.username}`, { token: tokens.access_token })
      expect(after.body.email_verified).toBe(true)
    } finally {
      await restarted.close()
    }
  })
})
