import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Api, api, ISO_UTC, newUser, register, USER_RESPONSE_KEYS } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

let server: TestServer
let request: Api

beforeAll(async () => {
  server = await startServer()
  request = api(server.url)
})
afterAll(async () => {
  await server?.close()
})

/** The single issue of a 422 answer, checked for FastAPI's HTTPValidationError shape. */
function onlyIssue(reply: { status: number; body: unknown }) {
  expect(reply.status).toBe(422)
  const body = reply.body as { detail: { loc: unknown[]; msg: string; type: string }[] }
  expect(Object.keys(body)).toEqual(['detail'])
  expect(Array.isArray(body.detail)).toBe(true)
  for (const issue of body.detail) {
    expect(Object.keys(issue).sort()).toEqual(['loc', 'msg', 'type'])
    expect(typeof issue.msg).toBe('string')
    expect(issue.msg.length).toBeGreaterThan(0)
    expect(typeof issue.type).toBe('string')
  }
  return body.detail
}

describe('POST /auth/register', () => {
  it('answers 200 with exactly the UserResponse fields, role user, and no password', async () => {
    const user = { ...newUser('reg'), full_name: 'Reggie Register' }
    const reply = await request('POST', '/auth/register', { json: user })
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-type')).toMatch(/^application\/json/)
    expect(Object.keys(reply.body).sort()).toEqual(USER_RESPONSE_KEYS)
    expect(reply.body).toEqual({
      id: expect.any(Number),
      username: user.username,
      email: user.email,
      full_name: 'Reggie Register',
      role: 'user',
      is_active: true,
      is_locked: false,
      is_2fa_enabled: false,
      email_verified: false,
      pending_email: null,
      created_at: expect.stringMatching(ISO_UTC),
    })
    expect(Number.isInteger(reply.body.id) && reply.body.id > 0).toBe(true)
    expect(Math.abs(Date.parse(reply.body.created_at) - Date.now())).toBeLessThan(60_000)
    expect(JSON.stringify(reply.body)).not.toContain(user.password)
    expect(JSON.stringify(reply.body)).not.toMatch(/password|hash/i)
  })

  it('accepts a missing or null full_name and gives increasing ids', async () => {
    const first = await register(request, newUser('nofn'))
    const second = await register(request, { ...newUser('nullfn'), full_name: null })
    expect(first.full_name).toBeNull()
    expect(second.full_name).toBeNull()
    expect(second.id).toBeGreaterThan(first.id)
  })

  it('answers 409 for a username taken in any letter case', async () => {
    const user = newUser('Casey')
    await register(request, user)
    const same = await request('POST', '/auth/register', {
      json: { ...newUser('other'), username: user.username },
    })
    expect(same.status).toBe(409)
    expect(same.body).toEqual({ detail: 'Username already registered' })
    const upper = await request('POST', '/auth/register', {
      json: { ...newUser('other'), username: user.username.toUpperCase() },
    })
    expect(upper.status).toBe(409)
    expect(upper.body).toEqual({ detail: 'Username already registered' })
    const lower = await request('POST', '/auth/register', {
      json: { ...newUser('other'), username: user.username.toLowerCase() },
    })
    expect(lower.status).toBe(409)
  })

  it('answers 409 for an email taken, also in another letter case', async () => {
    const user = newUser('mail')
    await register(request, user)
    const same = await request('POST', '/auth/register', { json: { ...newUser('other'), email: user.email } })
    expect(same.status).toBe(409)
    expect(same.body).toEqual({ detail: 'Email already registered' })
    const upper = await request('POST', '/auth/register', {
      json: { ...newUser('other'), email: user.email.toUpperCase() },
    })
    expect(upper.status).toBe(409)
    expect(upper.body).toEqual({ detail: 'Email already registered' })
  })

  it('answers 422 for characters outside [A-Za-z0-9_.-] in the username', async () => {
    for (const username of ['bad name', 'émile', 'a/b', 'x@y', 'semi;colon']) {
      const issues = onlyIssue(
        await request('POST', '/auth/register', { json: { ...newUser('x'), username } }),
      )
      expect(issues).toEqual([{ loc: ['body', 'username'], msg: expect.any(String), type: 'value_error' }])
    }
  })

  it('answers 422 for usernames shorter than 3 or longer than 32 characters', async () => {
    const short = onlyIssue(
      await request('POST', '/auth/register', { json: { ...newUser('x'), username: 'ab' } }),
    )
    expect(short).toEqual([{ loc: ['body', 'username'], msg: expect.any(String), type: 'string_too_short' }])
    const long = onlyIssue(
      await request('POST', '/auth/register', { json: { ...newUser('x'), username: 'a'.repeat(33) } }),
    )
    expect(long).toEqual([{ loc: ['body', 'username'], msg: expect.any(String), type: 'string_too_long' }])
  })

  it('answers 422 for a password shorter than 8 characters', async () => {
    const issues = onlyIssue(
      await request('POST', '/auth/register', { json: { ...newUser('x'), password: 'Sh0rt!' } }),
    )
    expect(issues).toEqual([{ loc: ['body', 'password'], msg: expect.any(String), type: 'string_too_short' }])
  })

  it('answers 422 for an invalid email address', async () => {
    for (const email of ['not-an-email', 'a@', '@example.com', 'two@@example.com']) {
      const issues = onlyIssue(await request('POST', '/auth/register', { json: { ...newUser('x'), email } }))
      expect(issues).toEqual([
        { loc: ['body', 'email'], msg: 'value is not a valid email address', type: 'value_error' },
      ])
    }
  })

  it('answers 422 naming every missing field', async () => {
    const issues = onlyIssue(await request('POST', '/auth/register', { json: {} }))
    expect(issues).toEqual(
      expect.arrayContaining([
        { loc: ['body', 'username'], msg: 'Field required', type: 'missing' },
        { loc: ['body', 'email'], msg: 'Field required', type: 'missing' },
        { loc: ['body', 'password'], msg: 'Field required', type: 'missing' },
      ]),
    )
    expect(issues).toHaveLength(3)
    const onlyPassword = onlyIssue(
      await request('POST', '/auth/register', {
        json: { username: 'someone', email: 'someone@example.com' },
      }),
    )
    expect(onlyPassword).toEqual([{ loc: ['body', 'password'], msg: 'Field required', type: 'missing' }])
  })

  it('answers 422 for wrong field types', async () => {
    const issues = onlyIssue(
      await request('POST', '/auth/register', { json: { ...newUser('x'), username: 12345 } }),
    )
    expect(issues).toHaveLength(1)
    expect(issues[0].loc).toEqual(['body', 'username'])
  })

  it('answers 422 for no body at all', async () => {
    const issues = onlyIssue(await request('POST', '/auth/register'))
    expect(issues.length).toBeGreaterThan(0)
    expect(issues[0].loc[0]).toBe('body')
  })

  it('answers 422 for malformed JSON', async () => {
    const issues = onlyIssue(
      await request('POST', '/auth/register', {
        raw: '{"username": "broken", ',
        headers: { 'content-type': 'application/json' },
      }),
    )
    expect(issues).toHaveLength(1)
    expect(issues[0].loc[0]).toBe('body')
    expect(issues[0].type).toBe('json_invalid')
  })

  it('answers 422 for a JSON array body', async () => {
    const user = newUser('arr')
    const issues = onlyIssue(await request('POST', '/auth/register', { json: [user] }))
    expect(issues).toEqual([{ loc: ['body'], msg: expect.any(String), type: 'model_attributes_type' }])
    const scalar = onlyIssue(await request('POST', '/auth/register', { json: 'just a string' }))
    expect(scalar[0].loc).toEqual(['body'])
  })

  it('answers 422 for a common password', async () => {
    for (const password of ['password123', 'PASSWORD123', 'qwertyuiop']) {
      const issues = onlyIssue(
        await request('POST', '/auth/register', { json: { ...newUser('x'), password } }),
      )
      expect(issues).toEqual([
        { loc: ['body', 'password'], msg: 'Password is too common', type: 'value_error' },
      ])
    }
  })

  it('answers 422 for a password equal to the username (in any case) or the email', async () => {
    const user = newUser('same')
    const asUsername = onlyIssue(
      await request('POST', '/auth/register', { json: { ...user, password: user.username.toUpperCase() } }),
    )
    expect(asUsername).toEqual([
      { loc: ['body', 'password'], msg: 'Password must not be the username', type: 'value_error' },
    ])
    const asEmail = onlyIssue(
      await request('POST', '/auth/register', { json: { ...user, password: user.email } }),
    )
    expect(asEmail).toEqual([
      { loc: ['body', 'password'], msg: 'Password must not be the email address', type: 'value_error' },
    ])
    // None of the refused attempts took the username.
    await register(request, user)
  })

  it('ignores a role in the body: a registration is always role user', async () => {
    const user = newUser('sneaky')
    const reply = await request('POST', '/auth/register', {
      json: { ...user, role: 'admin', is_active: false, id: 1 },
    })
    expect(reply.status).toBe(200)
    expect(reply.body.role).toBe('user')
    expect(reply.body.is_active).toBe(true)
  })

  it('lets exactly one of concurrent registrations of one username (in any case) succeed', async () => {
    const base = newUser('racer')
    const replies = await Promise.all(
      [base.username, base.username.toUpperCase(), base.username.toLowerCase()].map((username, i) =>
        request('POST', '/auth/register', {
          json: { ...base, username, email: `racer${i}.${base.email}` },
        }),
      ),
    )
    expect(replies.map((r) => r.status).sort()).toEqual([200, 409, 409])
    for (const reply of replies.filter((r) => r.status === 409)) {
      expect(reply.body).toEqual({ detail: 'Username already registered' })
    }
  })

  it('lets exactly one of concurrent registrations of one email succeed', async () => {
    const base = newUser('mailrace')
    const replies = await Promise.all(
      [1, 2, 3].map((i) =>
        request('POST', '/auth/register', { json: { ...base, username: `${base.username}${i}` } }),
      ),
    )
    expect(replies.map((r) => r.status).sort()).toEqual([200, 409, 409])
  })

  it('does not keep the username or email of a refused registration', async () => {
    const user = newUser('refused')
    onlyIssue(await request('POST', '/auth/register', { json: { ...user, password: 'password123' } }))
    const ok = await request('POST', '/auth/register', { json: user })
    expect(ok.status).toBe(200)
  })
})
