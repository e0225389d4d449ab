/**
 * The lockout as an attacker meets it (domain/lockout.ts), with clients told apart by
 * X-Forwarded-For behind a trusted proxy: a stranger's failures throttle the stranger, not the
 * owner; failures spread over many clients lock the account for new password logins only; an
 * admin can always recover, even when the admin accounts themselves are the target.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ACCOUNT_LOCK_THRESHOLD, MAX_CONSECUTIVE_FAILURES } from '../../domain/lockout.ts'
import { type Api, api, type NewUser, newUser, type Reply, register } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

const BOOTSTRAP = 'lockout-e2e-bootstrap-token'
let server: TestServer
let request: Api
/** A token of the first admin, made with the bootstrap token. */
let rootToken: string

beforeAll(async () => {
  server = await startServer({ TRUST_PROXY: '1', ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP })
  request = api(server.url)
  const root = await createAdmin('rootadmin')
  rootToken = (await adminLoginFrom('192.0.2.1', root.username, root.password)).body.access_token
})
afterAll(async () => {
  await server?.close()
})

const from = (client: string) => ({ 'x-forwarded-for': client })
const loginFrom = (client: string, username: string, password: string): Promise<Reply> =>
  request('POST', '/auth/login', { form: { username, password }, headers: from(client) })
const adminLoginFrom = (client: string, username: string, password: string): Promise<Reply> =>
  request('POST', '/admin/login', { json: { username, password }, headers: from(client) })

async function createAdmin(tag: string): Promise<NewUser & { id: number }> {
  const user = newUser(tag)
  const created = await request('POST', '/admin/register', {
    json: user,
    ...(rootToken ? { token: rootToken } : { headers: { 'x-bootstrap-token': BOOTSTRAP } }),
  })
  expect(created.status, JSON.stringify(created.body)).toBe(200)
  return { ...user, id: created.body.id }
}

/** Failed logins from `clients` distinct addresses, each staying below its own throttle. */
async function failFromManyClients(username: string, failures: number, path = '/auth/login'): Promise<void> {
  const perClient = MAX_CONSECUTIVE_FAILURES - 1
  for (let i = 0; i < failures; i++) {
    const client = `198.51.100.${Math.floor(i / perClient) + 1}`
    const reply =
      path === '/admin/login'
        ? await adminLoginFrom(client, username, `wrong-${i}`)
        : await loginFrom(client, username, `wrong-${i}`)
    expect(reply.status, `failure ${i + 1} from ${client}`).toBe(401)
  }
  await server.runtime.afterAnswer.settled()
}

describe('a stranger guessing passwords', () => {
  it('throttles the stranger; the owner still logs in from their own device', async () => {
    const owner = newUser('owner')
    await register(request, owner)
    for (let i = 0; i < MAX_CONSECUTIVE_FAILURES; i++) {
      expect((await loginFrom('203.0.113.66', owner.username, `guess-${i}`)).status).toBe(401)
    }
    const stranger = await loginFrom('203.0.113.66', owner.username, owner.password)
    expect(stranger.status).toBe(423)
    expect(Number(stranger.headers.get('retry-after'))).toBeGreaterThan(14 * 60)

    const own = await loginFrom('192.0.2.10', owner.username, owner.password)
    expect(own.status).toBe(200)
    // The owner's success does not lift the stranger's throttle.
    expect((await loginFrom('203.0.113.66', owner.username, owner.password)).status).toBe(423)
  })
})

describe('failures spread over many clients', () => {
  it(`lock the account after ${ACCOUNT_LOCK_THRESHOLD} in a row: new logins are refused from everywhere, open sessions keep working`, async () => {
    const target = newUser('target')
    const id = (await register(request, target)).id
    const session = await loginFrom('192.0.2.20', target.username, target.password)
    expect(session.status).toBe(200)

    await failFromManyClients(target.username, ACCOUNT_LOCK_THRESHOLD)
    const events = await server.runtime.store.readStream(`user-${id}`)
    expect(events.filter((e) => e.type === 'LoginFailed')).toHaveLength(ACCOUNT_LOCK_THRESHOLD)
    expect(events.at(-1)?.type).toBe('AccountLocked')
    expect(events.at(-1)?.data.reason).toBe('too_many_failures')

    const refused = await loginFrom('192.0.2.21', target.username, target.password)
    expect(refused.status).toBe(423)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(14 * 60)

    // No SessionsRevoked: the session opened before the attack still works and refreshes.
    expect(events.map((e) => e.type)).not.toContain('SessionsRevoked')
    expect((await request('GET', '/protected', { token: session.body.access_token })).status).toBe(200)
    const refreshed = await request('POST', '/auth/token-refresh', {
      json: { refresh_token: session.body.refresh_token },
    })
    expect(refreshed.status).toBe(200)
  })
})

describe('attacking the admins', () => {
  it('cannot take away an admin’s power or session; another admin recovers the account', async () => {
    const first = await createAdmin('firstadmin')
    const firstSession = await adminLoginFrom('192.0.2.30', first.username, first.password)
    expect(firstSession.status).toBe(200)
    const token = firstSession.body.access_token

    // The attacker learns the role from verify-user and aims at /admin/login from many addresses.
    await failFromManyClients(first.username, ACCOUNT_LOCK_THRESHOLD, '/admin/login')
    expect((await adminLoginFrom('192.0.2.30', first.username, first.password)).status).toBe(423)

    // The admin's own session still works, with its powers.
    expect((await request('GET', '/admin/users', { token })).status).toBe(200)
    // Another admin unlocks: the password login works again, from any client, and the
    // attackers' throttles are lifted too.
    const unlocked = await request('POST', '/admin/unlock', {
      json: { user_id: first.id },
      token: rootToken,
    })
    expect(unlocked.status).toBe(200)
    expect((await adminLoginFrom('192.0.2.30', first.username, first.password)).status).toBe(200)
  })

  it('an admin’s lock still revokes the sessions at once', async () => {
    const victim = newUser('victim')
    const id = (await register(request, victim)).id
    const session = await loginFrom('192.0.2.41', victim.username, victim.password)
    expect((await request('POST', '/admin/lock', { json: { user_id: id }, token: rootToken })).status).toBe(
      200,
    )
    expect((await request('GET', '/protected', { token: session.body.access_token })).status).toBe(401)
    const refreshed = await request('POST', '/auth/token-refresh', {
      json: { refresh_token: session.body.refresh_token },
    })
    expect(refreshed.status).toBe(401)
  })
})
