/**
 * The service on PostgreSQL over HTTP: the usual flow works, and losing the database while it
 * runs gives 503 with Retry-After (commands) and a 503 /readyz instead of 500s; nothing that
 * was acknowledged is lost, and the service carries on once the database is back.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestPostgres, type TestPostgres } from '../../harness/postgres.ts'
import { type Api, api, login, newUser, register } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

let pg: TestPostgres
let server: TestServer
let request: Api

beforeAll(async () => {
  pg = await startTestPostgres()
  server = await startServer({
    EVENT_STORE_URL: pg.url,
    MASTER_KEY: randomBytes(32).toString('base64'),
    JWT_PRIVATE_KEY_PEM: generateKeyPairSync('ed25519')
      .privateKey.export({ format: 'pem', type: 'pkcs8' })
      .toString(),
  })
  request = api(server.url)
})
afterAll(async () => {
  await server?.close()
  await pg?.stop()
})

describe('on PostgreSQL', () => {
  it('registers, logs in and checks tokens; history verifies', async () => {
    const user = newUser('pguser')
    const { id } = await register(request, user)
    const tokens = await login(request, user)
    expect((await request('GET', '/protected', { token: tokens.access_token })).body.user_id).toBe(id)
    expect((await request('GET', '/readyz')).status).toBe(200)
  })

  // An outside server (TEST_DATABASE_URL) cannot be stopped by the test; the embedded one can.
  it.skipIf(Boolean(process.env.TEST_DATABASE_URL))(
    'answers 503 with Retry-After while the database is down, and carries on after',
    async () => {
      const before = newUser('pgbefore')
      await register(request, before)
      const during = newUser('pgduring')
      await pg.restart?.(async () => {
        const refused = await request('POST', '/auth/register', { json: during })
        expect(refused.status).toBe(503)
        expect(refused.headers.get('retry-after')).toBe('1')
        expect(refused.body).toEqual({ detail: expect.any(String) })
        expect((await request('GET', '/readyz')).status).toBe(503)
      })
      // Back: nothing acknowledged is lost, and new work goes through.
      let ready = 0
      for (let i = 0; i < 50 && ready !== 200; i++) {
        ready = (await request('GET', '/readyz')).status
        if (ready !== 200) await new Promise((resolve) => setTimeout(resolve, 100))
      }
      expect(ready).toBe(200)
      expect((await login(request, before)).token_type).toBe('bearer')
      await register(request, during)
      expect((await login(request, during)).token_type).toBe('bearer')
    },
  )
})
