/**
 * Two-factor authentication end to end over HTTP: enrolment, the login challenge, verify-2fa
 * with TOTP (replay, drift window) and recovery codes, lockout, test-2fa and disable-2fa.
 * TOTP codes are computed here with node:crypto (RFC 6238), not with the service's code. The
 * service runs on a clock the test moves, so time steps are exact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { base32Decode, hotp, TOTP_PERIOD_MS, totp } from '../../harness/totp.ts'
import { startControlledServer, type TestClock, testClock } from '../support/controlled-server.ts'
import { api, claimsOf, login, type NewUser, newUser, type Reply, register } from '../support/e2e.ts'
import type { call, TestServer } from '../support/server.ts'

const PERIOD_MS = TOTP_PERIOD_MS
const ADMIN_BOOTSTRAP_TOKEN = 'two-factor-e2e-bootstrap'
const stepAt = (date: Date): number => Math.floor(date.getTime() / PERIOD_MS)

/** A well-formed code that is valid for none of the steps around `step`. */
function wrongCode(secret: string, step: number): string {
  const valid = new Set([-2, -1, 0, 1, 2].map((d) => totp(secret, step + d)))
  for (let n = 0; ; n += 111_111) {
    const candidate = String(n % 1_000_000).padStart(6, '0')
    if (!valid.has(candidate)) return candidate
  }
}

describe('the test TOTP implementation', () => {
  it('matches the RFC 6238 SHA1 test vectors (last 6 digits)', () => {
    const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ' // base32 of ASCII "12345678901234567890"
    expect(base32Decode(secret).toString('ascii')).toBe('12345678901234567890')
    const vectors: [number, string][] = [
      [59, '94287082'],
      [1111111109, '07081804'],
      [1111111111, '14050471'],
      [1234567890, '89005924'],
      [2000000000, '69279037'],
      [20000000000, '65353130'],
    ]
    for (const [seconds, code] of vectors) {
      expect(hotp(base32Decode(secret), Math.floor(seconds / 30), 8)).toBe(code)
      expect(totp(secret, Math.floor(seconds / 30))).toBe(code.slice(2))
    }
  })
})

// --- the service ---

let server: TestServer
let clock: TestClock
/** Every TOTP secret handed out by generate-2fa-code, to check no other response carries one. */
const secrets = new Set<string>()

function assertNoSecret(reply: Reply, where: string): void {
  const texts = [typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body)]
  // A secret inside a JWT would be base64url-encoded: read the payloads too.
  for (const value of Object.values(typeof reply.body === 'object' && reply.body ? reply.body : {})) {
    if (typeof value === 'string' && /^eyJ[\w-]*\.eyJ[\w-]*\.[\w-]+$/.test(value)) {
      texts.push(JSON.stringify(claimsOf(value)))
    }
  }
  for (const secret of secrets) {
    for (const text of texts) {
      expect(text.includes(secret), `${where} leaks a TOTP secret: ${text.slice(0, 200)}`).toBe(false)
    }
  }
}

/** HTTP with the shared leak checks, plus: no TOTP secret outside generate-2fa-code. */
async function request(method: string, path: string, options?: Parameters<typeof call>[3]): Promise<Reply> {
  const reply = await api(server.url)(method, path, options)
  if (path === '/auth/generate-2fa-code' && reply.status === 200) secrets.add(reply.body.secret)
  else assertNoSecret(reply, `${method} ${path}`)
  return reply
}

beforeAll(async () => {
  // Start in the middle of a time step, so nothing depends on where the real clock is.
  clock = testClock((Math.floor(Date.now() / PERIOD_MS) + 0.5) * PERIOD_MS)
  server = await startControlledServer({ clock, env: { ADMIN_BOOTSTRAP_TOKEN } })
})
afterAll(async () => {
  await server?.close()
})

const now = (): Date => clock.now()
const nextStep = (): void => clock.advance(PERIOD_MS)

type Enrolled = {
  user: NewUser
  secret: string
  recoveryCodes: string[]
  pwdToken: string
  enabledStep: number
}

async function passwordLogin(user: NewUser): Promise<Reply> {
  return request('POST', '/auth/login', { form: { username: user.username, password: user.password } })
}

/** Registers, logs in (a pwd-only session) and enables 2FA with the code of the current step. */
async function enrolledUser(tag: string): Promise<Enrolled> {
  const user = newUser(tag)
  await register(request, user)
  const pwdToken = (await login(request, user)).access_token
  const setup = await request('GET', '/auth/generate-2fa-code', { token: pwdToken })
  expect(setup.status, JSON.stringify(setup.body)).toBe(200)
  const enabledStep = stepAt(now())
  const enabled = await request('POST', '/auth/enable-2fa', {
    token: pwdToken,
    json: { code: totp(setup.body.secret, enabledStep) },
  })
  expect(enabled.status, JSON.stringify(enabled.body)).toBe(200)
  return {
    user,
    secret: setup.body.secret,
    recoveryCodes: enabled.body.recovery_codes,
    pwdToken,
    enabledStep,
  }
}

/** A TwoFactorChallenge: a 5-minute challenge token, and nothing else (no refresh token). */
function expectChallenge(reply: Reply): void {
  expect(Object.keys(reply.body).sort()).toEqual(['access_token', 'expires_in', 'requires_2fa', 'token_type'])
  expect(reply.body.requires_2fa).toBe(true)
  expect(reply.body.expires_in).toBe(300)
  expect(reply.body.token_type).toBe('bearer')
}

async function challengeFor(user: NewUser): Promise<string> {
  const reply = await passwordLogin(user)
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  expect(reply.body.requires_2fa).toBe(true)
  return reply.body.access_token
}

async function verify(challenge: string, code: string): Promise<Reply> {
  return request('POST', '/auth/verify-2fa', { token: challenge, json: { code } })
}

/** A full login: password, then a TOTP code of a step after every step used so far. */
async function otpLogin(account: Enrolled): Promise<Reply> {
  nextStep()
  const challenge = await challengeFor(account.user)
  const reply = await verify(challenge, totp(account.secret, stepAt(now())))
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  return reply
}

describe('GET /auth/generate-2fa-code', () => {
  it('returns a base32 secret, an otpauth URL with issuer, SHA1, 6 digits, 30 s, and an SVG QR code', async () => {
    const user = newUser('gen')
    await register(request, user)
    const { access_token } = await login(request, user)
    const reply = await request('GET', '/auth/generate-2fa-code', { token: access_token })
    expect(reply.status).toBe(200)
    expect(Object.keys(reply.body).sort()).toEqual(['otpauth_url', 'qr_svg', 'secret'])
    const { secret, otpauth_url, qr_svg } = reply.body
    expect(secret).toMatch(/^[A-Z2-7]+=*$/)
    expect(base32Decode(secret).length).toBeGreaterThanOrEqual(16)
    const url = new URL(otpauth_url)
    expect(url.protocol).toBe('otpauth:')
    expect(otpauth_url.startsWith('otpauth://totp/')).toBe(true)
    expect(decodeURIComponent(url.pathname)).toContain(user.username)
    expect(url.searchParams.get('secret')).toBe(secret)
    expect(url.searchParams.get('issuer')).toBe('auth-service')
    expect(url.searchParams.get('algorithm')).toBe('SHA1')
    expect(url.searchParams.get('digits')).toBe('6')
    expect(url.searchParams.get('period')).toBe('30')
    expect(typeof qr_svg).toBe('string')
    expect(qr_svg.trimStart().startsWith('<svg')).toBe(true)
    expect(qr_svg).toContain('</svg>')
  })

  it('starts afresh each time: a new secret, and only the newest one can enable', async () => {
    const user = newUser('regen')
    await register(request, user)
    const { access_token } = await login(request, user)
    const first = await request('GET', '/auth/generate-2fa-code', { token: access_token })
    const second = await request('GET', '/auth/generate-2fa-code', { token: access_token })
    expect(first.status).toBe(200)
    expect(second.status).toBe(200)
    expect(second.body.secret).not.toBe(first.body.secret)
    expect(second.body.otpauth_url).not.toBe(first.body.otpauth_url)
    const step = stepAt(now())
    const stale = totp(first.body.secret, step)
    // (Vanishingly unlikely that both secrets give the same code; then the check says nothing.)
    if (stale !== totp(second.body.secret, step)) {
      const old = await request('POST', '/auth/enable-2fa', { token: access_token, json: { code: stale } })
      expect(old.status).toBe(400)
    }
    const ok = await request('POST', '/auth/enable-2fa', {
      token: access_token,
      json: { code: totp(second.body.secret, step) },
    })
    expect(ok.status).toBe(200)
  })

  it('answers 401 without a token', async () => {
    const reply = await request('GET', '/auth/generate-2fa-code')
    expect(reply.status).toBe(401)
    expect(reply.headers.get('www-authenticate')).toBe('Bearer')
  })
})

describe('POST /auth/enable-2fa', () => {
  it('answers 400 when no enrolment was started', async () => {
    const user = newUser('nostart')
    await register(request, user)
    const { access_token } = await login(request, user)
    const reply = await request('POST', '/auth/enable-2fa', { token: access_token, json: { code: '123456' } })
    expect(reply.status).toBe(400)
    expect(typeof reply.body.detail).toBe('string')
  })

  it('answers 400 for a wrong code, then 200 with 10 distinct recovery codes for the right one', async () => {
    const user = newUser('enable')
    await register(request, user)
    const { access_token } = await login(request, user)
    const setup = await request('GET', '/auth/generate-2fa-code', { token: access_token })
    const step = stepAt(now())
    const wrong = await request('POST', '/auth/enable-2fa', {
      token: access_token,
      json: { code: wrongCode(setup.body.secret, step) },
    })
    expect(wrong.status).toBe(400)
    expect(typeof wrong.body.detail).toBe('string')
    // A wrong code does not enable 2FA: login still gives a full token.
    const stillPlain = await passwordLogin(user)
    expect(stillPlain.status).toBe(200)
    expect(stillPlain.body.requires_2fa).toBeUndefined()
    expect(typeof stillPlain.body.refresh_token).toBe('string')

    const ok = await request('POST', '/auth/enable-2fa', {
      token: access_token,
      json: { code: totp(setup.body.secret, step) },
    })
    expect(ok.status).toBe(200)
    expect(typeof ok.body.message).toBe('string')
    const codes: string[] = ok.body.recovery_codes
    expect(codes).toHaveLength(10)
    expect(new Set(codes).size).toBe(10)
    for (const code of codes) {
      expect(typeof code).toBe('string')
      expect(code.length).toBeGreaterThanOrEqual(6)
    }
    const me = await request('GET', `/auth/verify-user/${user.username}`, { token: access_token })
    expect(me.status).toBe(200)
    expect(me.body.is_2fa_enabled).toBe(true)
  })

  it('answers 422 for a malformed code', async () => {
    const user = newUser('malformed')
    await register(request, user)
    const { access_token } = await login(request, user)
    await request('GET', '/auth/generate-2fa-code', { token: access_token })
    const reply = await request('POST', '/auth/enable-2fa', { token: access_token, json: { code: '12' } })
    expect(reply.status).toBe(422)
    expect(reply.body.detail[0].loc).toEqual(['body', 'code'])
  })

  it('once enabled, generate-2fa-code and enable-2fa answer 400', async () => {
    const account = await enrolledUser('twice')
    const again = await request('GET', '/auth/generate-2fa-code', { token: account.pwdToken })
    expect(again.status).toBe(400)
    expect(typeof again.body.detail).toBe('string')
    const reenable = await request('POST', '/auth/enable-2fa', {
      token: account.pwdToken,
      json: { code: totp(account.secret, stepAt(now()) + 1) },
    })
    expect(reenable.status).toBe(400)
  })
})

describe('login of a 2FA account', () => {
  let account: Enrolled
  beforeAll(async () => {
    account = await enrolledUser('chal')
  })

  it.each(['/auth/login', '/token'])('%s returns a TwoFactorChallenge and no refresh token', async (path) => {
    const reply = await request('POST', path, {
      form: { username: account.user.username, password: account.user.password },
    })
    expect(reply.status).toBe(200)
    expectChallenge(reply)
    expect(reply.body.refresh_token).toBeUndefined()
    expect(reply.body.access_token.split('.')).toHaveLength(3)
  })

  it('still refuses a wrong password with 401', async () => {
    const reply = await request('POST', '/auth/login', {
      form: { username: account.user.username, password: `${account.user.password}x` },
    })
    expect(reply.status).toBe(401)
    expect(reply.body.requires_2fa).toBeUndefined()
  })

  it('the challenge token is refused (401) everywhere but verify-2fa', async () => {
    const challenge = await challengeFor(account.user)
    const attempts: [string, string, object?][] = [
      ['GET', '/protected'],
      ['GET', '/auth/sessions'],
      ['GET', `/auth/verify-user/${account.user.username}`],
      ['GET', '/auth/test-2fa'],
      ['GET', '/auth/generate-2fa-code'],
      ['POST', '/auth/enable-2fa', { code: totp(account.secret, stepAt(now()) + 1) }],
      ['POST', '/auth/disable-2fa'],
      ['PUT', '/auth/profile', { full_name: 'Mallory' }],
    ]
    for (const [method, path, json] of attempts) {
      const reply = await request(method, path, { token: challenge, json })
      expect(reply.status, `${method} ${path}`).toBe(401)
      expect(reply.headers.get('www-authenticate'), `${method} ${path}`).toBe('Bearer')
    }
    // And it was not used up by those attempts: verify-2fa still takes it.
    nextStep()
    const ok = await verify(challenge, totp(account.secret, stepAt(now())))
    expect(ok.status).toBe(200)
  })

  it('verify-2fa turns the challenge and a TOTP code into a full Token with amr ["pwd","otp"]', async () => {
    nextStep()
    const challenge = await challengeFor(account.user)
    const reply = await verify(challenge, totp(account.secret, stepAt(now())))
    expect(reply.status).toBe(200)
    expect(Object.keys(reply.body).sort()).toEqual([
      'access_token',
      'expires_in',
      'refresh_token',
      'token_type',
    ])
    expect(reply.body.token_type).toBe('bearer')
    const claims = claimsOf(reply.body.access_token)
    expect(claims.amr).toEqual(['pwd', 'otp'])
    expect(claims.purpose).toBeUndefined()
    const hello = await request('GET', '/protected', { token: reply.body.access_token })
    expect(hello.status).toBe(200)
    expect(hello.body.message).toBe(`Hello, ${account.user.username}`)

    // The challenge is single-use.
    nextStep()
    const reused = await verify(challenge, totp(account.secret, stepAt(now())))
    expect(reused.status).toBe(401)

    // A refreshed token keeps the session's amr.
    const refreshed = await request('POST', '/auth/token-refresh', {
      json: { refresh_token: reply.body.refresh_token },
    })
    expect(refreshed.status).toBe(200)
    expect(claimsOf(refreshed.body.access_token).amr).toEqual(['pwd', 'otp'])
  })

  it('verify-2fa answers 401 without a bearer, or with a full access token instead of a challenge', async () => {
    const code = totp(account.secret, stepAt(now()) + 1)
    const none = await request('POST', '/auth/verify-2fa', { json: { code } })
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).toBe('Bearer')
    const plain = newUser('plainbearer')
    await register(request, plain)
    const { access_token } = await login(request, plain)
    const withAccess = await verify(access_token, code)
    expect(withAccess.status).toBe(401)
    const garbage = await verify('not.a.jwt', code)
    expect(garbage.status).toBe(401)
  })
})

describe('TOTP codes at verify-2fa', () => {
  it('a code is accepted once: the same code with a new challenge answers 401', async () => {
    const account = await enrolledUser('replay')
    nextStep()
    const code = totp(account.secret, stepAt(now()))
    const first = await verify(await challengeFor(account.user), code)
    expect(first.status).toBe(200)
    const replay = await verify(await challengeFor(account.user), code)
    expect(replay.status).toBe(401)
    expect(replay.headers.get('www-authenticate')).toBe('Bearer')
    expect(replay.body.refresh_token).toBeUndefined()
  })

  it('the code used to enable 2FA cannot be replayed at login', async () => {
    const account = await enrolledUser('enablereplay')
    const reply = await verify(await challengeFor(account.user), totp(account.secret, account.enabledStep))
    expect(reply.status).toBe(401)
  })

  it('accepts the next step (±1 for drift) if not used, but not two steps ahead', async () => {
    const account = await enrolledUser('drift')
    const current = stepAt(now())
    const tooFar = await verify(await challengeFor(account.user), totp(account.secret, current + 2))
    expect(tooFar.status).toBe(401)
    const ahead = await verify(await challengeFor(account.user), totp(account.secret, current + 1))
    expect(ahead.status).toBe(200)
    expect(claimsOf(ahead.body.access_token).amr).toEqual(['pwd', 'otp'])
    // Two steps later, the previous step (current - 1 by then) is still in the window, but it is
    // the one just used, so it is refused; the current one works.
    nextStep()
    nextStep()
    const used = await verify(await challengeFor(account.user), totp(account.secret, current + 1))
    expect(used.status).toBe(401)
    const fresh = await verify(await challengeFor(account.user), totp(account.secret, current + 2))
    expect(fresh.status).toBe(200)
  })

  it('accepts the previous step (clock behind) once', async () => {
    const account = await enrolledUser('behind')
    nextStep()
    nextStep()
    const previous = stepAt(now()) - 1
    const reply = await verify(await challengeFor(account.user), totp(account.secret, previous))
    expect(reply.status).toBe(200)
    const again = await verify(await challengeFor(account.user), totp(account.secret, previous))
    expect(again.status).toBe(401)
  })
})

describe('recovery codes at verify-2fa', () => {
  it('a recovery code works once; the second use answers 401', async () => {
    const account = await enrolledUser('recovery')
    const [code, other] = account.recoveryCodes
    const first = await verify(await challengeFor(account.user), code)
    expect(first.status).toBe(200)
    expect(claimsOf(first.body.access_token).amr).toEqual(['pwd', 'otp'])
    const again = await verify(await challengeFor(account.user), code)
    expect(again.status).toBe(401)
    // The others are untouched.
    const second = await verify(await challengeFor(account.user), other)
    expect(second.status).toBe(200)
  })

  it('a made-up recovery code answers 401', async () => {
    const account = await enrolledUser('fakerecovery')
    const reply = await verify(await challengeFor(account.user), 'aaaa-bbbb-cccc')
    expect(reply.status).toBe(401)
  })
})

describe('lockout through verify-2fa', () => {
  it('5 wrong codes throttle the client: its next login answers 423 with Retry-After', async () => {
    const account = await enrolledUser('lock')
    const challenge = await challengeFor(account.user)
    const wrong = wrongCode(account.secret, stepAt(now()))
    for (let i = 1; i <= 5; i += 1) {
      const reply = await verify(challenge, wrong)
      expect(reply.status, `attempt ${i}`).toBe(401)
    }
    const locked = await passwordLogin(account.user)
    expect(locked.status).toBe(423)
    expect(typeof locked.body.detail).toBe('string')
    const retryAfter = Number(locked.headers.get('retry-after'))
    expect(Number.isInteger(retryAfter)).toBe(true)
    expect(retryAfter).toBeGreaterThan(0)
    expect(retryAfter).toBeLessThanOrEqual(15 * 60)
    // A right code with the old challenge does not get past the lock either.
    nextStep()
    const blocked = await verify(challenge, totp(account.secret, stepAt(now())))
    expect(blocked.status).toBe(423)
    // Failures stop new logins, not the sessions already open (an admin's lock does that).
    const open = await request('GET', '/protected', { token: account.pwdToken })
    expect(open.status).toBe(200)
  })

  it('a right password in between does not reset the count of 2FA failures', async () => {
    const account = await enrolledUser('lockreset')
    const wrong = wrongCode(account.secret, stepAt(now()))
    const first = await challengeFor(account.user)
    for (let i = 1; i <= 4; i += 1) expect((await verify(first, wrong)).status, `attempt ${i}`).toBe(401)
    // Only the password: the login is not complete, so the 4 failures still count.
    const second = await challengeFor(account.user)
    expect((await verify(second, wrong)).status).toBe(401)
    const locked = await passwordLogin(account.user)
    expect(locked.status).toBe(423)
    expect(locked.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/)
  })

  it('a successful verify-2fa resets the count', async () => {
    const account = await enrolledUser('lockok')
    const wrong = wrongCode(account.secret, stepAt(now()))
    const challenge = await challengeFor(account.user)
    for (let i = 1; i <= 4; i += 1) expect((await verify(challenge, wrong)).status).toBe(401)
    nextStep()
    expect((await verify(challenge, totp(account.secret, stepAt(now())))).status).toBe(200)
    const next = await challengeFor(account.user)
    for (let i = 1; i <= 4; i += 1) expect((await verify(next, wrong)).status).toBe(401)
    expect((await passwordLogin(account.user)).status).toBe(200)
  })
})

describe('GET /auth/test-2fa and POST /auth/disable-2fa', () => {
  it('test-2fa answers 403 for a pwd-only session and 200 for a session that passed 2FA', async () => {
    const account = await enrolledUser('test2fa')
    const pwdOnly = await request('GET', '/auth/test-2fa', { token: account.pwdToken })
    expect(pwdOnly.status).toBe(403)
    expect(typeof pwdOnly.body.detail).toBe('string')
    const otp = (await otpLogin(account)).body.access_token
    const ok = await request('GET', '/auth/test-2fa', { token: otp })
    expect(ok.status).toBe(200)
    expect(typeof ok.body.message).toBe('string')

    const plain = newUser('test2faplain')
    await register(request, plain)
    const plainToken = (await login(request, plain)).access_token
    expect((await request('GET', '/auth/test-2fa', { token: plainToken })).status).toBe(403)
  })

  it('disable-2fa answers 403 from pwd-only sessions and 200 from an otp session; then login gives a Token', async () => {
    const account = await enrolledUser('disable')
    // The session from before enabling passed only the password.
    const fromPwd = await request('POST', '/auth/disable-2fa', { token: account.pwdToken })
    expect(fromPwd.status).toBe(403)
    // A second account without 2FA.
    const plain = newUser('disableplain')
    await register(request, plain)
    const plainToken = (await login(request, plain)).access_token
    expect((await request('POST', '/auth/disable-2fa', { token: plainToken })).status).toBe(403)
    // Still enabled after the refusals.
    expect((await passwordLogin(account.user)).body.requires_2fa).toBe(true)

    const otp = (await otpLogin(account)).body.access_token
    const disabled = await request('POST', '/auth/disable-2fa', { token: otp })
    expect(disabled.status).toBe(200)
    expect(typeof disabled.body.message).toBe('string')

    const after = await passwordLogin(account.user)
    expect(after.status).toBe(200)
    expect(Object.keys(after.body).sort()).toEqual([
      'access_token',
      'expires_in',
      'refresh_token',
      'token_type',
    ])
    expect(claimsOf(after.body.access_token).amr).toEqual(['pwd'])
    const me = await request('GET', `/auth/verify-user/${account.user.username}`, {
      token: after.body.access_token,
    })
    expect(me.body.is_2fa_enabled).toBe(false)
    // The old secret and recovery codes are gone: enrolment starts over with a new secret.
    const setup = await request('GET', '/auth/generate-2fa-code', { token: after.body.access_token })
    expect(setup.status).toBe(200)
    expect(setup.body.secret).not.toBe(account.secret)
  })
})

describe('the challenge flow at POST /vendor/login and POST /admin/login', () => {
  /** Enables 2FA with a full token from a role-specific login; returns the secret. */
  async function enable(token: string): Promise<string> {
    const setup = await request('GET', '/auth/generate-2fa-code', { token })
    expect(setup.status).toBe(200)
    const enabled = await request('POST', '/auth/enable-2fa', {
      token,
      json: { code: totp(setup.body.secret, stepAt(now())) },
    })
    expect(enabled.status).toBe(200)
    return setup.body.secret
  }

  /**
   * A role login gives a plain Token until 2FA is enabled; then it must answer a
   * TwoFactorChallenge, and verify-2fa gives a full Token.
   */
  async function enableThenChallenge(path: string, user: NewUser, role: string): Promise<void> {
    const credentials = { username: user.username, password: user.password }
    const first = await request('POST', path, { json: credentials })
    expect(first.status).toBe(200)
    expect(first.body.requires_2fa).toBeUndefined()
    const secret = await enable(first.body.access_token)
    const reply = await request('POST', path, { json: credentials })
    expect(reply.status, JSON.stringify(reply.body)).toBe(200)
    expectChallenge(reply)
    const challenge = reply.body.access_token
    expect((await request('GET', '/protected', { token: challenge })).status).toBe(401)
    nextStep()
    const full = await verify(challenge, totp(secret, stepAt(now())))
    expect(full.status).toBe(200)
    expect(typeof full.body.refresh_token).toBe('string')
    const claims = claimsOf(full.body.access_token)
    expect(claims.amr).toEqual(['pwd', 'otp'])
    expect(claims.role).toBe(role)
    const hello = await request('GET', '/protected', { token: full.body.access_token })
    expect(hello.status).toBe(200)
    expect(hello.body.role).toBe(role)
  }

  it('both routes are served (listed in /openapi.json)', async () => {
    const doc = await request('GET', '/openapi.json')
    expect(doc.status).toBe(200)
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/vendor/login', '/admin/login']))
  })

  it('POST /vendor/login answers a challenge for a 2FA vendor, and verify-2fa a vendor Token', async () => {
    const vendor = newUser('vendor2fa')
    const created = await request('POST', '/vendor/register_vendor', {
      json: { ...vendor, company_name: 'Two Factor Goods' },
    })
    expect(created.status, JSON.stringify(created.body)).toBe(200)
    await enableThenChallenge('/vendor/login', vendor, 'vendor')
  })

  it('POST /admin/login answers a challenge for a 2FA admin, and verify-2fa an admin Token', async () => {
    const admin = newUser('admin2fa')
    const created = await request('POST', '/admin/register', {
      json: admin,
      headers: { 'x-bootstrap-token': ADMIN_BOOTSTRAP_TOKEN },
    })
    expect(created.status, JSON.stringify(created.body)).toBe(200)
    expect(created.body.role).toBe('admin')
    await enableThenChallenge('/admin/login', admin, 'admin')
  })

  it('a 2FA user of another role gets 401 there, not a challenge', async () => {
    const account = await enrolledUser('wrongrole')
    for (const path of ['/vendor/login', '/admin/login']) {
      const reply = await request('POST', path, {
        json: { username: account.user.username, password: account.user.password },
      })
      expect(reply.status, path).toBe(401)
      expect(reply.body.requires_2fa, path).toBeUndefined()
      expect(reply.body.access_token, path).toBeUndefined()
    }
  })
})
