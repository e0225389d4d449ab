import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_CONSECUTIVE_FAILURES } from '../../domain/lockout.ts'
import { sharedInstanceSettings, startTestPostgres, type TestPostgres } from '../../harness/postgres.ts'
import { type Api, api, newUser, register } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

let pg: TestPostgres
let serverA: TestServer
let serverB: TestServer
let onA: Api
let onB: Api

beforeAll(async () => {
  pg = await startTestPostgres()
  const env = {
    ...sharedInstanceSettings(pg.url),
    TRUST_PROXY: '0',
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
  it('share the login throttle: 20 parallel wrong passwords give exactly 5 × 401, then 423', async () => {
    const user = newUser('shared')
    await register(onA, user)
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? onA : onB)('POST', '/auth/login', {
          form: { username: user.username, password: `wrong-${i}` },
        }),
      ),
    )
    const statuses = replies.map((reply) => reply.status)
    expect(statuses.filter((s) => s === 401)).toHaveLength(MAX_CONSECUTIVE_FAILURES)
    expect(statuses.filter((s) => s === 423)).toHaveLength(20 - MAX_CONSECUTIVE_FAILURES)
    for (const reply of replies.filter((r) => r.status === 423)) {
      expect(Number(reply.headers.get('retry-after'))).toBeGreaterThan(0)
    }
    // The right password is throttled on both instances too (same client).
    const form = { username: user.username, password: user.password }
    expect((await onA('POST', '/auth/login', { form })).status).toBe(423)
    expect((await onB('POST', '/auth/login', { form })).status).toBe(423)
  })
})
