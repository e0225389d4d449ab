/**
 * Passkeys (WebAuthn) end to end over HTTP, against a software authenticator written in the test
 * from node:crypto (test/support/authenticator.ts: its own CBOR, COSE keys, authenticator data,
 * `none` and `packed` self attestation). Registration, login with and without a username, wrong
 * origin and RP id, replayed, foreign and expired challenges, counter rollback, another user's
 * credential, removed passkeys, locked, deactivated and deleted accounts, 2FA, passwordless
 * accounts, tRPC and REST from the same procedures. The service runs on a clock the test moves.
 */

import { generateKeyPairSync } from 'node:crypto'
import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { base32Decode, TOTP_PERIOD_MS, totp } from '../../harness/totp.ts'
import type { AppRouter } from '../../src/api/router.ts'
import { SEALED_FIELD } from '../../src/app/event-codec.ts'
import { accountStream } from '../../src/app/streams.ts'
import { ENCRYPTED_PREFIX } from '../../src/security/data-keys.ts'
import {
  type AuthenticationResponse,
  type CborValue,
  type CreationOptions,
  cbor,
  coseEc2PublicKey,
  type RequestOptions,
  SoftwareAuthenticator,
} from '../support/authenticator.ts'
import { startControlledServer, type TestClock, testClock } from '../support/controlled-server.ts'
import {
  type Api,
  api,
  checkedFetch,
  claimsOf,
  expectUnauthorized,
  login,
  type NewUser,
  newUser,
  type Reply,
  register,
} from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

const RP_ID = 'auth.example.test'
const ORIGIN = 'https://auth.example.test'
const OTHER_ORIGIN = 'https://app.example.test'
const BOOTSTRAP = 'passkeys-e2e-bootstrap'

let server: TestServer
let clock: TestClock
let request: Api
let adminToken: string

beforeAll(async () => {
  clock = testClock((Math.floor(Date.now() / TOTP_PERIOD_MS) + 0.5) * TOTP_PERIOD_MS)
  server = await startControlledServer({
    clock,
    env: {
      ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP,
      RP_ID,
      RP_ORIGINS: `${ORIGIN},${OTHER_ORIGIN}`,
      // The test moves the clock by minutes (challenge expiry, throttling): tokens outlive it.
      ACCESS_TOKEN_TTL_SECONDS: '31536000',
    },
  })
  request = api(server.url)
  const admin = newUser('pkadmin')
  const created = await request('POST', '/admin/register', {
    json: admin,
    headers: { 'x-bootstrap-token': BOOTSTRAP },
  })
  expect(created.status, JSON.stringify(created.body)).toBe(200)
  const loggedIn = await request('POST', '/admin/login', {
    json: { username: admin.username, password: admin.password },
  })
  adminToken = loggedIn.body.access_token
})
afterAll(async () => {
  await server?.close()
})

function expectStatus(reply: Reply, status: number, detail?: RegExp): void {
  expect(reply.status, JSON.stringify(reply.body)).toBe(status)
  if (status >= 400 && status !== 422) expect(reply.body).toEqual({ detail: expect.any(String) })
  if (detail) expect(reply.body.detail).toMatch(detail)
}

type Account = { user: NewUser; id: number; token: string }

async function account(tag: string): Promise<Account> {
  const user = newUser(tag)
  const { id } = await register(request, user)
  return { user, id, token: (await login(request, user)).access_token }
}

async function registrationOptions(token: string): Promise<CreationOptions> {
  const reply = await request('POST', '/auth/passkeys/register/options', { token })
  expectStatus(reply, 200)
  return reply.body
}

/** Registers a new credential of `authenticator` on the account of `token`; the Passkey answer. */
async function addPasskey(
  token: string,
  authenticator: SoftwareAuthenticator,
  name?: string,
): Promise<{ id: number; name: string; created_at: string; last_used_at: string | null }> {
  const options = await registrationOptions(token)
  const response = authenticator.create(options, ORIGIN)
  const reply = await request('POST', '/auth/passkeys/register', { token, json: { response, name } })
  expectStatus(reply, 200)
  return reply.body
}

async function loginOptions(username?: string): Promise<RequestOptions> {
  const reply = await request('POST', '/auth/passkeys/login/options', {
    json: username === undefined ? {} : { username },
  })
  expectStatus(reply, 200)
  return reply.body
}

const passkeyLogin = (response: AuthenticationResponse): Promise<Reply> =>
  request('POST', '/auth/passkeys/login', { json: { response } })

async function activityTypes(token: string): Promise<string[]> {
  const reply = await request('GET', '/auth/activity', { token })
  expectStatus(reply, 200)
  return reply.body.map((a: { type: string }) => a.type)
}

type AuditEvent = { type: string; data: Record<string, unknown> }
async function history(userId: number): Promise<AuditEvent[]> {
  const reply = await request('GET', `/admin/users/${userId}/history`, { token: adminToken })
  expectStatus(reply, 200)
  return reply.body
}

describe('the test authenticator (independent of the server)', () => {
  it('encodes CBOR as RFC 8949 Appendix A does', () => {
    const hex = (value: CborValue) => cbor(value).toString('hex')
    expect(hex(0)).toBe('00')
    expect(hex(23)).toBe('17')
    expect(hex(24)).toBe('1818')
    expect(hex(100)).toBe('1864')
    expect(hex(1000)).toBe('1903e8')
    expect(hex(1000000)).toBe('1a000f4240')
    expect(hex(-1)).toBe('20')
    expect(hex(-100)).toBe('3863')
    expect(hex(-1000)).toBe('3903e7')
    expect(hex(true)).toBe('f5')
    expect(hex('')).toBe('60')
    expect(hex('IETF')).toBe('6449455446')
    expect(hex('ü')).toBe('62c3bc')
    expect(hex(new Uint8Array([1, 2, 3, 4]))).toBe('4401020304')
    expect(hex([1, [2, 3], [4, 5]])).toBe('8301820203820405')
    expect(
      hex(
        new Map<CborValue, CborValue>([
          [1, 2],
          [3, 4],
        ]),
      ),
    ).toBe('a201020304')
    expect(hex(new Map<CborValue, CborValue>([['a', [2, 3]]]))).toBe('a16161820203')
  })

  it('encodes an ES256 key as a COSE_Key (kty 2, alg -7, crv 1, 32-byte x and y)', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const key = coseEc2PublicKey(publicKey)
    // a5 (map of 5) 01 02 03 26 20 01 21 58 20 <x> 22 58 20 <y>
    expect(key.subarray(0, 10).toString('hex')).toBe('a5010203262001215820')
    expect(key.subarray(42, 45).toString('hex')).toBe('225820')
    expect(key.length).toBe(77)
  })
})

describe('registration', () => {
  let alice: Account
  beforeAll(async () => {
    alice = await account('pkreg')
  })

  it('hands out creation options for this RP and user, with a challenge and ES256 offered', async () => {
    const options = await registrationOptions(alice.token)
    expect(options.rp).toEqual({ id: RP_ID, name: expect.any(String) })
    expect(options.user.name).toBe(alice.user.username)
    expect(Buffer.from(options.user.id, 'base64url').length).toBe(32)
    expect(options.pubKeyCredParams.map((p) => p.alg)).toContain(-7)
    expect(options.challenge).toMatch(/^[A-Za-z0-9_-]{32,}$/)
    // Two calls, two challenges.
    expect((await registrationOptions(alice.token)).challenge).not.toBe(options.challenge)
  })

  it('needs a caller', async () => {
    expectUnauthorized(await request('POST', '/auth/passkeys/register/options'))
    expectUnauthorized(await request('GET', '/auth/passkeys'))
  })

  it('registers a passkey with "none" attestation: the Passkey answer, the list, the activity', async () => {
    const authenticator = new SoftwareAuthenticator()
    const passkey = await addPasskey(alice.token, authenticator, 'YubiKey')
    expect(passkey).toEqual({ id: 1, name: 'YubiKey', created_at: expect.any(String), last_used_at: null })
    const list = await request('GET', '/auth/passkeys', { token: alice.token })
    expectStatus(list, 200)
    expect(list.body).toEqual([passkey])
    expect(await activityTypes(alice.token)).toContain('passkey_added')
  })

  it('registers a passkey with "packed" self attestation, named by default', async () => {
    const authenticator = new SoftwareAuthenticator({ attestation: 'packed', synced: true })
    const passkey = await addPasskey(alice.token, authenticator)
    expect(passkey.name).toBe('Passkey 2')
    // And it logs in.
    const reply = await passkeyLogin(authenticator.get(await loginOptions(alice.user.username), ORIGIN))
    expectStatus(reply, 200)
  })

  it('refuses a "packed" attestation whose signature is not the credential key’s', async () => {
    const authenticator = new SoftwareAuthenticator({ attestation: 'packed' })
    const options = await registrationOptions(alice.token)
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const response = authenticator.create(options, ORIGIN, { signWith: privateKey })
    expectStatus(
      await request('POST', '/auth/passkeys/register', { token: alice.token, json: { response } }),
      400,
    )
  })

  it('refuses a response from another origin (400) and accepts every configured origin', async () => {
    const authenticator = new SoftwareAuthenticator()
    const response = authenticator.create(await registrationOptions(alice.token), 'https://evil.example')
    expectStatus(
      await request('POST', '/auth/passkeys/register', { token: alice.token, json: { response } }),
      400,
      /origin/,
    )
    const second = authenticator.create(await registrationOptions(alice.token), OTHER_ORIGIN)
    expectStatus(
      await request('POST', '/auth/passkeys/register', { token: alice.token, json: { response: second } }),
      200,
    )
  })

  it('refuses a credential made for another RP id (400)', async () => {
    const authenticator = new SoftwareAuthenticator()
    const response = authenticator.create(await registrationOptions(alice.token), ORIGIN, {
      rpId: 'evil.example',
    })
    expectStatus(
      await request('POST', '/auth/passkeys/register', { token: alice.token, json: { response } }),
      400,
      /RP ID/i,
    )
  })

  it('uses a challenge once, only for registration, only for the caller and its session, and not after 5 minutes', async () => {
    const authenticator = new SoftwareAuthenticator()
    const options = await registrationOptions(alice.token)
    const first = authenticator.create(options, ORIGIN)
    expectStatus(
      await request('POST', '/auth/passkeys/register', { token: alice.token, json: { response: first } }),
      200,
    )
    // The same challenge again, with another credential: refused.
    const replay = authenticator.create(options, ORIGIN)
    expectStatus(
      await request('POST', '/auth/passkeys/register', { token: alice.token, json: { response: replay } }),
      400,
      /challenge/,
    )
    // A login challenge is no registration challenge.
    const loginChallenge = (await loginOptions()).challenge
    const wrongPurpose = authenticator.create({ ...options, challenge: loginChallenge }, ORIGIN)
    expectStatus(
      await request('POST', '/auth/passkeys/register', {
        token: alice.token,
        json: { response: wrongPurpose },
      }),
      400,
      /challenge/,
    )
    // A challenge the service never issued.
    const invented = authenticator.create(options, ORIGIN, {
      challenge: Buffer.from('a'.repeat(32)).toString('base64url'),
    })
    expectStatus(
      await request('POST', '/auth/passkeys/register', { token: alice.token, json: { response: invented } }),
      400,
      /challenge/,
    )
    // Another session of the same user, and another user, cannot use alice's challenge.
    const otherSession = (await login(request, alice.user)).access_token
    const fresh = await registrationOptions(alice.token)
    expectStatus(
      await request('POST', '/auth/passkeys/register', {
        token: otherSession,
        json: { response: authenticator.create(fresh, ORIGIN) },
      }),
      400,
      /challenge/,
    )
    const bob = await account('pkregbob')
    expectStatus(
      await request('POST', '/auth/passkeys/register', {
        token: bob.token,
        json: { response: authenticator.create(fresh, ORIGIN) },
      }),
      400,
      /challenge/,
    )
    // Expired.
    const late = await registrationOptions(alice.token)
    clock.advance(301_000)
    expectStatus(
      await request('POST', '/auth/passkeys/register', {
        token: alice.token,
        json: { response: authenticator.create(late, ORIGIN) },
      }),
      400,
      /challenge/,
    )
  })

  it('refuses a credential already registered, to this account or another (409)', async () => {
    const authenticator = new SoftwareAuthenticator()
    await addPasskey(alice.token, authenticator)
    const id = authenticator.credential.id
    const again = authenticator.create(await registrationOptions(alice.token), ORIGIN, { credentialId: id })
    expectStatus(
      await request('POST', '/auth/passkeys/register', { token: alice.token, json: { response: again } }),
      409,
    )
    const bob = await account('pkdupbob')
    const stolen = new SoftwareAuthenticator().create(await registrationOptions(bob.token), ORIGIN, {
      credentialId: id,
    })
    expectStatus(
      await request('POST', '/auth/passkeys/register', { token: bob.token, json: { response: stolen } }),
      409,
    )
  })

  it('refuses attestation formats with certificate chains (no CRL fetched from a certificate the client chose)', async () => {
    const authenticator = new SoftwareAuthenticator({ attestation: 'packed' })
    const response = authenticator.create(await registrationOptions(alice.token), ORIGIN)
    // Rewrite the attestation object as packed with an x5c chain. Its last item is the authenticator
    // data: 32 + 1 + 4 + 16 + 2 + 32 (credential id) + 77 (COSE key) bytes.
    const original = Buffer.from(response.response.attestationObject, 'base64url')
    const authData = original.subarray(original.length - 164)
    const withChain = cbor(
      new Map<CborValue, CborValue>([
        ['fmt', 'packed'],
        [
          'attStmt',
          new Map<CborValue, CborValue>([
            ['alg', -7],
            ['sig', Buffer.alloc(70)],
            ['x5c', [Buffer.alloc(100)]],
          ]),
        ],
        ['authData', authData],
      ]),
    )
    response.response.attestationObject = withChain.toString('base64url')
    expectStatus(
      await request('POST', '/auth/passkeys/register', { token: alice.token, json: { response } }),
      400,
      /attestation/,
    )
  })

  it('stores the credential id and public key encrypted with the account’s data key', async () => {
    const authenticator = new SoftwareAuthenticator()
    await addPasskey(alice.token, authenticator)
    const credentialId = authenticator.credential.id.toString('base64url')
    const events = await server.runtime.store.readStream(accountStream(alice.id))
    const registered = events.filter((e) => e.type === 'PasskeyRegistered')
    expect(registered.length).toBeGreaterThan(0)
    for (const event of registered) {
      for (const field of ['credential_id', 'public_key', 'user_handle', 'name'])
        expect(event.data, field).not.toHaveProperty(field)
      expect(String(event.data[SEALED_FIELD])).toMatch(new RegExp(`^${ENCRYPTED_PREFIX}`))
    }
    expect(JSON.stringify(events.map((e) => e.data))).not.toContain(credentialId)
    // The auditors see them decrypted while the account exists.
    const audited = (await history(alice.id)).filter((e) => e.type === 'PasskeyRegistered')
    expect(audited.map((e) => e.data.credential_id)).toContain(credentialId)
  })

  it('validates the request body (422)', async () => {
    const reply = await request('POST', '/auth/passkeys/register', {
      token: alice.token,
      json: { response: { id: 'not base64url!', rawId: 'x', type: 'public-key', response: {} } },
    })
    expectStatus(reply, 422)
    expect(reply.body.detail[0].loc[0]).toBe('body')
  })
})

describe('well-formed responses with garbage inside', () => {
  const garbage = [
    '',
    'AA',
    Buffer.from('not json').toString('base64url'),
    Buffer.from('{"challenge":1}').toString('base64url'),
    Buffer.from(`${'['.repeat(3000)}${']'.repeat(3000)}`).toString('base64url'),
    Buffer.from([0x9f, 0x9f, 0x9f, 0xff]).toString('base64url'),
    Buffer.alloc(4000, 0x81).toString('base64url'),
    Buffer.alloc(37).toString('base64url'),
  ]

  it('answers registrations with 400 or 422, never 500', async () => {
    const owner = await account('pkgarbage')
    const authenticator = new SoftwareAuthenticator({ attestation: 'packed' })
    for (const field of ['clientDataJSON', 'attestationObject'] as const) {
      for (const value of garbage) {
        const response = authenticator.create(await registrationOptions(owner.token), ORIGIN)
        response.response[field] = value
        const reply = await request('POST', '/auth/passkeys/register', {
          token: owner.token,
          json: { response },
        })
        expect([400, 422], `${field}=${value.slice(0, 20)}: ${JSON.stringify(reply.body)}`).toContain(
          reply.status,
        )
      }
    }
  })

  it('answers logins with 401, 422 or 423, never 500', async () => {
    const owner = await account('pkgarbage2')
    const authenticator = new SoftwareAuthenticator()
    await addPasskey(owner.token, authenticator)
    for (const field of ['clientDataJSON', 'authenticatorData', 'signature', 'userHandle'] as const) {
      for (const value of garbage) {
        const response = authenticator.get(await loginOptions(), ORIGIN)
        response.response[field] = value
        const reply = await passkeyLogin(response)
        // 423 once the throttle stops this client.
        expect([401, 422, 423], `${field}=${value.slice(0, 20)}: ${JSON.stringify(reply.body)}`).toContain(
          reply.status,
        )
      }
    }
    // (Those failures throttled this client for the account; a moment later the passkey works.)
    clock.advance(24 * 60 * 60_000)
    expectStatus(await passkeyLogin(authenticator.get(await loginOptions(), ORIGIN)), 200)
  })
})

describe('login', () => {
  let alice: Account
  let yubikey: SoftwareAuthenticator
  let phone: SoftwareAuthenticator
  beforeAll(async () => {
    alice = await account('pklogin')
    yubikey = new SoftwareAuthenticator()
    phone = new SoftwareAuthenticator({ synced: true, userVerification: true })
    await addPasskey(alice.token, yubikey, 'YubiKey')
    await addPasskey(alice.token, phone, 'Phone')
  })

  it('with a username: the options list the account’s credentials; the Token has amr ["hwk"]', async () => {
    const options = await loginOptions(alice.user.username)
    expect(options.rpId).toBe(RP_ID)
    expect(options.allowCredentials?.map((c) => c.id).sort()).toEqual(
      [yubikey.credential.id, phone.credential.id].map((id) => id.toString('base64url')).sort(),
    )
    const reply = await passkeyLogin(yubikey.get(options, ORIGIN, { userHandle: null }))
    expectStatus(reply, 200)
    expect(Object.keys(reply.body).sort()).toEqual([
      'access_token',
      'expires_in',
      'refresh_token',
      'token_type',
    ])
    const claims = claimsOf(reply.body.access_token)
    expect(claims.sub).toBe(String(alice.id))
    expect(claims.amr).toEqual(['hwk'])
    const hello = await request('GET', '/protected', { token: reply.body.access_token })
    expectStatus(hello, 200)
    expect(hello.body.user_id).toBe(alice.id)
    // A refresh keeps the methods.
    const refreshed = await request('POST', '/auth/token-refresh', {
      json: { refresh_token: reply.body.refresh_token },
    })
    expectStatus(refreshed, 200)
    expect(claimsOf(refreshed.body.access_token).amr).toEqual(['hwk'])
  })

  it('without a username (a discoverable credential): amr ["swk", "user"] for a synced passkey that verified its user', async () => {
    const options = await loginOptions()
    expect(options.allowCredentials ?? []).toEqual([])
    const reply = await passkeyLogin(phone.get(options, ORIGIN))
    expectStatus(reply, 200)
    expect(claimsOf(reply.body.access_token)).toMatchObject({ sub: String(alice.id), amr: ['swk', 'user'] })
  })

  it('records the use: last_used_at, the session, the activity', async () => {
    const list = (await request('GET', '/auth/passkeys', { token: alice.token })).body
    expect(list.find((p: { name: string }) => p.name === 'Phone').last_used_at).toEqual(expect.any(String))
    const activity = await request('GET', '/auth/activity', { token: alice.token })
    const logins = activity.body.filter((a: { type: string }) => a.type === 'passkey_login')
    expect(logins.length).toBeGreaterThanOrEqual(2)
    expect(logins[0].session_id).toEqual(expect.any(Number))
  })

  it('answers an unknown username with options as plausible as a real one’s, and the same each time', async () => {
    const first = await loginOptions('nobody_at_all')
    const second = await loginOptions('nobody_at_all')
    expect(first.allowCredentials).toHaveLength(1)
    expect(first.allowCredentials).toEqual(second.allowCredentials)
    expect(Buffer.from(first.allowCredentials![0].id, 'base64url').length).toBe(32)
    expect(first.challenge).not.toBe(second.challenge)
  })

  it('refuses an assertion from another origin (401)', async () => {
    const response = yubikey.get(await loginOptions(alice.user.username), ORIGIN, {
      origin: 'https://evil.example',
    })
    expectUnauthorized(await passkeyLogin(response))
  })

  it('refuses an assertion for another RP id (401)', async () => {
    const response = yubikey.get(await loginOptions(alice.user.username), ORIGIN, { rpId: 'evil.example' })
    expectUnauthorized(await passkeyLogin(response))
  })

  it('refuses a registration assertion type and an assertion signed by another key (401)', async () => {
    const options = await loginOptions(alice.user.username)
    expectUnauthorized(await passkeyLogin(yubikey.get(options, ORIGIN, { type: 'webauthn.create' })))
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    expectUnauthorized(
      await passkeyLogin(yubikey.get(await loginOptions(), ORIGIN, { signWith: privateKey })),
    )
  })

  it('uses a challenge once: the same assertion replayed, or a new one over a used challenge, is refused', async () => {
    // A synced passkey keeps no counter: only the used challenge stops the replay.
    const options = await loginOptions()
    const response = phone.get(options, ORIGIN)
    expectStatus(await passkeyLogin(response), 200)
    expectUnauthorized(await passkeyLogin(response), 'Invalid, expired or already used passkey challenge')
    expectUnauthorized(await passkeyLogin(phone.get(options, ORIGIN)))
    // A counter-keeping key replayed: the challenge is refused before the counter is judged.
    const keyOptions = await loginOptions(alice.user.username)
    const keyResponse = yubikey.get(keyOptions, ORIGIN)
    expectStatus(await passkeyLogin(keyResponse), 200)
    expectUnauthorized(await passkeyLogin(keyResponse), 'Invalid, expired or already used passkey challenge')
    expect((await history(alice.id)).map((e) => e.type)).not.toContain('PasskeySignCountRegressed')
  })

  it('refuses a challenge the service did not issue, one for registration, and one older than 5 minutes', async () => {
    const options = await loginOptions()
    const invented = phone.get(options, ORIGIN, {
      challenge: Buffer.from('x'.repeat(40)).toString('base64url'),
    })
    expectUnauthorized(await passkeyLogin(invented))
    const registration = (await registrationOptions(alice.token)).challenge
    expectUnauthorized(await passkeyLogin(phone.get(options, ORIGIN, { challenge: registration })))
    const late = await loginOptions()
    clock.advance(301_000)
    expectUnauthorized(await passkeyLogin(phone.get(late, ORIGIN)))
    // Within the 5 minutes it works.
    const inTime = await loginOptions()
    clock.advance(290_000)
    expectStatus(await passkeyLogin(phone.get(inTime, ORIGIN)), 200)
  })

  it('refuses and records a sign counter that goes backwards (or stands still), then takes a higher one', async () => {
    const key = new SoftwareAuthenticator()
    const carol = await account('pkcounter')
    await addPasskey(carol.token, key)
    expectStatus(await passkeyLogin(key.get(await loginOptions(), ORIGIN, { signCount: 10 })), 200)
    const rolledBack = await passkeyLogin(key.get(await loginOptions(), ORIGIN, { signCount: 4 }))
    expectUnauthorized(rolledBack)
    expect(rolledBack.body.detail).toMatch(/counter/)
    expectUnauthorized(await passkeyLogin(key.get(await loginOptions(), ORIGIN, { signCount: 10 })))
    const events = await history(carol.id)
    const regressions = events.filter((e) => e.type === 'PasskeySignCountRegressed')
    expect(regressions.map((e) => [e.data.stored_sign_count, e.data.presented_sign_count])).toEqual([
      [10, 4],
      [10, 10],
    ])
    expect(events.filter((e) => e.type === 'LoginFailed').map((e) => e.data.reason)).toEqual([
      'passkey',
      'passkey',
    ])
    const types = await activityTypes(carol.token)
    expect(types.filter((t) => t === 'passkey_sign_count_rejected')).toHaveLength(2)
    expect(types).toContain('login_failed')
    expectStatus(await passkeyLogin(key.get(await loginOptions(), ORIGIN, { signCount: 11 })), 200)
  })

  it('refuses another user’s credential: under bob’s username, with bob’s user handle, or signed by bob’s key', async () => {
    const bobKey = new SoftwareAuthenticator()
    const bob = await account('pkbob')
    await addPasskey(bob.token, bobKey)
    // Options asked for bob; alice's passkey answers.
    const forBob = await loginOptions(bob.user.username)
    expectUnauthorized(await passkeyLogin(yubikey.get(forBob, ORIGIN, { credential: yubikey.credential })))
    // Alice's credential claiming bob's user handle.
    expectUnauthorized(
      await passkeyLogin(
        yubikey.get(await loginOptions(), ORIGIN, { userHandle: bobKey.credential.userHandle }),
      ),
    )
    // Alice's credential id, signed with bob's key: a failure on alice's account.
    const before = (await history(alice.id)).filter((e) => e.type === 'LoginFailed').length
    expectUnauthorized(
      await passkeyLogin(
        yubikey.get(await loginOptions(), ORIGIN, {
          credential: yubikey.credential,
          signWith: bobKey.credential.privateKey,
        }),
      ),
    )
    expect((await history(alice.id)).filter((e) => e.type === 'LoginFailed').length).toBe(before + 1)
    // And bob's own passkey still logs bob in, not alice.
    const own = await passkeyLogin(bobKey.get(forBob, ORIGIN))
    expectStatus(own, 200)
    expect(claimsOf(own.body.access_token).sub).toBe(String(bob.id))
  })

  it('refuses an unknown credential (401)', async () => {
    const stranger = new SoftwareAuthenticator()
    stranger.create(await registrationOptions(alice.token), ORIGIN) // made, never registered
    expectUnauthorized(await passkeyLogin(stranger.get(await loginOptions(), ORIGIN)))
  })

  it('throttles repeated failures from one client for one account, as password logins are (423)', async () => {
    const key = new SoftwareAuthenticator()
    const dave = await account('pkthrottle')
    await addPasskey(dave.token, key)
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    for (let i = 0; i < 5; i++)
      expectUnauthorized(await passkeyLogin(key.get(await loginOptions(), ORIGIN, { signWith: privateKey })))
    const blocked = await passkeyLogin(key.get(await loginOptions(), ORIGIN))
    expectStatus(blocked, 423)
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0)
    clock.advance(16 * 60_000)
    expectStatus(await passkeyLogin(key.get(await loginOptions(), ORIGIN)), 200)
  })
})

describe('managing passkeys', () => {
  let erin: Account
  let key: SoftwareAuthenticator
  let passkeyId: number
  beforeAll(async () => {
    erin = await account('pkmanage')
    key = new SoftwareAuthenticator()
    passkeyId = (await addPasskey(erin.token, key, 'Old name')).id
  })

  it('renames a passkey (PUT) and validates the name', async () => {
    const reply = await request('PUT', `/auth/passkeys/${passkeyId}`, {
      token: erin.token,
      json: { name: '  Work key  ' },
    })
    expectStatus(reply, 200)
    expect(reply.body).toMatchObject({ id: passkeyId, name: 'Work key' })
    expectStatus(
      await request('PUT', `/auth/passkeys/${passkeyId}`, { token: erin.token, json: { name: '' } }),
      422,
    )
    expectStatus(
      await request('PUT', `/auth/passkeys/${passkeyId}`, {
        token: erin.token,
        json: { name: 'x'.repeat(65) },
      }),
      422,
    )
    expectStatus(await request('PUT', '/auth/passkeys/999', { token: erin.token, json: { name: 'x' } }), 404)
  })

  it('cannot see or touch another user’s passkeys', async () => {
    const frank = await account('pkfrank')
    expect((await request('GET', '/auth/passkeys', { token: frank.token })).body).toEqual([])
    expectStatus(await request('DELETE', `/auth/passkeys/${passkeyId}`, { token: frank.token }), 404)
    expectStatus(
      await request('PUT', `/auth/passkeys/${passkeyId}`, { token: frank.token, json: { name: 'mine' } }),
      404,
    )
  })

  it('removes a passkey (DELETE): it no longer logs in, and a second DELETE is 404', async () => {
    expectStatus(await passkeyLogin(key.get(await loginOptions(), ORIGIN)), 200)
    const removed = await request('DELETE', `/auth/passkeys/${passkeyId}`, { token: erin.token })
    expectStatus(removed, 200)
    expect(removed.body).toEqual({ message: expect.any(String) })
    expect((await request('GET', '/auth/passkeys', { token: erin.token })).body).toEqual([])
    expectUnauthorized(await passkeyLogin(key.get(await loginOptions(), ORIGIN)))
    // With her username, the options name a decoy now; the authenticator answers all the same.
    expectUnauthorized(
      await passkeyLogin(
        key.get(await loginOptions(erin.user.username), ORIGIN, { credential: key.credential }),
      ),
    )
    expectStatus(await request('DELETE', `/auth/passkeys/${passkeyId}`, { token: erin.token }), 404)
    expect(await activityTypes(erin.token)).toContain('passkey_removed')
    // Ids are not reused.
    expect((await addPasskey(erin.token, new SoftwareAuthenticator())).id).toBe(passkeyId + 1)
  })

  it('refuses hostile passkey ids in the path (422)', async () => {
    for (const id of ['0', '-1', '1.5', 'abc', '1e3'])
      expectStatus(await request('DELETE', `/auth/passkeys/${id}`, { token: erin.token }), 422)
  })
})

describe('locked, deactivated and deleted accounts', () => {
  let grace: Account
  let key: SoftwareAuthenticator
  beforeAll(async () => {
    grace = await account('pkstatus')
    key = new SoftwareAuthenticator()
    await addPasskey(grace.token, key)
  })

  it('a locked account cannot log in with a passkey (423) until unlocked', async () => {
    expectStatus(
      await request('POST', '/admin/lock', {
        token: adminToken,
        json: { user_id: grace.id, reason: 'test' },
      }),
      200,
    )
    expectStatus(await passkeyLogin(key.get(await loginOptions(), ORIGIN)), 423)
    // As for passwords, a locked account is told before any signature is checked or counted.
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const failuresBefore = (await history(grace.id)).filter((e) => e.type === 'LoginFailed').length
    expectStatus(await passkeyLogin(key.get(await loginOptions(), ORIGIN, { signWith: privateKey })), 423)
    expect((await history(grace.id)).filter((e) => e.type === 'LoginFailed')).toHaveLength(failuresBefore)
    expectStatus(
      await request('POST', '/admin/unlock', { token: adminToken, json: { user_id: grace.id } }),
      200,
    )
    expectStatus(await passkeyLogin(key.get(await loginOptions(), ORIGIN)), 200)
  })

  it('a deactivated account cannot log in with a passkey (403) until activated', async () => {
    expectStatus(await request('PUT', `/admin/deactivate-user/${grace.id}`, { token: adminToken }), 200)
    expectStatus(await passkeyLogin(key.get(await loginOptions(), ORIGIN)), 403)
    expectStatus(await request('PUT', `/admin/activate-user/${grace.id}`, { token: adminToken }), 200)
    expectStatus(await passkeyLogin(key.get(await loginOptions(grace.user.username), ORIGIN)), 200)
  })

  it('sessions a passkey started are revoked like any other', async () => {
    const session = await passkeyLogin(key.get(await loginOptions(), ORIGIN))
    expectStatus(session, 200)
    const sid = Number(claimsOf(session.body.access_token).sid)
    // (The lock above revoked grace's password session: a new one revokes the passkey's.)
    const other = await login(request, grace.user)
    expectStatus(await request('DELETE', `/auth/sessions/${sid}`, { token: other.access_token }), 200)
    expectUnauthorized(await request('GET', '/protected', { token: session.body.access_token }))
  })

  it('deleting the account erases its credentials: no login, "[erased]" in the history', async () => {
    expectStatus(await request('DELETE', `/admin/user/${grace.id}`, { token: adminToken }), 200)
    expectUnauthorized(await passkeyLogin(key.get(await loginOptions(), ORIGIN)))
    const registered = (await history(grace.id)).filter((e) => e.type === 'PasskeyRegistered')
    expect(registered).toHaveLength(1)
    for (const field of ['credential_id', 'public_key', 'user_handle', 'name'])
      expect(registered[0].data[field], field).toBe('[erased]')
  })
})

describe('two-factor accounts', () => {
  let henry: Account
  let secret: string
  let twoFactorToken: string
  const key = new SoftwareAuthenticator({ userVerification: true })

  beforeAll(async () => {
    henry = await account('pk2fa')
    const setup = await request('GET', '/auth/generate-2fa-code', { token: henry.token })
    secret = setup.body.secret
    const step = Math.floor(clock.now().getTime() / TOTP_PERIOD_MS)
    expect(base32Decode(secret).length).toBeGreaterThan(0)
    expectStatus(
      await request('POST', '/auth/enable-2fa', { token: henry.token, json: { code: totp(secret, step) } }),
      200,
    )
  })

  it('registering needs a session that passed 2FA (403 from a password-only session)', async () => {
    expectStatus(await request('POST', '/auth/passkeys/register/options', { token: henry.token }), 403)
    clock.advance(TOTP_PERIOD_MS)
    const challenge = await request('POST', '/auth/login', {
      form: { username: henry.user.username, password: henry.user.password },
    })
    expect(challenge.body.requires_2fa).toBe(true)
    const step = Math.floor(clock.now().getTime() / TOTP_PERIOD_MS)
    const verified = await request('POST', '/auth/verify-2fa', {
      token: challenge.body.access_token,
      json: { code: totp(secret, step) },
    })
    expectStatus(verified, 200)
    twoFactorToken = verified.body.access_token
    await addPasskey(twoFactorToken, key)
  })

  it('a passkey login that verified the user satisfies 2FA: amr ["hwk", "user"], test-2fa 200', async () => {
    const reply = await passkeyLogin(key.get(await loginOptions(henry.user.username), ORIGIN))
    expectStatus(reply, 200)
    expect(claimsOf(reply.body.access_token).amr).toEqual(['hwk', 'user'])
    expectStatus(await request('GET', '/auth/test-2fa', { token: reply.body.access_token }), 200)
    // Such a session may register further passkeys.
    expectStatus(
      await request('POST', '/auth/passkeys/register/options', { token: reply.body.access_token }),
      200,
    )
    // The password-only session has not passed 2FA.
    expectStatus(await request('GET', '/auth/test-2fa', { token: henry.token }), 403)
  })

  it('without user verification a 2FA account is refused (403), and no session starts', async () => {
    const reply = await passkeyLogin(key.get(await loginOptions(), ORIGIN, { userVerified: false }))
    expectStatus(reply, 403, /two-factor/i)
  })

  it('a passkey login without user verification does not satisfy 2FA on an account without it', async () => {
    const ian = await account('pknouv')
    const plain = new SoftwareAuthenticator()
    await addPasskey(ian.token, plain)
    const reply = await passkeyLogin(plain.get(await loginOptions(), ORIGIN))
    expectStatus(reply, 200)
    expect(claimsOf(reply.body.access_token).amr).toEqual(['hwk'])
    expectStatus(await request('GET', '/auth/test-2fa', { token: reply.body.access_token }), 403)
  })
})

describe('passwordless accounts', () => {
  let jane: Account
  let key: SoftwareAuthenticator
  let passkeySession: string

  beforeAll(async () => {
    jane = await account('pknopw')
    key = new SoftwareAuthenticator({ synced: true, userVerification: true })
  })

  it('cannot drop the password without a passkey, nor from a session a password started', async () => {
    expectStatus(await request('DELETE', '/auth/password', { token: jane.token }), 403)
    await addPasskey(jane.token, key)
    expectStatus(await request('DELETE', '/auth/password', { token: jane.token }), 403)
  })

  it('drops the password from a passkey session: the password stops working, other sessions end', async () => {
    const reply = await passkeyLogin(key.get(await loginOptions(), ORIGIN))
    expectStatus(reply, 200)
    passkeySession = reply.body.access_token
    expectStatus(await request('DELETE', '/auth/password', { token: passkeySession }), 200)
    expectUnauthorized(
      await request('POST', '/auth/login', {
        form: { username: jane.user.username, password: jane.user.password },
      }),
    )
    expectUnauthorized(await request('GET', '/protected', { token: jane.token }))
    expectStatus(await request('GET', '/protected', { token: passkeySession }), 200)
    expectStatus(await request('DELETE', '/auth/password', { token: passkeySession }), 400)
    expect(await activityTypes(passkeySession)).toContain('password_removed')
  })

  it('keeps the last passkey of an account without a password (409), not the others', async () => {
    const [only] = (await request('GET', '/auth/passkeys', { token: passkeySession })).body
    expectStatus(await request('DELETE', `/auth/passkeys/${only.id}`, { token: passkeySession }), 409)
    const second = await addPasskey(passkeySession, new SoftwareAuthenticator())
    expectStatus(await request('DELETE', `/auth/passkeys/${only.id}`, { token: passkeySession }), 200)
    expectStatus(await request('DELETE', `/auth/passkeys/${second.id}`, { token: passkeySession }), 409)
  })
})

describe('REQUIRE_VERIFIED_EMAIL=1', () => {
  it('refuses a passkey login to an unverified address (403), as a password login', async () => {
    const env = { RP_ID, RP_ORIGINS: ORIGIN }
    const first = await startServer(env)
    const firstApi = api(first.url)
    const user = newUser('pkunverified')
    await register(firstApi, user)
    const token = (await login(firstApi, user)).access_token
    const key = new SoftwareAuthenticator()
    const options = (await firstApi('POST', '/auth/passkeys/register/options', { token })).body
    const registered = await firstApi('POST', '/auth/passkeys/register', {
      token,
      json: { response: key.create(options, ORIGIN) },
    })
    expectStatus(registered, 200)
    await first.stop()
    // The same data, now requiring verified addresses.
    const second = await startServer({ ...env, REQUIRE_VERIFIED_EMAIL: '1' }, first.dataDir)
    try {
      const secondApi = api(second.url)
      const requestOptions = (await secondApi('POST', '/auth/passkeys/login/options', { json: {} })).body
      expectStatus(
        await secondApi('POST', '/auth/passkeys/login', {
          json: { response: key.get(requestOptions, ORIGIN) },
        }),
        403,
        /verif/i,
      )
    } finally {
      await second.close()
    }
  })
})

describe('tRPC and REST are the same procedures', () => {
  it('registers and logs in over tRPC (auth.passkeys.*)', async () => {
    const kate = await account('pktrpc')
    const client = (token?: string) =>
      createTRPCClient<AppRouter>({
        links: [
          httpLink({
            url: `${server.url}/trpc`,
            fetch: checkedFetch(),
            headers: () => (token ? { authorization: `Bearer ${token}` } : {}),
          }),
        ],
      })
    const key = new SoftwareAuthenticator({ userVerification: true })
    const options = await client(kate.token).auth.passkeys.registerOptions.mutate()
    const passkey = await client(kate.token).auth.passkeys.register.mutate({
      response: key.create(options, ORIGIN),
      name: 'via tRPC',
    })
    expect(passkey.name).toBe('via tRPC')
    expect(await client(kate.token).auth.passkeys.list.query()).toEqual([passkey])
    const requestOptions = await client().auth.passkeys.loginOptions.mutate({ username: kate.user.username })
    const token = await client().auth.passkeys.login.mutate({ response: key.get(requestOptions, ORIGIN) })
    expect(claimsOf(token.access_token).amr).toEqual(['hwk', 'user'])
    const refused = await client()
      .auth.passkeys.login.mutate({ response: key.get(requestOptions, ORIGIN) })
      .catch((error: unknown) => error)
    expect(refused).toBeInstanceOf(TRPCClientError)
    expect((refused as TRPCClientError<AppRouter>).data?.code).toBe('UNAUTHORIZED')
  })

  it('lists every passkey route in /openapi.json with its operationId', async () => {
    const doc = (await request('GET', '/openapi.json')).body
    const op = (method: string, path: string) => doc.paths[path]?.[method]?.operationId
    expect(op('post', '/auth/passkeys/register/options')).toBe('auth.passkeys.registerOptions')
    expect(op('post', '/auth/passkeys/register')).toBe('auth.passkeys.register')
    expect(op('get', '/auth/passkeys')).toBe('auth.passkeys.list')
    expect(op('put', '/auth/passkeys/{passkey_id}')).toBe('auth.passkeys.rename')
    expect(op('delete', '/auth/passkeys/{passkey_id}')).toBe('auth.passkeys.remove')
    expect(op('post', '/auth/passkeys/login/options')).toBe('auth.passkeys.loginOptions')
    expect(op('post', '/auth/passkeys/login')).toBe('auth.passkeys.login')
    expect(op('delete', '/auth/password')).toBe('auth.removePassword')
    expect(Object.keys(doc.components.schemas.Passkey.properties).sort()).toEqual([
      'created_at',
      'id',
      'last_used_at',
      'name',
    ])
    expect(doc.paths['/auth/passkeys/login'].post.security).toBeUndefined()
    expect(doc.paths['/auth/passkeys'].get.security).toBeDefined()
  })

  it('takes login options without a body at all over REST', async () => {
    const reply = await request('POST', '/auth/passkeys/login/options')
    expectStatus(reply, 200)
    expect(reply.body.challenge).toEqual(expect.any(String))
  })
})
