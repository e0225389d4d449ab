import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Api,
  api,
  claimsOf,
  expectUnauthorized,
  login,
  type NewUser,
  newUser,
  type Reply,
  register,
  type Tokens,
  USER_RESPONSE_KEYS,
} from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

const BOOTSTRAP = 'admin-e2e-bootstrap-token'
const TOKEN_KEYS = ['access_token', 'expires_in', 'refresh_token', 'token_type']

function expectStatus(reply: Reply, status: number): void {
  expect(reply.status, JSON.stringify(reply.body)).toBe(status)
  if (status >= 400 && status !== 422) expect(reply.body).toEqual({ detail: expect.any(String) })
}

async function adminLogin(request: Api, user: { username: string; password: string }): Promise<Tokens> {
  const reply = await request('POST', '/admin/login', {
    json: { username: user.username, password: user.password },
  })
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  return reply.body
}

/** Creates the first admin with the bootstrap token and logs it in. */
async function bootstrapAdmin(
  request: Api,
  tag = 'admin',
): Promise<{ user: NewUser; id: number; token: string }> {
  const user = newUser(tag)
  const created = await request('POST', '/admin/register', {
    json: user,
    headers: { 'x-bootstrap-token': BOOTSTRAP },
  })
  expect(created.status, JSON.stringify(created.body)).toBe(200)
  return { user, id: created.body.id, token: (await adminLogin(request, user)).access_token }
}

describe('POST /admin/register: bootstrap', () => {
  let server: TestServer
  let request: Api
  beforeAll(async () => {
    server = await startServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP })
    request = api(server.url)
  })
  afterAll(async () => {
    await server?.close()
  })

  it('takes the bootstrap token only while no admin exists, then only an admin’s token', async () => {
    const first = newUser('boot')
    // Wrong or missing bootstrap token, while there is no admin yet: 401.
    expectUnauthorized(
      await request('POST', '/admin/register', { json: first, headers: { 'x-bootstrap-token': 'wrong' } }),
    )
    expectUnauthorized(
      await request('POST', '/admin/register', {
        json: first,
        headers: { 'x-bootstrap-token': `${BOOTSTRAP}x` },
      }),
    )
    expectUnauthorized(await request('POST', '/admin/register', { json: first }))

    const created = await request('POST', '/admin/register', {
      json: first,
      headers: { 'x-bootstrap-token': BOOTSTRAP },
    })
    expect(created.status, JSON.stringify(created.body)).toBe(200)
    expect(Object.keys(created.body).sort()).toEqual(USER_RESPONSE_KEYS)
    expect(created.body).toMatchObject({
      username: first.username,
      email: first.email,
      role: 'admin',
      is_active: true,
      is_locked: false,
    })

    // Once an admin exists, the bootstrap token is worthless.
    const second = newUser('boot')
    expectUnauthorized(
      await request('POST', '/admin/register', { json: second, headers: { 'x-bootstrap-token': BOOTSTRAP } }),
    )

    // A normal user's token is 403, with or without the bootstrap token.
    const plain = newUser('plain')
    await register(request, plain)
    const plainToken = (await login(request, plain)).access_token
    expectStatus(await request('POST', '/admin/register', { json: second, token: plainToken }), 403)
    expectStatus(
      await request('POST', '/admin/register', {
        json: second,
        token: plainToken,
        headers: { 'x-bootstrap-token': BOOTSTRAP },
      }),
      403,
    )

    // The admin's bearer token works.
    const adminToken = (await adminLogin(request, first)).access_token
    const byAdmin = await request('POST', '/admin/register', { json: second, token: adminToken })
    expect(byAdmin.status, JSON.stringify(byAdmin.body)).toBe(200)
    expect(byAdmin.body.role).toBe('admin')
    expect(byAdmin.body.username).toBe(second.username)
    expect((await adminLogin(request, second)).token_type).toBe('bearer')

    // Duplicate username through the admin route: 409.
    const dup = await request('POST', '/admin/register', {
      json: { ...newUser('boot'), username: second.username },
      token: adminToken,
    })
    expectStatus(dup, 409)
  })
})

describe('POST /admin/register: concurrent bootstrap', () => {
  let server: TestServer
  let request: Api
  beforeAll(async () => {
    server = await startServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP })
    request = api(server.url)
  })
  afterAll(async () => {
    await server?.close()
  })

  it('creates exactly one admin when several requests race with the bootstrap token', async () => {
    const candidates = Array.from({ length: 6 }, () => newUser('race'))
    const replies = await Promise.all(
      candidates.map((json) =>
        request('POST', '/admin/register', { json, headers: { 'x-bootstrap-token': BOOTSTRAP } }),
      ),
    )
    const statuses = replies.map((r) => r.status)
    expect(
      statuses.filter((s) => s === 200),
      JSON.stringify(statuses),
    ).toHaveLength(1)
    expect(statuses.filter((s) => s === 401)).toHaveLength(candidates.length - 1)
    const winner = candidates[statuses.indexOf(200)]
    const token = (await adminLogin(request, winner)).access_token
    const admins = await request('GET', '/admin/users?role=admin', { token })
    expect(admins.body.map((u: { username: string }) => u.username)).toEqual([winner.username])
  })
})

describe('admin routes', () => {
  let server: TestServer
  let request: Api
  let admin: { user: NewUser; id: number; token: string }

  beforeAll(async () => {
    server = await startServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP })
    request = api(server.url)
    admin = await bootstrapAdmin(request)
  })
  afterAll(async () => {
    await server?.close()
  })

  async function newAccount(
    tag: string,
    extra: Partial<NewUser> = {},
  ): Promise<{ user: NewUser; id: number }> {
    const user = { ...newUser(tag), ...extra }
    return { user, id: (await register(request, user)).id }
  }

  const protectedStatus = async (token: string): Promise<number> =>
    (await request('GET', '/protected', { token })).status

  const loginReply = (user: NewUser): Promise<Reply> =>
    request('POST', '/auth/login', { form: { username: user.username, password: user.password } })

  const wrongPassword = (user: NewUser): Promise<Reply> =>
    request('POST', '/auth/login', { form: { username: user.username, password: `${user.password}-wrong` } })

  describe('POST /admin/login', () => {
    it('gives an admin a Token whose JWT says role admin', async () => {
      const reply = await request('POST', '/admin/login', {
        json: { username: admin.user.username, password: admin.user.password },
      })
      expect(reply.status).toBe(200)
      expect(Object.keys(reply.body).sort()).toEqual(TOKEN_KEYS)
      expect(reply.body.token_type).toBe('bearer')
      expect(claimsOf(reply.body.access_token)).toMatchObject({ sub: String(admin.id), role: 'admin' })
      expect(await protectedStatus(reply.body.access_token)).toBe(200)
    })

    it('answers 401 for a normal user with the right password, and for a wrong admin password', async () => {
      const { user } = await newAccount('notadmin')
      expectUnauthorized(
        await request('POST', '/admin/login', { json: { username: user.username, password: user.password } }),
      )
      expectUnauthorized(
        await request('POST', '/admin/login', {
          json: { username: admin.user.username, password: `${admin.user.password}x` },
        }),
      )
      expectUnauthorized(
        await request('POST', '/admin/login', {
          json: { username: 'no_such_admin_anywhere', password: admin.user.password },
        }),
      )
      // The normal user can still log in normally.
      expect((await loginReply(user)).status).toBe(200)
    })
  })

  describe('GET /admin/users', () => {
    const tag = `lst${process.pid.toString(36)}`
    let listed: { user: NewUser; id: number }[]

    beforeAll(async () => {
      listed = []
      for (let i = 0; i < 3; i++) listed.push(await newAccount(tag, { full_name: `Lister Number ${i}` }))
    })

    it('lists every user ordered by id, for an admin', async () => {
      const reply = await request('GET', '/admin/users', { token: admin.token })
      expect(reply.status).toBe(200)
      expect(Array.isArray(reply.body)).toBe(true)
      for (const u of reply.body) expect(Object.keys(u).sort()).toEqual(USER_RESPONSE_KEYS)
      const ids = reply.body.map((u: { id: number }) => u.id)
      expect(ids).toEqual([...ids].sort((a: number, b: number) => a - b))
      expect(ids).toEqual(expect.arrayContaining([admin.id, ...listed.map((l) => l.id)]))
      const mine = reply.body.find((u: { id: number }) => u.id === listed[0].id)
      expect(mine).toMatchObject({
        username: listed[0].user.username,
        email: listed[0].user.email,
        full_name: 'Lister Number 0',
        role: 'user',
        is_active: true,
        is_locked: false,
        is_2fa_enabled: false,
      })
    })

    it('filters with q (username, email or full name) and pages with skip and limit', async () => {
      const all = await request('GET', `/admin/users?q=${tag}`, { token: admin.token })
      expect(all.status).toBe(200)
      expect(all.body.map((u: { id: number }) => u.id)).toEqual(listed.map((l) => l.id))

      const byEmail = await request('GET', `/admin/users?q=${encodeURIComponent(listed[1].user.email)}`, {
        token: admin.token,
      })
      expect(byEmail.body.map((u: { id: number }) => u.id)).toEqual([listed[1].id])

      const byName = await request('GET', `/admin/users?q=${encodeURIComponent('lister number 2')}`, {
        token: admin.token,
      })
      expect(byName.body.map((u: { id: number }) => u.id)).toEqual([listed[2].id])

      const firstTwo = await request('GET', `/admin/users?q=${tag}&limit=2`, { token: admin.token })
      expect(firstTwo.body.map((u: { id: number }) => u.id)).toEqual([listed[0].id, listed[1].id])
      const skipped = await request('GET', `/admin/users?q=${tag}&skip=1&limit=2`, { token: admin.token })
      expect(skipped.body.map((u: { id: number }) => u.id)).toEqual([listed[1].id, listed[2].id])
      const past = await request('GET', `/admin/users?q=${tag}&skip=3`, { token: admin.token })
      expect(past.body).toEqual([])

      const none = await request('GET', '/admin/users?q=nobody_matches_this_zz', { token: admin.token })
      expect(none.body).toEqual([])
      // LIKE wildcards in q are taken literally.
      for (const wildcard of ['%', '%25', `${tag}%25`]) {
        const reply = await request('GET', `/admin/users?q=${wildcard}`, { token: admin.token })
        expect(reply.status).toBe(200)
        expect(reply.body, `q=${wildcard}`).toEqual([])
      }
    })

    it('pages by key with after_id (skip applies after it), alone or with q and role', async () => {
      const ids = (reply: { body: { id: number }[] }) => reply.body.map((u) => u.id)
      const [first, second, third] = listed.map((l) => l.id)
      const after = await request('GET', `/admin/users?q=${tag}&after_id=${first}`, { token: admin.token })
      expect(after.status).toBe(200)
      expect(ids(after)).toEqual([second, third])
      const skipped = await request('GET', `/admin/users?q=${tag}&after_id=${first}&skip=1`, {
        token: admin.token,
      })
      expect(ids(skipped)).toEqual([third])
      const withRole = await request('GET', `/admin/users?role=user&q=${tag}&after_id=${second}`, {
        token: admin.token,
      })
      expect(ids(withRole)).toEqual([third])
      const page = await request('GET', `/admin/users?after_id=${second}&limit=1`, { token: admin.token })
      expect(ids(page)).toEqual([third])
      expect((await request('GET', '/admin/users?after_id=-1', { token: admin.token })).status).toBe(422)
      const bad = await request('GET', '/admin/users?after_id=abc', { token: admin.token })
      expect(bad.status).toBe(422)
      expect(bad.body.detail[0].loc).toEqual(['query', 'after_id'])
    })

    it('filters by role', async () => {
      const vendor = newUser('listvendor')
      const created = await request('POST', '/vendor/register_vendor', {
        json: { ...vendor, company_name: 'Lister Ltd' },
      })
      expect(created.status).toBe(200)

      const admins = await request('GET', '/admin/users?role=admin', { token: admin.token })
      expect(admins.status).toBe(200)
      expect(admins.body.map((u: { id: number }) => u.id)).toContain(admin.id)
      expect(admins.body.every((u: { role: string }) => u.role === 'admin')).toBe(true)

      const vendors = await request('GET', '/admin/users?role=vendor', { token: admin.token })
      expect(vendors.body.map((u: { id: number }) => u.id)).toContain(created.body.id)
      expect(vendors.body.every((u: { role: string }) => u.role === 'vendor')).toBe(true)

      const users = await request('GET', `/admin/users?role=user&q=${tag}`, { token: admin.token })
      expect(users.body.map((u: { id: number }) => u.id)).toEqual(listed.map((l) => l.id))
      const noAdmins = await request('GET', `/admin/users?role=admin&q=${tag}`, { token: admin.token })
      expect(noAdmins.body).toEqual([])

      expect((await request('GET', '/admin/users?role=superuser', { token: admin.token })).status).toBe(422)
    })

    it('validates limit (max 1000) and skip', async () => {
      const over = await request('GET', '/admin/users?limit=1001', { token: admin.token })
      expect(over.status).toBe(422)
      expect(over.body.detail[0].loc).toEqual(['query', 'limit'])
      expect((await request('GET', '/admin/users?limit=1000', { token: admin.token })).status).toBe(200)
      expect((await request('GET', '/admin/users?limit=0', { token: admin.token })).status).toBe(422)
      expect((await request('GET', '/admin/users?skip=-1', { token: admin.token })).status).toBe(422)
      expect((await request('GET', '/admin/users?limit=abc', { token: admin.token })).status).toBe(422)
    })

    it('is 403 for a user token and 401 without a token', async () => {
      const token = (await login(request, listed[0].user)).access_token
      expectStatus(await request('GET', '/admin/users', { token }), 403)
      expectUnauthorized(await request('GET', '/admin/users'))
      expectUnauthorized(await request('GET', '/admin/users', { token: 'not.a.jwt' }))
    })
  })

  describe('auditor role', () => {
    it('made with PUT /admin/user/role, can list users but is 403 on every changing route', async () => {
      const auditor = await newAccount('auditor')
      const target = await newAccount('audited')
      const promoted = await request('PUT', '/admin/user/role', {
        json: { user_id: auditor.id, role: 'auditor' },
        token: admin.token,
      })
      expect(promoted.status).toBe(200)
      expect(promoted.body.role).toBe('auditor')

      const token = (await login(request, auditor.user)).access_token
      expect(claimsOf(token).role).toBe('auditor')
      const list = await request('GET', '/admin/users', { token })
      expect(list.status).toBe(200)
      expect(list.body.map((u: { id: number }) => u.id)).toContain(target.id)

      const changes: [string, string, unknown][] = [
        ['PUT', `/admin/deactivate-user/${target.id}`, undefined],
        ['PUT', `/admin/activate-user/${target.id}`, undefined],
        ['PUT', '/admin/user/role', { user_id: target.id, role: 'admin' }],
        ['PUT', '/admin/user/role', { user_id: auditor.id, role: 'admin' }],
        ['DELETE', `/admin/user/${target.id}`, undefined],
        ['POST', '/admin/lock', { user_id: target.id, reason: 'auditor tries' }],
        ['POST', '/admin/unlock', { user_id: target.id }],
        ['POST', '/admin/register', newUser('byauditor')],
      ]
      for (const [method, path, json] of changes) {
        const reply = await request(method, path, { token, json })
        expect(reply.status, `${method} ${path}`).toBe(403)
        expect(reply.body).toEqual({ detail: expect.any(String) })
      }

      // Nothing changed.
      const after = await request('GET', `/admin/users?q=${target.user.username}`, { token })
      expect(after.body).toHaveLength(1)
      expect(after.body[0]).toMatchObject({ id: target.id, role: 'user', is_active: true, is_locked: false })
      expect((await loginReply(target.user)).status).toBe(200)
      const self = await request('GET', `/admin/users?q=${auditor.user.username}`, { token })
      expect(self.body[0].role).toBe('auditor')
    })
  })

  describe('deactivate and activate', () => {
    it('deactivation stops the tokens at once, login is 403 and refresh 401; activation lets the user back in', async () => {
      const { user, id } = await newAccount('deact')
      const tokens = await login(request, user)
      expect(await protectedStatus(tokens.access_token)).toBe(200)

      const reply = await request('PUT', `/admin/deactivate-user/${id}`, { token: admin.token })
      expect(reply.status).toBe(200)
      expect(Object.keys(reply.body).sort()).toEqual(USER_RESPONSE_KEYS)
      expect(reply.body).toMatchObject({ id, username: user.username, email: user.email, is_active: false })

      expect(await protectedStatus(tokens.access_token)).toBe(401)
      const refused = await loginReply(user)
      expectStatus(refused, 403)
      expectUnauthorized(
        await request('POST', '/auth/token-refresh', { json: { refresh_token: tokens.refresh_token } }),
      )
      const listed = await request('GET', `/admin/users?q=${user.username}`, { token: admin.token })
      expect(listed.body[0].is_active).toBe(false)

      // Deactivating twice is harmless.
      const again = await request('PUT', `/admin/deactivate-user/${id}`, { token: admin.token })
      expect(again.status).toBe(200)
      expect(again.body.is_active).toBe(false)

      const activated = await request('PUT', `/admin/activate-user/${id}`, { token: admin.token })
      expect(activated.status).toBe(200)
      expect(Object.keys(activated.body).sort()).toEqual(USER_RESPONSE_KEYS)
      expect(activated.body).toMatchObject({ id, is_active: true })
      const back = await login(request, user)
      expect(await protectedStatus(back.access_token)).toBe(200)
      // The sessions revoked by the deactivation stay revoked.
      expect(await protectedStatus(tokens.access_token)).toBe(401)
    })
  })

  describe('lock and unlock', () => {
    it('a lock with a duration: tokens 401 at once, login 423 with Retry-After; unlock lets the user in', async () => {
      const { user, id } = await newAccount('locked')
      const tokens = await login(request, user)
      const reply = await request('POST', '/admin/lock', {
        json: { user_id: id, reason: 'suspicious activity', duration_minutes: 10 },
        token: admin.token,
      })
      expect(reply.status, JSON.stringify(reply.body)).toBe(200)
      expect(reply.body).toEqual({ message: expect.any(String) })

      expect(await protectedStatus(tokens.access_token)).toBe(401)
      expectUnauthorized(
        await request('POST', '/auth/token-refresh', { json: { refresh_token: tokens.refresh_token } }),
      )
      const refused = await loginReply(user)
      expectStatus(refused, 423)
      const retryAfter = Number(refused.headers.get('retry-after'))
      expect(Number.isInteger(retryAfter)).toBe(true)
      expect(retryAfter).toBeGreaterThan(0)
      expect(retryAfter).toBeLessThanOrEqual(600)
      // Even the right password of a locked account is refused.
      const listed = await request('GET', `/admin/users?q=${user.username}`, { token: admin.token })
      expect(listed.body[0].is_locked).toBe(true)

      const unlocked = await request('POST', '/admin/unlock', { json: { user_id: id }, token: admin.token })
      expect(unlocked.status).toBe(200)
      expect(unlocked.body).toEqual({ message: expect.any(String) })
      const back = await login(request, user)
      expect(await protectedStatus(back.access_token)).toBe(200)
      const after = await request('GET', `/admin/users?q=${user.username}`, { token: admin.token })
      expect(after.body[0].is_locked).toBe(false)
    })

    it('a lock without a duration holds until unlock', async () => {
      const { user, id } = await newAccount('lockforever')
      const tokens = await login(request, user)
      const reply = await request('POST', '/admin/lock', { json: { user_id: id }, token: admin.token })
      expect(reply.status).toBe(200)
      expect(await protectedStatus(tokens.access_token)).toBe(401)
      expectStatus(await loginReply(user), 423)
      expectStatus(await loginReply(user), 423)
      const nulls = await request('POST', '/admin/lock', {
        json: { user_id: id, reason: null, duration_minutes: null },
        token: admin.token,
      })
      expect(nulls.status).toBe(200)
      expectStatus(await loginReply(user), 423)

      expect(
        (await request('POST', '/admin/unlock', { json: { user_id: id }, token: admin.token })).status,
      ).toBe(200)
      expect((await loginReply(user)).status).toBe(200)
    })

    it('validates the lock request', async () => {
      const { id } = await newAccount('lockval')
      for (const json of [
        { user_id: id, duration_minutes: 0 },
        { user_id: id, duration_minutes: -5 },
        { user_id: id, duration_minutes: 1.5 },
        { user_id: id, duration_minutes: 'ten' },
        { reason: 'no id' },
      ]) {
        const reply = await request('POST', '/admin/lock', { json, token: admin.token })
        expect(reply.status, JSON.stringify(json)).toBe(422)
        expect(Array.isArray(reply.body.detail)).toBe(true)
      }
    })

    const adminPost = async (path: string, userId: number): Promise<number> =>
      (await request('POST', path, { json: { user_id: userId }, token: admin.token })).status

    it('unlock clears the failed-login counter (after an admin lock)', async () => {
      const { user, id } = await newAccount('unlockcount')
      for (let i = 0; i < 4; i++) expectUnauthorized(await wrongPassword(user))
      expect(await adminPost('/admin/lock', id)).toBe(200)
      expect(await adminPost('/admin/unlock', id)).toBe(200)
      // A fifth failure in a row would lock the account, were the counter still at 4.
      expectUnauthorized(await wrongPassword(user))
      expect((await loginReply(user)).status).toBe(200)
    })

    it('unlock clears the failed-login counter (without a lock)', async () => {
      const { user, id } = await newAccount('unlockonly')
      for (let i = 0; i < 4; i++) expectUnauthorized(await wrongPassword(user))
      expect(await adminPost('/admin/unlock', id)).toBe(200)
      expectUnauthorized(await wrongPassword(user))
      expect((await loginReply(user)).status).toBe(200)
    })

    it('control: without an unlock, the fifth failure locks the account', async () => {
      const { user } = await newAccount('nounlock')
      for (let i = 0; i < 5; i++) expectUnauthorized(await wrongPassword(user))
      const locked = await loginReply(user)
      expectStatus(locked, 423)
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0)
    })
  })

  describe('PUT /admin/user/role', () => {
    it('answers the new role, revokes existing sessions, and new tokens carry the new role', async () => {
      const { user, id } = await newAccount('rolechange')
      const tokens = await login(request, user)
      expect(claimsOf(tokens.access_token).role).toBe('user')

      const reply = await request('PUT', '/admin/user/role', {
        json: { user_id: id, role: 'vendor' },
        token: admin.token,
      })
      expect(reply.status).toBe(200)
      expect(Object.keys(reply.body).sort()).toEqual(USER_RESPONSE_KEYS)
      expect(reply.body).toMatchObject({ id, role: 'vendor', username: user.username })

      expect(await protectedStatus(tokens.access_token)).toBe(401)
      expectUnauthorized(
        await request('POST', '/auth/token-refresh', { json: { refresh_token: tokens.refresh_token } }),
      )
      const fresh = await login(request, user)
      expect(claimsOf(fresh.access_token).role).toBe('vendor')
      const hello = await request('GET', '/protected', { token: fresh.access_token })
      expect(hello.status).toBe(200)
      expect(hello.body.role).toBe('vendor')
      // The vendor login now takes the account.
      const vendorLogin = await request('POST', '/vendor/login', {
        json: { username: user.username, password: user.password },
      })
      expect(vendorLogin.status).toBe(200)

      // Promoted to admin: the admin routes open up for the new token only.
      const promoted = await request('PUT', '/admin/user/role', {
        json: { user_id: id, role: 'admin' },
        token: admin.token,
      })
      expect(promoted.body.role).toBe('admin')
      expect(await protectedStatus(fresh.access_token)).toBe(401)
      const asAdmin = await adminLogin(request, user)
      expect(claimsOf(asAdmin.access_token).role).toBe('admin')
      expect((await request('GET', '/admin/users', { token: asAdmin.access_token })).status).toBe(200)
    })

    it('validates the role and the user id', async () => {
      const { id } = await newAccount('roleval')
      for (const json of [
        { user_id: id, role: 'superuser' },
        { user_id: id },
        { user_id: 'abc', role: 'user' },
        { user_id: 0, role: 'user' },
        { role: 'user' },
      ]) {
        const reply = await request('PUT', '/admin/user/role', { json, token: admin.token })
        expect(reply.status, JSON.stringify(json)).toBe(422)
      }
    })
  })

  describe('unknown, malformed and own ids', () => {
    const UNKNOWN = 987_654

    it('answers 404 for an unknown user id on every admin route', async () => {
      const routes: [string, string, unknown][] = [
        ['PUT', `/admin/deactivate-user/${UNKNOWN}`, undefined],
        ['PUT', `/admin/activate-user/${UNKNOWN}`, undefined],
        ['PUT', '/admin/user/role', { user_id: UNKNOWN, role: 'admin' }],
        ['DELETE', `/admin/user/${UNKNOWN}`, undefined],
        ['POST', '/admin/lock', { user_id: UNKNOWN, reason: 'x', duration_minutes: 5 }],
        ['POST', '/admin/unlock', { user_id: UNKNOWN }],
        ['GET', `/admin/users/${UNKNOWN}/history`, undefined],
      ]
      for (const [method, path, json] of routes) {
        const reply = await request(method, path, { json, token: admin.token })
        expect(reply.status, `${method} ${path}: ${JSON.stringify(reply.body)}`).toBe(404)
        expect(reply.body).toEqual({ detail: 'User not found' })
      }
    })

    it('answers 422 for non-integer ids in the path', async () => {
      for (const bad of ['abc', '1.5', '0', '-3', '1e3x']) {
        for (const [method, path] of [
          ['PUT', `/admin/deactivate-user/${bad}`],
          ['PUT', `/admin/activate-user/${bad}`],
          ['DELETE', `/admin/user/${bad}`],
          ['GET', `/admin/users/${bad}/history`],
        ]) {
          const reply = await request(method, path, { token: admin.token })
          expect(reply.status, `${method} ${path}`).toBe(422)
          expect(reply.body.detail[0].loc).toEqual(['path', 'user_id'])
        }
      }
    })

    it('forbids an admin to deactivate, lock, delete or re-role themself', async () => {
      const routes: [string, string, unknown][] = [
        ['PUT', `/admin/deactivate-user/${admin.id}`, undefined],
        ['POST', '/admin/lock', { user_id: admin.id, reason: 'self' }],
        ['DELETE', `/admin/user/${admin.id}`, undefined],
        ['PUT', '/admin/user/role', { user_id: admin.id, role: 'user' }],
      ]
      for (const [method, path, json] of routes) {
        const reply = await request(method, path, { json, token: admin.token })
        expect(reply.status, `${method} ${path}`).toBe(403)
        expect(reply.body).toEqual({ detail: expect.any(String) })
      }
      // The admin is untouched and the token still works.
      const me = await request('GET', `/admin/users?q=${admin.user.username}`, { token: admin.token })
      expect(me.status).toBe(200)
      expect(me.body[0]).toMatchObject({ id: admin.id, role: 'admin', is_active: true, is_locked: false })
    })

    it('is 403 for a normal user and 401 without a token on every changing route', async () => {
      const { user, id } = await newAccount('nopriv')
      const token = (await login(request, user)).access_token
      const routes: [string, string, unknown][] = [
        ['PUT', `/admin/deactivate-user/${id}`, undefined],
        ['PUT', `/admin/activate-user/${id}`, undefined],
        ['PUT', '/admin/user/role', { user_id: id, role: 'admin' }],
        ['DELETE', `/admin/user/${id}`, undefined],
        ['POST', '/admin/lock', { user_id: id }],
        ['POST', '/admin/unlock', { user_id: id }],
      ]
      for (const [method, path, json] of routes) {
        expect((await request(method, path, { json, token })).status, `${method} ${path}`).toBe(403)
        expectUnauthorized(await request(method, path, { json }))
      }
      expect(claimsOf((await login(request, user)).access_token).role).toBe('user')
    })
  })

  describe('actors in the history', () => {
    it('records the acting admin as actor_id on every admin event', async () => {
      // A second admin, created by the first: its registration is the first admin's act.
      const other = newUser('admin2')
      const created = await request('POST', '/admin/register', { json: other, token: admin.token })
      expect(created.status).toBe(200)
      const otherToken = (await adminLogin(request, other)).access_token

      const { user, id } = await newAccount('acted')
      await login(request, user)
      const act = async (token: string, method: string, path: string, json?: unknown): Promise<void> => {
        const reply = await request(method, path, { json, token })
        expect(reply.status, `${method} ${path}: ${JSON.stringify(reply.body)}`).toBe(200)
      }
      await act(admin.token, 'PUT', `/admin/deactivate-user/${id}`)
      await act(otherToken, 'PUT', `/admin/activate-user/${id}`)
      await act(admin.token, 'POST', '/admin/lock', { user_id: id, reason: 'check', duration_minutes: 30 })
      await act(otherToken, 'POST', '/admin/unlock', { user_id: id })
      await act(otherToken, 'PUT', '/admin/user/role', { user_id: id, role: 'auditor' })

      const history = await request('GET', `/admin/users/${id}/history`, { token: admin.token })
      expect(history.status).toBe(200)
      const account = history.body.filter((e: { stream: string }) => e.stream === `user-${id}`)
      const byType = (type: string) => account.filter((e: { type: string }) => e.type === type)
      expect(byType('AccountRegistered')[0].actor_id).toBeNull()
      expect(byType('AccountDeactivated').map((e: { actor_id: number }) => e.actor_id)).toEqual([admin.id])
      expect(byType('AccountActivated').map((e: { actor_id: number }) => e.actor_id)).toEqual([
        created.body.id,
      ])
      expect(byType('AccountLocked').map((e: { actor_id: number }) => e.actor_id)).toEqual([admin.id])
      expect(byType('AccountUnlocked').map((e: { actor_id: number }) => e.actor_id)).toEqual([
        created.body.id,
      ])
      expect(byType('RoleChanged').map((e: { actor_id: number }) => e.actor_id)).toEqual([created.body.id])
      expect(byType('RoleChanged')[0].data).toMatchObject({ role: 'auditor', previous_role: 'user' })
      expect(byType('AccountLocked')[0].data).toMatchObject({ reason: 'admin', note: 'check' })
      // The revocations that came with deactivate, lock and role change are the admins' acts too.
      expect(byType('SessionsRevoked').map((e: { actor_id: number }) => e.actor_id)).toEqual([
        admin.id,
        admin.id,
        created.body.id,
      ])

      const adminHistory = await request('GET', `/admin/users/${created.body.id}/history`, {
        token: otherToken,
      })
      expect(adminHistory.status).toBe(200)
      expect(adminHistory.body[0]).toMatchObject({ type: 'AccountRegistered', actor_id: admin.id })
      expect(adminHistory.body[0].data.role).toBe('admin')
      const bootstrapHistory = await request('GET', `/admin/users/${admin.id}/history`, { token: otherToken })
      expect(bootstrapHistory.body[0]).toMatchObject({ type: 'AccountRegistered', actor_id: null })
    })
  })
})

describe('two admins taking each other’s power at the same moment', () => {
  let server: TestServer
  let request: Api
  beforeAll(async () => {
    server = await startServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP, RATE_LIMIT_PER_MINUTE: '0' })
    request = api(server.url)
  })
  afterAll(async () => {
    await server?.close()
  })

  async function secondAdmin(first: { token: string }, tag: string): Promise<{ id: number; token: string }> {
    const user = newUser(tag)
    const created = await request('POST', '/admin/register', { json: user, token: first.token })
    expect(created.status, JSON.stringify(created.body)).toBe(200)
    return { id: created.body.id, token: (await adminLogin(request, user)).access_token }
  }

  const removals: [string, (target: number) => [string, string, unknown]][] = [
    ['deactivate', (id) => ['PUT', `/admin/deactivate-user/${id}`, undefined]],
    ['lock', (id) => ['POST', '/admin/lock', { user_id: id }]],
    ['demote', (id) => ['PUT', '/admin/user/role', { user_id: id, role: 'user' }]],
    ['delete', (id) => ['DELETE', `/admin/user/${id}`, undefined]],
  ]

  let first: { id: number; token: string } | undefined
  for (const [name, removal] of removals) {
    it(`${name}: exactly one succeeds, the other is refused, and one admin keeps power`, async () => {
      // Each round starts from an admin that holds power: the bootstrap one, then the survivor.
      first ??= await bootstrapAdmin(request, 'mutual')
      const a = first
      const b = await secondAdmin(a, `mutual${name}`)
      const call = (actor: { token: string }, target: number) => {
        const [method, path, json] = removal(target)
        return request(method, path, { token: actor.token, json })
      }
      const [byA, byB] = await Promise.all([call(a, b.id), call(b, a.id)])
      // The loser is refused by the token check (401) if the winner's change was already applied,
      // or by the administration's re-check (403) if both requests got that far.
      const statuses = [byA.status, byB.status].sort()
      expect(statuses[0], JSON.stringify([byA.body, byB.body])).toBe(200)
      expect([401, 403]).toContain(statuses[1])

      const survivor = byA.status === 200 ? a : b
      const fallen = survivor === a ? b : a
      expect((await request('GET', '/admin/users', { token: survivor.token })).status).toBe(200)
      expect((await request('GET', '/admin/users', { token: fallen.token })).status).not.toBe(200)
      first = survivor
    })
  }
})
