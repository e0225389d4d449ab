import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Api, api, login, type NewUser, newUser, register } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

let server: TestServer
let request: Api
let alice: NewUser
let token: string

const PATH = '/chatbot/interact'

beforeAll(async () => {
  server = await startServer()
  request = api(server.url)
  alice = newUser('alice')
  await register(request, alice)
  // Two sign-ins, two sessions, the newer one from a recognisable client.
  await login(request, alice, { 'user-agent': 'first-client/1.0' })
  token = (await login(request, alice, { 'user-agent': 'curl/8.0' })).access_token
})
afterAll(async () => {
  await server?.close()
})

describe('POST /chatbot/interact', () => {
  it('answers 401 without a token, and with a bad one', async () => {
    const none = await request('POST', PATH, { json: { message: 'hi' } })
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).toBe('Bearer')
    const bad = await request('POST', PATH, { json: { message: 'hi' }, token: 'not.a.token' })
    expect(bad.status).toBe(401)
  })

  it.each([
    ['an empty message', { message: '' }, 'string_too_short'],
    ['a message over 2000 characters', { message: 'a'.repeat(2001) }, 'string_too_long'],
    ['a missing message', { text: 'hi' }, 'missing'],
    ['a message that is not a string', { message: 42 }, 'type_error'],
  ])('answers 422 for %s', async (_, json, type) => {
    const reply = await request('POST', PATH, { json, token })
    expect(reply.status).toBe(422)
    expect(reply.body.detail).toEqual([expect.objectContaining({ loc: ['body', 'message'], type })])
  })

  it('accepts a message of exactly 2000 characters', async () => {
    const reply = await request('POST', PATH, { json: { message: `hello ${'x'.repeat(1994)}` }, token })
    expect(reply.status).toBe(200)
    expect(reply.body.intent).toBe('greeting')
  })

  it('ignores extra keys and answers a ChatbotResponse', async () => {
    const reply = await request('POST', PATH, { json: { message: 'hi', mood: 'cheerful', n: 1 }, token })
    expect(reply.status).toBe(200)
    expect(Object.keys(reply.body).sort()).toEqual(['intent', 'reply', 'suggested_endpoints'])
    expect(reply.body.intent).toBe('greeting')
    expect(reply.body.reply).toContain(alice.username)
  })

  it('answers about sessions from the real number of active sessions', async () => {
    const sessions = await request('GET', '/auth/sessions', { token })
    expect(sessions.status).toBe(200)
    expect(sessions.body).toHaveLength(2)
    const reply = await request('POST', PATH, { json: { message: 'Who is logged in to my account?' }, token })
    expect(reply.status).toBe(200)
    expect(reply.body.intent).toBe('list_sessions')
    expect(reply.body.reply).toContain('you have 2 active sessions')
    expect(reply.body.reply).toContain('(curl/8.0)')
    expect(reply.body.suggested_endpoints).toEqual([
      'GET /auth/sessions',
      'DELETE /auth/sessions/{session_id}',
    ])
  })

  it('answers about 2FA from is_2fa_enabled (off for a new account)', async () => {
    const reply = await request('POST', PATH, { json: { message: 'how do I turn on two factor' }, token })
    expect(reply.status).toBe(200)
    expect(reply.body.intent).toBe('enable_2fa')
    expect(reply.body.reply).toContain('2FA is off')
    expect(reply.body.suggested_endpoints).toEqual(['GET /auth/generate-2fa-code', 'POST /auth/enable-2fa'])
  })

  it('says the account is not locked, and answers unknown for gibberish', async () => {
    const locked = await request('POST', PATH, {
      json: { message: "why can't I log in, it says locked" },
      token,
    })
    expect(locked.body.intent).toBe('why_locked')
    expect(locked.body.reply).toMatch(/^Your account is not locked\./)
    const gibberish = await request('POST', PATH, { json: { message: 'qwzx plorf' }, token })
    expect(gibberish.status).toBe(200)
    expect(gibberish.body).toMatchObject({ intent: 'unknown', suggested_endpoints: [] })
  })

  it('is served over tRPC as chatbot.interact too', async () => {
    const response = await fetch(`${server.url}/trpc/chatbot.interact`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ message: 'show my sessions' }),
    })
    expect(response.status).toBe(200)
    const body = (await response.json()) as { result: { data: { intent: string } } }
    expect(body.result.data.intent).toBe('list_sessions')
  })

  it('is documented in /openapi.json with operationId chatbot.interact and bearer security', async () => {
    const doc = await request('GET', '/openapi.json')
    expect(doc.status).toBe(200)
    const operation = doc.body.paths['/chatbot/interact'].post
    expect(operation.operationId).toBe('chatbot.interact')
    expect(operation.tags).toEqual(['chatbot'])
    expect(operation.security).toBeDefined()
  })
})
