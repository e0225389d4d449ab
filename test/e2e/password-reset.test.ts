/**
 * Password reset end to end over HTTP, with the mail delivered to a real SMTP server
 * (`smtp-server`): the request, the mailed single-use token, session revocation, expiry on a
 * clock the test moves, and delivery that survives an SMTP server that is down at first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type RecordingLogger,
  recordingLogger,
  startControlledServer,
  type TestClock,
  testClock,
} from '../support/controlled-server.ts'
import { type Api, api, login, type NewUser, newUser, register } from '../support/e2e.ts'
import type { TestServer } from '../support/server.ts'
import { type CapturedMail, freePort, type SmtpSink, startSmtp } from '../support/smtp.ts'

const MAIL_FROM = 'Auth Service <no-reply@auth.test>'
const MAIL_FROM_ADDRESS = 'no-reply@auth.test'
const GENERIC_ANSWER = 'If an account with that email exists, a password reset link has been sent.'
const RESET_TOKEN = /Reset token: (\d+\.[A-Za-z0-9_-]{43})\b/
/** How long "no mail arrives" is waited for; a real mail arrives within milliseconds. */
const QUIET_MS = 1_500

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function tokenIn(mail: CapturedMail): string {
  const match = RESET_TOKEN.exec(mail.text)
  expect(match, `no reset token in the mail:\n${mail.text}`).not.toBeNull()
  return match![1]
}

/** Registering mails too (the address's verification token): these tests count reset mails only. */
const RESET_SUBJECT = 'Reset your password'
const resetMails = (smtp: SmtpSink): CapturedMail[] =>
  smtp.mails.filter((m) => m.headers.subject === RESET_SUBJECT)

function mailsTo(smtp: SmtpSink, email: string): CapturedMail[] {
  return resetMails(smtp).filter((m) => m.envelopeTo.some((to) => to.toLowerCase() === email.toLowerCase()))
}

/** Waits until `count` mails to `email` arrived, and returns them. */
async function waitForMailsTo(smtp: SmtpSink, email: string, count: number): Promise<CapturedMail[]> {
  const deadline = Date.now() + 10_000
  while (mailsTo(smtp, email).length < count) {
    if (Date.now() > deadline) throw new Error(`expected ${count} mail(s) to ${email}`)
    await sleep(20)
  }
  return mailsTo(smtp, email)
}

describe('with a working SMTP server', () => {
  let smtp: SmtpSink
  let server: TestServer
  let clock: TestClock
  let request: Api

  beforeAll(async () => {
    smtp = await startSmtp()
    clock = testClock()
    server = await startControlledServer({
      clock,
      env: { SMTP_URL: `smtp://127.0.0.1:${smtp.port}`, MAIL_FROM },
    })
    request = api(server.url)
  })
  afterAll(async () => {
    await server?.close()
    await smtp?.close()
  })

  /** Registers a user, asks for a reset and returns the token from the one mail that arrives. */
  async function mailedToken(user: NewUser): Promise<string> {
    const before = mailsTo(smtp, user.email).length
    const reply = await request('POST', '/auth/password-reset-request', { json: { email: user.email } })
    expect(reply.status).toBe(200)
    const mails = await waitForMailsTo(smtp, user.email, before + 1)
    return tokenIn(mails[mails.length - 1])
  }

  const loginStatus = async (user: NewUser, password = user.password): Promise<number> =>
    (await request('POST', '/auth/login', { form: { username: user.username, password } })).status

  const reset = (token: string, new_password: string) =>
    request('POST', '/auth/password-reset', { json: { token, new_password } })

  it('a request for an existing email answers 200 and mails one token to it from MAIL_FROM', async () => {
    const user = newUser('mailme')
    const { id } = await register(request, user)
    const total = resetMails(smtp).length
    const reply = await request('POST', '/auth/password-reset-request', { json: { email: user.email } })
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ message: GENERIC_ANSWER })
    const [mail] = await waitForMailsTo(smtp, user.email, 1)
    // Exactly one: nothing more arrives for this address, and no mail went anywhere else.
    await sleep(QUIET_MS)
    expect(mailsTo(smtp, user.email)).toHaveLength(1)
    expect(resetMails(smtp)).toHaveLength(total + 1)
    expect(mail.envelopeTo).toEqual([user.email])
    expect(mail.envelopeFrom).toBe(MAIL_FROM_ADDRESS)
    expect(mail.headers.from).toContain(MAIL_FROM_ADDRESS)
    expect(mail.headers.from).toContain('Auth Service')
    expect(mail.headers.to).toContain(user.email)
    expect(mail.headers.subject).toBeTruthy()
    const token = tokenIn(mail)
    expect(token.startsWith(`${id}.`)).toBe(true)
    // The token is never in the HTTP answer.
    expect(JSON.stringify(reply.body)).not.toContain(token.split('.')[1])
  })

  it('a request for an unknown email answers the identical 200 body and sends no mail', async () => {
    const user = newUser('known')
    await register(request, user)
    const known = await request('POST', '/auth/password-reset-request', { json: { email: user.email } })
    await waitForMailsTo(smtp, user.email, 1)
    const total = resetMails(smtp).length
    const unknownEmail = `nobody.${Date.now()}@example.com`
    const unknown = await request('POST', '/auth/password-reset-request', { json: { email: unknownEmail } })
    expect(unknown.status).toBe(200)
    expect(unknown.body).toEqual(known.body)
    expect(unknown.headers.get('content-type')).toBe(known.headers.get('content-type'))
    await sleep(QUIET_MS)
    expect(mailsTo(smtp, unknownEmail)).toHaveLength(0)
    expect(resetMails(smtp)).toHaveLength(total)
  })

  it('the email is matched case-insensitively', async () => {
    const user = newUser('casemail')
    await register(request, user)
    const reply = await request('POST', '/auth/password-reset-request', {
      json: { email: user.email.toUpperCase() },
    })
    expect(reply.status).toBe(200)
    const [mail] = await waitForMailsTo(smtp, user.email, 1)
    expect((await reset(tokenIn(mail), `Any-Case-M4il-${user.username}`)).status).toBe(200)
  })

  it('the token sets the new password: old password 401, new password 200', async () => {
    const user = newUser('reset')
    await register(request, user)
    const token = await mailedToken(user)
    const newPassword = `N3w-Passw0rd!-${user.username}`
    const reply = await reset(token, newPassword)
    expect(reply.status, JSON.stringify(reply.body)).toBe(200)
    expect(typeof reply.body.message).toBe('string')
    const old = await request('POST', '/auth/login', {
      form: { username: user.username, password: user.password },
    })
    expect(old.status).toBe(401)
    const fresh = await request('POST', '/auth/login', {
      form: { username: user.username, password: newPassword },
    })
    expect(fresh.status).toBe(200)
    expect(typeof fresh.body.refresh_token).toBe('string')
  })

  it('revokes every session of the user: access and refresh tokens from before answer 401', async () => {
    const user = newUser('revoke')
    await register(request, user)
    const first = await login(request, user)
    const second = await login(request, user)
    expect((await request('GET', '/protected', { token: first.access_token })).status).toBe(200)
    const token = await mailedToken(user)
    // Asking for a reset alone changes nothing.
    expect((await request('GET', '/protected', { token: second.access_token })).status).toBe(200)
    expect((await reset(token, `An0ther-Secret-${user.username}`)).status).toBe(200)
    for (const old of [first, second]) {
      const access = await request('GET', '/protected', { token: old.access_token })
      expect(access.status).toBe(401)
      expect(access.headers.get('www-authenticate')).toBe('Bearer')
      const refresh = await request('POST', '/auth/token-refresh', {
        json: { refresh_token: old.refresh_token },
      })
      expect(refresh.status).toBe(401)
    }
  })

  it('a token works once: the second use answers 400', async () => {
    const user = newUser('twice')
    await register(request, user)
    const token = await mailedToken(user)
    expect((await reset(token, `Onc3-Only-${user.username}`)).status).toBe(200)
    const again = await reset(token, `Tw1ce-Not-${user.username}`)
    expect(again.status).toBe(400)
    expect(typeof again.body.detail).toBe('string')
    // The first new password is the one that holds.
    const ok = await request('POST', '/auth/login', {
      form: { username: user.username, password: `Onc3-Only-${user.username}` },
    })
    expect(ok.status).toBe(200)
  })

  it('unknown and garbage tokens answer 400', async () => {
    const user = newUser('garbage')
    await register(request, user)
    const real = await mailedToken(user)
    const [id, secret] = real.split('.')
    const otherSecret = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`
    const candidates = [
      'garbage',
      '',
      `${id}.${otherSecret}`,
      `${Number(id) + 1000}.${secret}`,
      `0.${secret}`,
      `.${secret}`,
      `${id}.`,
      `${id}.${secret}x`,
      `-1.${secret}`,
    ]
    for (const token of candidates) {
      const reply = await reset(token, `Whatever-Str0ng-${user.username}`)
      // An empty token fails the schema (422); every other one is a well-formed request with a bad token.
      expect(reply.status, JSON.stringify(token)).toBe(token === '' ? 422 : 400)
    }
    // None of them touched the password or the real token.
    expect(await loginStatus(user)).toBe(200)
    expect((await reset(real, `Still-W0rks-${user.username}`)).status).toBe(200)
  })

  it('a token older than 30 minutes answers 400, a younger one still works', async () => {
    const user = newUser('expiry')
    await register(request, user)
    const older = await mailedToken(user)
    clock.advance(10 * 60_000)
    const younger = await mailedToken(user)
    clock.advance(20 * 60_000 + 1_000) // the older token is now 30 min 1 s old, the younger 20 min 1 s
    const expired = await reset(older, `Expired-T0ken-${user.username}`)
    expect(expired.status).toBe(400)
    expect(typeof expired.body.detail).toBe('string')
    expect(await loginStatus(user)).toBe(200)
    const ok = await reset(younger, `Y0unger-T0ken-${user.username}`)
    expect(ok.status).toBe(200)
  })

  it('a weak new password answers 422 at body.new_password and leaves the token usable', async () => {
    const user = newUser('weak')
    await register(request, user)
    const token = await mailedToken(user)
    for (const weak of ['short', 'password123', user.email, 'x'.repeat(129)]) {
      const reply = await reset(token, weak)
      expect(reply.status, weak).toBe(422)
      expect(reply.body.detail[0].loc).toEqual(['body', 'new_password'])
      expect(typeof reply.body.detail[0].msg).toBe('string')
    }
    expect(await loginStatus(user)).toBe(200)
    expect((await reset(token, `Str0ng-Enough-${user.username}`)).status).toBe(200)
  })

  it('answers 422 for a malformed email', async () => {
    const reply = await request('POST', '/auth/password-reset-request', { json: { email: 'not-an-email' } })
    expect(reply.status).toBe(422)
    expect(reply.body.detail[0].loc).toEqual(['body', 'email'])
  })
})

describe('with the SMTP server down at first', () => {
  let server: TestServer
  let smtp: SmtpSink | undefined
  let log: RecordingLogger

  afterAll(async () => {
    await server?.close()
    await smtp?.close()
  })

  it('answers 200 at once and delivers the mail on a retry once SMTP is up', async () => {
    const port = await freePort()
    log = recordingLogger()
    server = await startControlledServer({ log, env: { SMTP_URL: `smtp://127.0.0.1:${port}`, MAIL_FROM } })
    const request = api(server.url)
    const user = newUser('retry')
    await register(request, user)
    const reply = await request('POST', '/auth/password-reset-request', { json: { email: user.email } })
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ message: GENERIC_ANSWER })
    // The first attempt failed (nothing listens); only then does the SMTP server come up.
    const failure = await log.waitFor('mail delivery failed, will retry')
    expect(failure.fields.attempt).toBe(1)
    smtp = await startSmtp(port)
    const [mail] = await waitForMailsTo(smtp, user.email, 1)
    expect(mail.envelopeFrom).toBe(MAIL_FROM_ADDRESS)
    const token = tokenIn(mail)
    const reset = await request('POST', '/auth/password-reset', {
      json: { token, new_password: `Retr1ed-Mail-${user.username}` },
    })
    expect(reset.status).toBe(200)
    expect(
      log.entries.filter((e) => e.message === 'mail sent' && e.fields.subject === RESET_SUBJECT),
    ).toHaveLength(1)
  })
})

describe('without SMTP_URL', () => {
  let server: TestServer
  let log: RecordingLogger

  beforeAll(async () => {
    log = recordingLogger()
    server = await startControlledServer({ log })
  })
  afterAll(async () => {
    await server?.close()
  })

  it('still answers 200 and writes the mail to the log', async () => {
    const request = api(server.url)
    const user = newUser('logmail')
    await register(request, user)
    const reply = await request('POST', '/auth/password-reset-request', { json: { email: user.email } })
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ message: GENERIC_ANSWER })
    await log.waitFor('mail (no SMTP_URL configured, written to the log)')
    await server.runtime.afterAnswer.settled()
    const entry = log.entries.find(
      (e) =>
        e.message === 'mail (no SMTP_URL configured, written to the log)' &&
        e.fields.subject === RESET_SUBJECT,
    )
    expect(entry?.fields.to).toBe(user.email)
    const token = RESET_TOKEN.exec(String(entry?.fields.text))?.[1]
    expect(token).toBeDefined()
    const reset = await request('POST', '/auth/password-reset', {
      json: { token, new_password: `L0gged-Mail-${user.username}` },
    })
    expect(reset.status).toBe(200)
  })
})
