/**
 * Attacks on bearer tokens, all over HTTP against GET /protected (401 with
 * `WWW-Authenticate: Bearer`): forged algorithms and keys, injected key references,
 * tampering, time claims, wrong issuer or audience, token-type confusion, tokens that outlive
 * their account or session, and replays of refresh tokens, TOTP codes and reset tokens.
 *
 * The service runs with a signing key this test generated (JWT_PRIVATE_KEY_PEM), so tokens can
 * be forged that differ from a valid one in exactly one respect; a control test shows such a
 * forgery is accepted when nothing is wrong with it. Tokens are assembled here with
 * node:crypto, independent of the service's JWT library.
 */
import {
  createHmac,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign,
} from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TOTP_PERIOD_MS, totp } from '../../harness/totp.ts'
import {
  type RecordingLogger,
  recordingLogger,
  startControlledServer,
  type TestClock,
  testClock,
} from '../support/controlled-server.ts'
import {
  type Api,
  api,
  claimsOf,
  login,
  type NewUser,
  newUser,
  type Reply,
  register,
} from '../support/e2e.ts'
import type { TestServer } from '../support/server.ts'

const ADMIN_BOOTSTRAP_TOKEN = 'token-attacks-bootstrap'
const PERIOD_MS = TOTP_PERIOD_MS
const MAIL_LOGGED = 'mail (no SMTP_URL configured, written to the log)'

// ---------------------------------------------------------------- JWS by hand

const b64url = (data: string | Buffer): string => Buffer.from(data).toString('base64url')
type Header = Record<string, unknown>
type Claims = Record<string, unknown>

function signingInput(header: Header, claims: Claims): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
}

/** An EdDSA (Ed25519) JWS with exactly the header and claims given. */
function signEdDSA(header: Header, claims: Claims, key: KeyObject): string {
  const input = signingInput(header, claims)
  return `${input}.${b64url(sign(null, Buffer.from(input), key))}`
}

function signHmac(header: Header, claims: Claims, secret: Buffer | string): string {
  const input = signingInput(header, claims)
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[header.alg as string] ?? 'sha256'
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`
}

function unsigned(header: Header, claims: Claims, signature = ''): string {
  return `${signingInput(header, claims)}.${signature}`
}

// ---------------------------------------------------------------- the service

const serverKey = generateKeyPairSync('ed25519').privateKey
const attackerKey = generateKeyPairSync('ed25519').privateKey
const attackerJwk = { ...createPublicKey(attackerKey).export({ format: 'jwk' }), kid: 'attacker', use: 'sig' }

let server: TestServer
let clock: TestClock
let log: RecordingLogger
let request: Api
let kid: string
/** The `x` of the server's public key in the JWKS. */
let publicX: string
let adminToken: string

/** A JWKS server an attacker controls: it counts every request it gets. */
let attackerServer: Server
let attackerUrl: string
let attackerHits = 0

beforeAll(async () => {
  // Start in the middle of a time step, so TOTP steps do not depend on the real clock.
  clock = testClock((Math.floor(Date.now() / PERIOD_MS) + 0.5) * PERIOD_MS)
  log = recordingLogger()
  server = await startControlledServer({
    clock,
    log,
    env: {
      JWT_PRIVATE_KEY_PEM: serverKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      ADMIN_BOOTSTRAP_TOKEN,
    },
  })
  request = api(server.url)
  const jwks = await request('GET', '/.well-known/jwks.json')
  expect(jwks.body.keys).toHaveLength(1)
  kid = jwks.body.keys[0].kid
  publicX = jwks.body.keys[0].x
  // The JWKS key is the one this test generated.
  expect(publicX).toBe(createPublicKey(serverKey).export({ format: 'jwk' }).x)

  const admin = newUser('atkadmin')
  const created = await request('POST', '/admin/register', {
    json: admin,
    headers: { 'x-bootstrap-token': ADMIN_BOOTSTRAP_TOKEN },
  })
  expect(created.status, JSON.stringify(created.body)).toBe(200)
  const adminLogin = await request('POST', '/admin/login', {
    json: { username: admin.username, password: admin.password },
  })
  expect(adminLogin.status).toBe(200)
  adminToken = adminLogin.body.access_token

  attackerServer = createServer((_req, res) => {
    attackerHits++
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ keys: [attackerJwk] }))
  })
  await new Promise<void>((resolve) => attackerServer.listen(0, '127.0.0.1', resolve))
  attackerUrl = `http://127.0.0.1:${(attackerServer.address() as AddressInfo).port}`
})

afterAll(async () => {
  await server?.close()
  await new Promise((resolve) => attackerServer?.close(resolve))
})

function expectRefused(reply: Reply, what: string): void {
  expect(reply.status, `${what}: ${JSON.stringify(reply.body)}`).toBe(401)
  expect(reply.headers.get('www-authenticate'), what).toMatch(/^Bearer/)
  expect(reply.body, what).toEqual({ detail: expect.any(String) })
}

const protectedWith = (token: string): Promise<Reply> => request('GET', '/protected', { token })

async function expectAccepted(token: string): Promise<void> {
  const reply = await protectedWith(token)
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
}

async function expectRejected(token: string, what: string): Promise<void> {
  expectRefused(await protectedWith(token), what)
}

type Account = { user: NewUser; id: number; token: string; refresh: string; claims: Claims }

async function account(tag: string): Promise<Account> {
  const user = newUser(tag)
  const { id } = await register(request, user)
  const tokens = await login(request, user)
  await expectAccepted(tokens.access_token)
  return {
    user,
    id,
    token: tokens.access_token,
    refresh: tokens.refresh_token,
    claims: claimsOf(tokens.access_token),
  }
}

const accessHeader = (extra: Header = {}): Header => ({ alg: 'EdDSA', typ: 'at+jwt', kid, ...extra })
/** The claims of a real access token, with a fresh `jti` so no cache can answer for it. */
const fresh = (claims: Claims, changes: Claims = {}): Claims => ({ ...claims, jti: randomUUID(), ...changes })

// ---------------------------------------------------------------- forged tokens

describe('forged tokens', () => {
  let victim: Account
  beforeAll(async () => {
    victim = await account('victim')
  })

  it('control: a token signed with the server key, the right header and the real claims is accepted', async () => {
    await expectAccepted(signEdDSA(accessHeader(), fresh(victim.claims), serverKey))
  })

  it('refuses alg "none" with valid-looking claims', async () => {
    const claims = fresh(victim.claims, { role: 'admin' })
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      await expectRejected(unsigned({ alg, typ: 'at+jwt', kid }, claims), `alg ${alg}`)
      await expectRejected(unsigned({ alg, typ: 'at+jwt' }, claims), `alg ${alg} without kid`)
      // Some libraries accept "none" only when a signature segment is present.
      await expectRejected(
        unsigned({ alg, typ: 'at+jwt', kid }, claims, 'c2ln'),
        `alg ${alg} with a signature`,
      )
    }
  })

  it('refuses HS256 signed with the public key bytes (from the JWKS x) as the HMAC secret', async () => {
    const publicBytes = Buffer.from(publicX, 'base64url')
    expect(publicBytes).toHaveLength(32)
    const publicPem = createPublicKey(serverKey).export({ type: 'spki', format: 'pem' }).toString()
    const claims = fresh(victim.claims)
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      for (const [name, secret] of [
        ['the raw public key', publicBytes],
        ['the x string', publicX],
        ['the public key PEM', publicPem],
        ['the JWK JSON', JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: publicX })],
      ] as const) {
        await expectRejected(
          signHmac({ alg, typ: 'at+jwt', kid }, claims, secret),
          `${alg} keyed with ${name}`,
        )
      }
    }
  })

  it('refuses an unknown kid, even on a token the server key really signed', async () => {
    const claims = fresh(victim.claims)
    await expectRejected(signEdDSA(accessHeader({ kid: 'no-such-key' }), claims, serverKey), 'unknown kid')
    await expectRejected(signEdDSA(accessHeader({ kid: `${kid}x` }), claims, serverKey), 'kid with a suffix')
    await expectRejected(
      signEdDSA(accessHeader({ kid: kid.toUpperCase() }), claims, serverKey),
      'kid in capitals',
    )
    const { kid: _omitted, ...noKid } = accessHeader()
    await expectRejected(signEdDSA(noKid, claims, serverKey), 'no kid')
    await expectRejected(signEdDSA(accessHeader({ kid: 42 }), claims, serverKey), 'a numeric kid')
    await expectRejected(signEdDSA(accessHeader({ kid: [kid] }), claims, serverKey), 'a kid array')
  })

  it('refuses injected kids (paths, SQL, URLs), signed with an attacker key or with HMAC over empty input', async () => {
    const claims = fresh(victim.claims)
    const kids = [
      '../../etc/passwd',
      '../../../../../../dev/null',
      '/dev/null',
      "' OR '1'='1",
      "x' UNION SELECT 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' --",
      `${kid}' --`,
      `${kid}\u0000`,
      '__proto__',
      'constructor',
      `${attackerUrl}/jwks.json`,
      'a'.repeat(5000),
    ]
    for (const injected of kids) {
      const what = `kid ${JSON.stringify(injected.slice(0, 60))}`
      await expectRejected(signEdDSA(accessHeader({ kid: injected }), claims, attackerKey), `${what}, EdDSA`)
      await expectRejected(
        signHmac({ alg: 'HS256', typ: 'at+jwt', kid: injected }, claims, ''),
        `${what}, HS256 ""`,
      )
      await expectRejected(
        signHmac(
          { alg: 'HS256', typ: 'at+jwt', kid: injected },
          claims,
          'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        ),
        `${what}, HS256 "A…"`,
      )
    }
  })

  it('ignores jku, x5u and an embedded jwk header that point at an attacker key', async () => {
    const claims = fresh(victim.claims)
    const headers: [string, Header][] = [
      ['jku to an attacker JWKS', { kid: 'attacker', jku: `${attackerUrl}/jwks.json` }],
      ['jku with the server kid', { kid, jku: `${attackerUrl}/jwks.json` }],
      ['x5u to an attacker URL', { kid: 'attacker', x5u: `${attackerUrl}/cert.pem` }],
      ['an embedded attacker jwk', { kid: 'attacker', jwk: attackerJwk }],
      ['an embedded attacker jwk under the server kid', { kid, jwk: { ...attackerJwk, kid } }],
      ['an embedded jwk without kid', { kid: undefined, jwk: attackerJwk }],
      ['x5c with junk', { kid: 'attacker', x5c: ['MIIBhTCCASugAwIBAgIU'] }],
    ]
    for (const [what, extra] of headers) {
      await expectRejected(signEdDSA(accessHeader(extra), claims, attackerKey), what)
    }
    // The server never went to fetch the attacker's keys.
    expect(attackerHits).toBe(0)
  })

  it('refuses a tampered payload (role → admin, another sub) under the original signature', async () => {
    const [header, , signature] = victim.token.split('.')
    const tamper = (changes: Claims): string =>
      `${header}.${b64url(JSON.stringify({ ...victim.claims, ...changes }))}.${signature}`
    await expectRejected(tamper({ role: 'admin' }), 'role → admin')
    await expectRejected(tamper({ sub: '1' }), 'sub → 1')
    await expectRejected(tamper({ exp: (victim.claims.exp as number) + 86_400 }), 'exp + 1 day')
    await expectRejected(tamper({ amr: ['pwd', 'otp'] }), 'amr + otp')
    // The untouched token still works, so the signature was what failed.
    await expectAccepted(victim.token)
  })

  it('refuses a tampered signature', async () => {
    const [header, payload, signature] = victim.token.split('.')
    // A character in the middle: the last one also carries padding bits a decoder may drop.
    const middle = Math.floor(signature.length / 2)
    const flipped = signature[middle] === 'A' ? 'B' : 'A'
    const variants: [string, string][] = [
      ['one character flipped', `${signature.slice(0, middle)}${flipped}${signature.slice(middle + 1)}`],
      ['truncated', signature.slice(0, -4)],
      ['empty', ''],
      ['zeroed', b64url(Buffer.alloc(64))],
      ['another token’s', signEdDSA(accessHeader(), fresh(victim.claims), serverKey).split('.')[2]],
    ]
    for (const [what, sig] of variants) await expectRejected(`${header}.${payload}.${sig}`, what)
    await expectAccepted(victim.token)
  })

  it('refuses a token whose nbf is in the future', async () => {
    const nbf = Math.floor(clock.now().getTime() / 1000) + 3600
    await expectRejected(signEdDSA(accessHeader(), fresh(victim.claims, { nbf }), serverKey), 'nbf + 1 h')
  })

  it('refuses a wrong iss', async () => {
    for (const iss of ['evil-issuer', `${victim.claims.iss} `, String(victim.claims.iss).toUpperCase(), ''])
      await expectRejected(signEdDSA(accessHeader(), fresh(victim.claims, { iss }), serverKey), `iss ${iss}`)
    const { iss: _iss, ...withoutIss } = fresh(victim.claims)
    await expectRejected(signEdDSA(accessHeader(), withoutIss, serverKey), 'no iss')
  })

  it('refuses a wrong aud', async () => {
    for (const aud of ['another-service', ['another-service'], `${victim.claims.aud}x`, ''])
      await expectRejected(signEdDSA(accessHeader(), fresh(victim.claims, { aud }), serverKey), `aud ${aud}`)
    const { aud: _aud, ...withoutAud } = fresh(victim.claims)
    await expectRejected(signEdDSA(accessHeader(), withoutAud, serverKey), 'no aud')
  })

  it('refuses a correctly signed token of another type, or claiming a role the account does not have', async () => {
    const claims = fresh(victim.claims)
    await expectRejected(signEdDSA(accessHeader({ typ: 'JWT' }), claims, serverKey), 'typ JWT')
    await expectRejected(
      signEdDSA(accessHeader({ typ: 'challenge+jwt' }), claims, serverKey),
      'typ challenge+jwt',
    )
    await expectRejected(signEdDSA(accessHeader({ typ: undefined }), claims, serverKey), 'no typ')
    await expectRejected(
      signEdDSA(accessHeader(), fresh(victim.claims, { role: 'admin' }), serverKey),
      'role admin',
    )
    await expectRejected(
      signEdDSA(accessHeader(), fresh(victim.claims, { sid: '999999' }), serverKey),
      'unknown sid',
    )
  })
})

// ---------------------------------------------------------------- expiry

describe('an expired access token', () => {
  let short: TestServer
  let shortClock: TestClock
  beforeAll(async () => {
    shortClock = testClock()
    short = await startControlledServer({ clock: shortClock, env: { ACCESS_TOKEN_TTL_SECONDS: '1' } })
  })
  afterAll(async () => {
    await short?.close()
  })

  it('is refused once past exp (ACCESS_TOKEN_TTL_SECONDS=1)', async () => {
    const shortRequest = api(short.url)
    const someone = newUser('expiring')
    await register(shortRequest, someone)
    const issued = await login(shortRequest, someone)
    const { exp, iat } = claimsOf(issued.access_token) as { exp: number; iat: number }
    expect(exp - iat).toBe(1)
    expect((await shortRequest('GET', '/protected', { token: issued.access_token })).status).toBe(200)
    // The verifier allows 5 s of clock skew past exp (src/security/access-tokens.ts), so the
    // service's clock moves 2.5 s past that rather than 2.5 s past exp.
    shortClock.advance((1 + 5 + 2.5) * 1000)
    expectRefused(await shortRequest('GET', '/protected', { token: issued.access_token }), 'expired')
  })
})

// ---------------------------------------------------------------- token-type confusion

const stepNow = (): number => Math.floor(clock.now().getTime() / PERIOD_MS)

async function withTwoFactor(tag: string): Promise<{ user: NewUser; secret: string }> {
  const { user, token } = await account(tag)
  const setup = await request('GET', '/auth/generate-2fa-code', { token })
  expect(setup.status, JSON.stringify(setup.body)).toBe(200)
  const enabled = await request('POST', '/auth/enable-2fa', {
    token,
    json: { code: totp(setup.body.secret, stepNow()) },
  })
  expect(enabled.status, JSON.stringify(enabled.body)).toBe(200)
  return { user, secret: setup.body.secret }
}

async function challengeFor(user: NewUser): Promise<string> {
  const reply = await request('POST', '/auth/login', {
    form: { username: user.username, password: user.password },
  })
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  expect(reply.body.requires_2fa).toBe(true)
  return reply.body.access_token
}

const verify2fa = (challenge: string, code: string): Promise<Reply> =>
  request('POST', '/auth/verify-2fa', { token: challenge, json: { code } })

describe('a 2FA challenge token', () => {
  it('is refused as an access token', async () => {
    const { user } = await withTwoFactor('challenged')
    const challenge = await challengeFor(user)
    expect(claimsOf(challenge).sub).toBeDefined()
    await expectRejected(challenge, 'challenge token')
    // Also with its header relabelled as an access token (the signature then breaks).
    const [, payload, signature] = challenge.split('.')
    await expectRejected(`${b64url(JSON.stringify(accessHeader()))}.${payload}.${signature}`, 'relabelled')
  })
})

describe('other tokens the service hands out', () => {
  it('refuses an audit checkpoint JWS and a refresh token as access tokens', async () => {
    const checkpoint = await request('GET', '/admin/audit/checkpoint', { token: adminToken })
    expect(checkpoint.status).toBe(200)
    await expectRejected(checkpoint.body.checkpoint, 'checkpoint JWS')
    const { refresh } = await account('confused')
    await expectRejected(refresh, 'refresh token')
  })

  it('refuses an access token as a 2FA challenge at verify-2fa', async () => {
    const { user, secret } = await withTwoFactor('reversed')
    clock.advance(PERIOD_MS)
    // A full session of the 2FA account, then its access token in place of a challenge.
    const passed = await verify2fa(await challengeFor(user), totp(secret, stepNow()))
    expect(passed.status, JSON.stringify(passed.body)).toBe(200)
    clock.advance(PERIOD_MS)
    expectRefused(
      await verify2fa(passed.body.access_token, totp(secret, stepNow())),
      'access token as challenge',
    )
  })
})

// ---------------------------------------------------------------- tokens that outlive their grant

describe('tokens of an account or session that is no longer valid', () => {
  const adminCall = (method: string, path: string, json?: unknown): Promise<Reply> =>
    request(method, path, { token: adminToken, ...(json === undefined ? {} : { json }) })

  it('refuses the token of a deleted account', async () => {
    const { id, token } = await account('deleted')
    expect((await adminCall('DELETE', `/admin/user/${id}`)).status).toBe(200)
    await expectRejected(token, 'deleted account')
  })

  it('refuses the token of a locked account', async () => {
    const { id, token } = await account('locked')
    expect(
      (await adminCall('POST', '/admin/lock', { user_id: id, reason: 'token attack test' })).status,
    ).toBe(200)
    await expectRejected(token, 'locked account')
  })

  it('refuses the token of a deactivated account', async () => {
    const { id, token } = await account('deactivated')
    expect((await adminCall('PUT', `/admin/deactivate-user/${id}`)).status).toBe(200)
    await expectRejected(token, 'deactivated account')
  })

  it('refuses the token of an account whose role changed', async () => {
    const { id, token } = await account('rerolled')
    expect((await adminCall('PUT', '/admin/user/role', { user_id: id, role: 'vendor' })).status).toBe(200)
    await expectRejected(token, 'changed role')
  })

  it('refuses the token of a revoked session', async () => {
    const { token, claims } = await account('revoked')
    const revoked = await request('DELETE', `/auth/sessions/${claims.sid}`, { token })
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200)
    await expectRejected(token, 'revoked session')
  })
})

// ---------------------------------------------------------------- replays

describe('replays', () => {
  it('revokes the session when a refresh token is replayed after a later rotation', async () => {
    const { refresh } = await account('replayer')
    const first = await request('POST', '/auth/token-refresh', { json: { refresh_token: refresh } })
    expect(first.status, JSON.stringify(first.body)).toBe(200)
    // Only the token rotated out last has the two-tabs grace period; this one is older.
    const rotated = await request('POST', '/auth/token-refresh', {
      json: { refresh_token: first.body.refresh_token },
    })
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200)
    await expectAccepted(rotated.body.access_token)

    expectRefused(
      await request('POST', '/auth/token-refresh', { json: { refresh_token: refresh } }),
      'replay',
    )
    // The whole session is gone: the newest refresh token and its access token too.
    expectRefused(
      await request('POST', '/auth/token-refresh', { json: { refresh_token: rotated.body.refresh_token } }),
      'refresh token of the revoked session',
    )
    await expectRejected(rotated.body.access_token, 'access token of the revoked session')
  })

  it('refuses a guessed refresh token for a known session id, without revoking that session', async () => {
    const { token, refresh, claims } = await account('guessed')
    const guess = `${claims.sid}.${b64url(Buffer.alloc(32, 7))}`
    expectRefused(await request('POST', '/auth/token-refresh', { json: { refresh_token: guess } }), 'guess')
    await expectAccepted(token)
    const rotated = await request('POST', '/auth/token-refresh', { json: { refresh_token: refresh } })
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200)
  })

  it('accepts a TOTP code once: verify-2fa with the same code again answers 401', async () => {
    const { user, secret } = await withTwoFactor('totpreplay')
    clock.advance(PERIOD_MS)
    const code = totp(secret, stepNow())

    const first = await verify2fa(await challengeFor(user), code)
    expect(first.status, JSON.stringify(first.body)).toBe(200)
    await expectAccepted(first.body.access_token)

    const challenge = await challengeFor(user)
    expectRefused(await verify2fa(challenge, code), 'replayed TOTP code')
    // The same challenge passes with the next step's code: only the replayed code was refused.
    clock.advance(PERIOD_MS)
    const next = await verify2fa(challenge, totp(secret, stepNow()))
    expect(next.status, JSON.stringify(next.body)).toBe(200)
  })

  it('accepts a password-reset token once', async () => {
    const { user } = await account('resetter')
    const asked = await request('POST', '/auth/password-reset-request', { json: { email: user.email } })
    expect(asked.status).toBe(200)
    const token = await resetTokenMailedTo(user.email)

    const first = await request('POST', '/auth/password-reset', {
      json: { token, new_password: 'Fresh-Passw0rd-one!' },
    })
    expect(first.status, JSON.stringify(first.body)).toBe(200)
    const second = await request('POST', '/auth/password-reset', {
      json: { token, new_password: 'Fresh-Passw0rd-two!' },
    })
    expect(second.status, JSON.stringify(second.body)).toBe(400)
    expect(second.body).toEqual({ detail: expect.any(String) })

    const form = (password: string) => ({ form: { username: user.username, password } })
    expect((await request('POST', '/auth/login', form('Fresh-Passw0rd-one!'))).status).toBe(200)
    expect((await request('POST', '/auth/login', form('Fresh-Passw0rd-two!'))).status).toBe(401)
  })
})

/** The reset token from the mail the service wrote to its log (no SMTP_URL configured). */
async function resetTokenMailedTo(email: string): Promise<string> {
  const deadline = Date.now() + 10_000
  for (;;) {
    // Registering logs a mail to the address too (its verification token): the reset mail is the one.
    const mail = log.entries.find(
      (e) => e.message === MAIL_LOGGED && e.fields.to === email && e.fields.subject === 'Reset your password',
    )
    if (mail) {
      const match = /Reset token: (\S+)/.exec(String(mail.fields.text))
      expect(match, String(mail.fields.text)).not.toBeNull()
      return match![1]
    }
    if (Date.now() > deadline) throw new Error(`no reset mail to ${email} in the log`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
