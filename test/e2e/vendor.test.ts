import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Api,
  api,
  claimsOf,
  expectUnauthorized,
  ISO_UTC,
  newUser,
  type Reply,
  register,
} from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

const BOOTSTRAP = 'vendor-e2e-bootstrap-token'
const VENDOR_KEYS = ['company_name', 'created_at', 'email', 'id', 'is_active', 'username']
const TOKEN_KEYS = ['access_token', 'expires_in', 'refresh_token', 'token_type']

let server: TestServer
let request: Api

beforeAll(async () => {
  server = await startServer({ ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP })
  request = api(server.url)
})
afterAll(async () => {
  await server?.close()
})

function newVendor(tag = 'vendor', company_name = 'Acme Widgets GmbH') {
  return { ...newUser(tag), company_name }
}

const registerVendor = (json: unknown): Promise<Reply> => request('POST', '/vendor/register_vendor', { json })
const vendorLogin = (username: string, password: string): Promise<Reply> =>
  request('POST', '/vendor/login', { json: { username, password } })

describe('POST /vendor/register_vendor', () => {
  it('answers exactly a VendorResponse', async () => {
    const vendor = newVendor()
    const reply = await registerVendor(vendor)
    expect(reply.status, JSON.stringify(reply.body)).toBe(200)
    expect(Object.keys(reply.body).sort()).toEqual(VENDOR_KEYS)
    expect(reply.body).toEqual({
      id: expect.any(Number),
      username: vendor.username,
      email: vendor.email,
      company_name: 'Acme Widgets GmbH',
      is_active: true,
      created_at: expect.stringMatching(ISO_UTC),
    })
    expect(Number.isInteger(reply.body.id) && reply.body.id > 0).toBe(true)
    expect(JSON.stringify(reply.body)).not.toContain(vendor.password)
  })

  it('keeps a full name and accepts company names of 1 and 200 characters', async () => {
    const short = await registerVendor({ ...newVendor('short', 'X'), full_name: 'Vera Vendor' })
    expect(short.status, JSON.stringify(short.body)).toBe(200)
    expect(short.body.company_name).toBe('X')
    const long = await registerVendor(newVendor('long', 'C'.repeat(200)))
    expect(long.status, JSON.stringify(long.body)).toBe(200)
    expect(long.body.company_name).toBe('C'.repeat(200))
  })

  it('answers 409 for a taken username or email, also in another letter case and against normal users', async () => {
    const vendor = newVendor('dupvendor')
    expect((await registerVendor(vendor)).status).toBe(200)
    const sameName = await registerVendor({ ...newVendor('other'), username: vendor.username.toUpperCase() })
    expect(sameName.status).toBe(409)
    expect(sameName.body).toEqual({ detail: expect.any(String) })
    const sameEmail = await registerVendor({ ...newVendor('other'), email: vendor.email.toUpperCase() })
    expect(sameEmail.status).toBe(409)
    expect(sameEmail.body).toEqual({ detail: expect.any(String) })

    const user = newUser('plainuser')
    await register(request, user)
    expect((await registerVendor({ ...newVendor('other'), username: user.username })).status).toBe(409)
    expect((await registerVendor({ ...newVendor('other'), email: user.email })).status).toBe(409)
    // And the other way round: a vendor's username is taken for /auth/register too.
    const asUser = await request('POST', '/auth/register', {
      json: { ...newUser('other'), username: vendor.username },
    })
    expect(asUser.status).toBe(409)
  })

  it('answers 422 for a missing, empty or too long company_name', async () => {
    const { company_name: _omit, ...withoutCompany } = newVendor('nocompany')
    const cases: [unknown, string][] = [
      [withoutCompany, 'missing'],
      [{ ...newVendor('empty'), company_name: '' }, 'string_too_short'],
      [{ ...newVendor('toolong'), company_name: 'C'.repeat(201) }, 'string_too_long'],
    ]
    for (const [json, type] of cases) {
      const reply = await registerVendor(json)
      expect(reply.status, JSON.stringify(json)).toBe(422)
      expect(reply.body.detail).toEqual([expect.objectContaining({ loc: ['body', 'company_name'], type })])
    }
    const notString = await registerVendor({ ...newVendor('num'), company_name: 42 })
    expect(notString.status).toBe(422)
    expect(notString.body.detail[0].loc).toEqual(['body', 'company_name'])
  })

  it('applies the UserCreate rules to the other fields', async () => {
    for (const json of [
      { ...newVendor('badmail'), email: 'not-an-email' },
      { ...newVendor('badname'), username: 'no spaces allowed' },
      { ...newVendor('shortpw'), password: 'short' },
    ]) {
      expect((await registerVendor(json)).status, JSON.stringify(json)).toBe(422)
    }
  })

  it('ignores a role in the body: the account is a vendor', async () => {
    const vendor = newVendor('roleinbody')
    const reply = await registerVendor({ ...vendor, role: 'admin' })
    expect(reply.status).toBe(200)
    const login = await vendorLogin(vendor.username, vendor.password)
    expect(login.status).toBe(200)
    expect(claimsOf(login.body.access_token).role).toBe('vendor')
  })
})

describe('POST /vendor/login', () => {
  it('gives a vendor a Token whose JWT says role vendor', async () => {
    const vendor = newVendor('loginvendor')
    const id = (await registerVendor(vendor)).body.id
    const reply = await vendorLogin(vendor.username, vendor.password)
    expect(reply.status, JSON.stringify(reply.body)).toBe(200)
    expect(Object.keys(reply.body).sort()).toEqual(TOKEN_KEYS)
    expect(reply.body.token_type).toBe('bearer')
    expect(claimsOf(reply.body.access_token)).toMatchObject({ sub: String(id), role: 'vendor' })
    const hello = await request('GET', '/protected', { token: reply.body.access_token })
    expect(hello.status).toBe(200)
    expect(hello.body).toMatchObject({ user_id: id, role: 'vendor' })
    // The vendor's token is no admin token.
    expect((await request('GET', '/admin/users', { token: reply.body.access_token })).status).toBe(403)
  })

  it('answers 401 for a wrong password and for an unknown vendor', async () => {
    const vendor = newVendor('wrongpw')
    await registerVendor(vendor)
    expectUnauthorized(await vendorLogin(vendor.username, `${vendor.password}x`))
    expectUnauthorized(await vendorLogin('no_such_vendor_here', vendor.password))
  })

  it('answers 401 for a normal user and for an admin with the right password', async () => {
    const user = newUser('notvendor')
    await register(request, user)
    expectUnauthorized(await vendorLogin(user.username, user.password))

    const admin = newUser('notvendoradmin')
    const created = await request('POST', '/admin/register', {
      json: admin,
      headers: { 'x-bootstrap-token': BOOTSTRAP },
    })
    expect(created.status).toBe(200)
    expectUnauthorized(await vendorLogin(admin.username, admin.password))

    // Both still log in at their own doors.
    const userLogin = await request('POST', '/auth/login', {
      form: { username: user.username, password: user.password },
    })
    expect(userLogin.status).toBe(200)
    expect(claimsOf(userLogin.body.access_token).role).toBe('user')
    const adminLogin = await request('POST', '/admin/login', {
      json: { username: admin.username, password: admin.password },
    })
    expect(adminLogin.status).toBe(200)
    // A vendor cannot use the admin door.
    const vendor = newVendor('notadmin')
    await registerVendor(vendor)
    expectUnauthorized(
      await request('POST', '/admin/login', {
        json: { username: vendor.username, password: vendor.password },
      }),
    )
  })

  it('a vendor can also log in at /auth/login, with role vendor in the JWT', async () => {
    const vendor = newVendor('authlogin')
    await registerVendor(vendor)
    const reply = await request('POST', '/auth/login', {
      form: { username: vendor.username, password: vendor.password },
    })
    expect(reply.status).toBe(200)
    expect(claimsOf(reply.body.access_token).role).toBe('vendor')
  })

  it('answers 422 for a missing password', async () => {
    const reply = await request('POST', '/vendor/login', { json: { username: 'someone' } })
    expect(reply.status).toBe(422)
    expect(reply.body.detail[0].loc).toEqual(['body', 'password'])
  })
})
