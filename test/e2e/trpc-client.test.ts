import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AppRouter } from '../../src/api/router.ts'
import { checkedFetch, claimsOf, newUser } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

let server: TestServer
/** Every HTTP request the tRPC client made: URL and how many procedure calls it carried. */
const requests: { url: string; calls: number }[] = []

beforeAll(async () => {
  server = await startServer()
})
afterAll(async () => {
  await server?.close()
})

function clientFor(token?: string) {
  const inner = checkedFetch()
  return createTRPCClient<AppRouter>({
    links: [
      httpBatchLink({
        url: `${server.url}/trpc`,
        headers: () => (token ? { authorization: `Bearer ${token}` } : {}),
        fetch: async (input, init) => {
          const url = String(input)
          const paths = new URL(url).pathname.slice('/trpc/'.length).split(',')
          requests.push({ url, calls: paths.length })
          return inner(input, init)
        },
      }),
    ],
  })
}

/** The TRPCClientError a call fails with, checked for tRPC's own error format and no stack. */
async function failure(promise: Promise<unknown>): Promise<TRPCClientError<AppRouter>> {
  const error = await promise.then(
    () => {
      throw new Error('expected the call to fail')
    },
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(TRPCClientError)
  const clientError = error as TRPCClientError<AppRouter>
  expect(clientError.data).toBeDefined()
  expect(clientError.data).not.toHaveProperty('stack')
  expect(JSON.stringify(clientError.shape)).not.toMatch(/stack|\bat .*\.(ts|js):\d+/i)
  return clientError
}

describe('tRPC over /trpc with @trpc/client', () => {
  const user = newUser('trpc')
  let userId: number
  let accessToken: string
  let refreshToken: string

  it('registers', async () => {
    const created = await clientFor().auth.register.mutate(user)
    expect(created).toEqual({
      id: expect.any(Number),
      username: user.username,
      email: user.email,
      full_name: null,
      role: 'user',
      is_active: true,
      is_locked: false,
      is_2fa_enabled: false,
      email_verified: false,
      pending_email: null,
      created_at: expect.any(String),
    })
    userId = created.id
  })

  it('logs in and gets a Token', async () => {
    const result = await clientFor().auth.login.mutate({ username: user.username, password: user.password })
    if (!('refresh_token' in result)) throw new Error('expected a Token, got a 2FA challenge')
    expect(result.token_type).toBe('bearer')
    expect(result.expires_in).toBe(900)
    expect(claimsOf(result.access_token).sub).toBe(String(userId))
    accessToken = result.access_token
    refreshToken = result.refresh_token
  })

  it('calls system.protected with the bearer token', async () => {
    const hello = await clientFor(accessToken).system.protected.query()
    expect(hello).toEqual({ message: `Hello, ${user.username}`, user_id: userId, role: 'user' })
  })

  it('batches two queries into one HTTP request', async () => {
    const client = clientFor(accessToken)
    const before = requests.length
    const [hello, sessions] = await Promise.all([
      client.system.protected.query(),
      client.auth.sessions.query(),
    ])
    expect(requests.length - before).toBe(1)
    expect(requests[requests.length - 1].calls).toBe(2)
    expect(requests[requests.length - 1].url).toContain('batch=1')
    expect(hello.user_id).toBe(userId)
    expect(sessions).toHaveLength(1)
    expect(sessions[0].is_current).toBe(true)
    expect(String(sessions[0].id)).toBe(claimsOf(accessToken).sid)
  })

  it('finds no procedure behind names that Object.prototype has', async () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const reply = await fetch(`${server.url}/trpc/${name}`)
      expect(reply.status, name).toBe(404)
      expect((await reply.json()).error.data.code).toBe('NOT_FOUND')
    }
  })

  it('answers a batch of up to 50 calls, and refuses a longer one', async () => {
    const batch = (n: number) =>
      fetch(`${server.url}/trpc/${Array(n).fill('system.healthz').join(',')}?batch=1`).then(async (r) => ({
        status: r.status,
        body: await r.json(),
      }))
    const fifty = await batch(50)
    expect(fifty.status).toBe(200)
    expect(fifty.body).toHaveLength(50)
    expect(fifty.body[49]).toEqual({ result: { data: { status: 'ok' } } })
    const longer = await batch(51)
    expect(longer.status).toBe(400)
    expect(longer.body.error.data.code).toBe('BAD_REQUEST')
  })

  it('rotates the refresh token; a replay fails with UNAUTHORIZED and ends that session', async () => {
    const client = clientFor()
    const between = await client.auth.tokenRefresh.mutate({ refresh_token: refreshToken })
    expect(between.refresh_token).not.toBe(refreshToken)
    // Rotated twice: the first token is past the two-tabs grace of the token rotated out last.
    const next = await client.auth.tokenRefresh.mutate({ refresh_token: between.refresh_token })
    expect(claimsOf(next.access_token).sid).toBe(claimsOf(accessToken).sid)
    const replay = await failure(client.auth.tokenRefresh.mutate({ refresh_token: refreshToken }))
    expect(replay.data?.code).toBe('UNAUTHORIZED')
    expect(replay.data?.httpStatus).toBe(401)
    const ended = await failure(clientFor(next.access_token).system.protected.query())
    expect(ended.data?.code).toBe('UNAUTHORIZED')

    // A new session for the tests below.
    const again = await client.auth.token.mutate({ username: user.username, password: user.password })
    if (!('refresh_token' in again)) throw new Error('expected a Token, got a 2FA challenge')
    accessToken = again.access_token
    refreshToken = again.refresh_token
  })

  it('fails with UNAUTHORIZED without a token or with a bad one', async () => {
    const none = await failure(clientFor().system.protected.query())
    expect(none.data?.code).toBe('UNAUTHORIZED')
    expect(none.data?.httpStatus).toBe(401)
    expect(none.message).toBe('Could not validate credentials')
    const bad = await failure(clientFor('garbage').auth.sessions.query())
    expect(bad.data?.code).toBe('UNAUTHORIZED')
  })

  it('fails with UNAUTHORIZED for a wrong password', async () => {
    const error = await failure(
      clientFor().auth.login.mutate({ username: user.username, password: 'wrong-one' }),
    )
    expect(error.data?.code).toBe('UNAUTHORIZED')
    expect(error.message).toBe('Incorrect username or password')
  })

  it('fails with CONFLICT for a taken username', async () => {
    const error = await failure(
      clientFor().auth.register.mutate({ ...newUser('again'), username: user.username }),
    )
    expect(error.data?.code).toBe('CONFLICT')
    expect(error.data?.httpStatus).toBe(409)
    expect(error.message).toBe('Username already registered')
  })

  it('fails with BAD_REQUEST for invalid input', async () => {
    const error = await failure(
      clientFor().auth.register.mutate({ ...newUser('bad'), email: 'not-an-email' }),
    )
    expect(error.data?.code).toBe('BAD_REQUEST')
    expect(error.data?.httpStatus).toBe(400)
    const weak = await failure(
      clientFor().auth.register.mutate({ ...newUser('weak'), password: 'password123' }),
    )
    expect(weak.data?.code).toBe('BAD_REQUEST')
  })

  it('fails with NOT_FOUND for a missing user or another user’s session', async () => {
    const client = clientFor(accessToken)
    const missing = await failure(client.auth.verifyUser.query({ username: 'nobody_at_all' }))
    expect(missing.data?.code).toBe('NOT_FOUND')
    const session = await failure(client.auth.revokeSession.mutate({ session_id: 987654 }))
    expect(session.data?.code).toBe('NOT_FOUND')
  })

  it('reports each call of a batch on its own: one failure does not fail the other', async () => {
    const client = clientFor(accessToken)
    const before = requests.length
    const [ok, bad] = await Promise.allSettled([
      client.system.protected.query(),
      client.auth.verifyUser.query({ username: 'still_nobody' }),
    ])
    expect(requests.length - before).toBe(1)
    expect(ok.status).toBe('fulfilled')
    expect(bad.status).toBe('rejected')
    const reason = (bad as PromiseRejectedResult).reason as TRPCClientError<AppRouter>
    expect(reason).toBeInstanceOf(TRPCClientError)
    expect(reason.data?.code).toBe('NOT_FOUND')
    expect(reason.data).not.toHaveProperty('stack')
  })
})
