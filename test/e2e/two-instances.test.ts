import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sharedInstanceSettings, startTestPostgres, type TestPostgres } from '../../harness/postgres.ts'
import type { AuditEvent } from '../../src/app/audit.ts'
import { type Api, api, login, newUser, type Reply, type Tokens } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

const BOOTSTRAP = 'two-instances-bootstrap-token'

let pg: TestPostgres
let serverA: TestServer
let serverB: TestServer
let onA: Api
let onB: Api

/** Read-your-writes on the other instance: wait until it has projected the write. */
const readAfter = (reply: Reply): Record<string, string> => {
  const position = reply.headers.get('x-consistency-position')
  expect(position, 'a write answers with its position').not.toBeNull()
  return { 'x-consistency-position': position as string }
}

let env: Record<string, string>

beforeAll(async () => {
  pg = await startTestPostgres()
  env = {
    ...sharedInstanceSettings(pg.url),
    ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP,
  }
  serverA = await startServer(env)
  serverB = await startServer(env)
  onA = api(serverA.url)
  onB = api(serverB.url)
})
afterAll(async () => {
  await serverA?.close()
  await serverB?.close()
  await pg?.stop()
})

describe('two instances on one PostgreSQL database', () => {
  it('B reads what A encrypted, logs the user in, and shows it erased after A deletes it', async () => {
    const admin = newUser('twoadmin')
    const created = await onA('POST', '/admin/register', {
      json: admin,
      headers: { 'x-bootstrap-token': BOOTSTRAP },
    })
    expect(created.status, JSON.stringify(created.body)).toBe(200)
    const adminLogin = await onA('POST', '/admin/login', {
      json: { username: admin.username, password: admin.password },
    })
    expect(adminLogin.status).toBe(200)
    const adminToken: string = adminLogin.body.access_token

    const user = { ...newUser('twouser'), full_name: 'Twyla Instance' }
    const registered = await onA('POST', '/auth/register', { json: user })
    expect(registered.status, JSON.stringify(registered.body)).toBe(200)
    const id: number = registered.body.id

    // On B, with A's admin token (one signing key): the email A encrypted, decrypted.
    const verified = await onB('GET', `/auth/verify-user/${user.username}`, {
      token: adminToken,
      headers: readAfter(registered),
    })
    expect(verified.status, JSON.stringify(verified.body)).toBe(200)
    expect(verified.body).toMatchObject({ id, email: user.email, full_name: user.full_name })

    // The password hash A encrypted checks out on B, which writes the session with the same key.
    const loggedIn = await onB('POST', '/auth/login', {
      form: { username: user.username, password: user.password },
    })
    expect(loggedIn.status, JSON.stringify(loggedIn.body)).toBe(200)
    const tokens: Tokens = loggedIn.body
    // A knows the session once it has projected the login.
    const protectedOnA = await onA('GET', '/protected', {
      token: tokens.access_token,
      headers: readAfter(loggedIn),
    })
    expect(protectedOnA.body.user_id).toBe(id)

    const deleted = await onA('DELETE', `/admin/user/${id}`, { token: adminToken })
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(200)

    const history = await onB('GET', `/admin/users/${id}/history`, {
      token: adminToken,
      headers: readAfter(deleted),
    })
    expect(history.status, JSON.stringify(history.body)).toBe(200)
    const events: AuditEvent[] = history.body
    const text = JSON.stringify(events)
    for (const value of [user.email, user.full_name, user.username]) expect(text).not.toContain(value)
    expect(events.find((e) => e.type === 'AccountRegistered')?.data).toMatchObject({
      username: '[erased]',
      email: '[erased]',
      full_name: '[erased]',
    })
    expect(events.filter((e) => e.type === 'SessionStarted')[0]?.data).toMatchObject({
      ip_address: '[erased]',
    })
    expect(events.at(-1)?.type).toBe('AccountDeleted')

    // Gone on B as well: no login, no profile.
    expect((await onB('GET', `/auth/verify-user/${user.username}`, { token: adminToken })).status).toBe(404)
    const refused = await onB('POST', '/auth/login', {
      form: { username: user.username, password: user.password },
    })
    expect(refused.status).toBe(401)
    // The key is a tombstone in the shared table, for every instance to come.
    await serverA.runtime.dataKeys.preload([`user-${id}`])
    expect(serverA.runtime.dataKeys.isErased(`user-${id}`)).toBe(true)
  })

  it('refuses to start on PostgreSQL without MASTER_KEY, or without JWT_PRIVATE_KEY_PEM', async () => {
    await expect(startServer({ EVENT_STORE_URL: pg.url })).rejects.toThrow(/MASTER_KEY/)
    const { JWT_PRIVATE_KEY_PEM: _, ...withoutSigningKey } = env
    await expect(startServer(withoutSigningKey)).rejects.toThrow(/JWT_PRIVATE_KEY_PEM is required/)
  })

  it("rotates the signing key one instance at a time without either refusing the other's tokens", async () => {
    const pem = (key: KeyObject, type: 'pkcs8' | 'spki') =>
      key.export({ type, format: 'pem' } as never).toString()
    const oldKey = generateKeyPairSync('ed25519')
    const newKey = generateKeyPairSync('ed25519')
    const withKey = (signing: KeyObject, ...accepted: KeyObject[]) => ({
      ...env,
      JWT_PRIVATE_KEY_PEM: pem(signing, 'pkcs8'),
      JWT_VERIFY_PUBLIC_KEYS_PEM: accepted.map((key) => pem(key, 'spki')).join(''),
    })
    // A fresh database, so the instances above do not count.
    const rotation = await startTestPostgres()
    const started: TestServer[] = []
    const start = async (settings: Record<string, string>) => {
      const server = await startServer({ ...settings, EVENT_STORE_URL: rotation.url })
      started.push(server)
      return server
    }
    try {
      // Step 1: both sign with the old key; each accepts the new one ahead of the switch.
      const a = await start(withKey(oldKey.privateKey, newKey.publicKey))
      // Step 2: B switches to the new key and keeps accepting the old one.
      const b = await start(withKey(newKey.privateKey, oldKey.publicKey))
      const user = newUser('rotated')
      const registered = await api(a.url)('POST', '/auth/register', { json: user })
      expect(registered.status).toBe(200)
      const fromA = await login(api(a.url), user)
      const loginOnB = await api(b.url)('POST', '/auth/login', {
        form: { username: user.username, password: user.password },
      })
      expect(loginOnB.status).toBe(200)
      const fromB = loginOnB.body
      expect(fromA.access_token).not.toBe(fromB.access_token)
      // Both sessions projected everywhere before they are checked: this is about keys.
      const seenEverywhere = readAfter(loginOnB)
      for (const server of [a, b]) {
        for (const token of [fromA.access_token, fromB.access_token])
          expect(
            (await api(server.url)('GET', '/protected', { token, headers: seenEverywhere })).status,
          ).toBe(200)
        const jwks = await api(server.url)('GET', '/.well-known/jwks.json')
        expect(jwks.body.keys).toHaveLength(2)
      }

      // An instance with an unrelated key is refused, naming the setting and the way to rotate.
      const stranger = generateKeyPairSync('ed25519')
      await expect(start(withKey(stranger.privateKey))).rejects.toThrow(
        /JWT_PRIVATE_KEY_PEM does not match.*JWT_VERIFY_PUBLIC_KEYS_PEM/,
      )
      // Step 3, once old tokens have expired: the new key alone.
      const c = await start(withKey(newKey.privateKey))
      expect(
        (await api(c.url)('GET', '/protected', { token: fromB.access_token, headers: seenEverywhere }))
          .status,
      ).toBe(200)
      expect((await api(c.url)('GET', '/protected', { token: fromA.access_token })).status).toBe(401)
    } finally {
      for (const server of started) await server.close()
      await rotation.stop()
    }
  })
})
