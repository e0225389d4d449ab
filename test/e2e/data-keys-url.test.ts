/**
 * DATA_KEYS_URL: the events in one store (here the embedded one; in production EventStoreDB,
 * whose append-only streams cannot truly delete a key), the per-account data keys in
 * PostgreSQL, where every instance finds them and where erasure deletes them for everyone.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestPostgres, type TestPostgres } from '../../harness/postgres.ts'
import { api, login, newUser, register } from '../support/e2e.ts'
import { startServer } from '../support/server.ts'

let database: TestPostgres
let client: pg.Client

beforeAll(async () => {
  database = await startTestPostgres()
  client = new pg.Client({ connectionString: database.url })
  await client.connect()
})
afterAll(async () => {
  await client?.end()
  await database?.stop()
})

describe('data keys in PostgreSQL beside another event store (DATA_KEYS_URL)', () => {
  it('keeps each account key there, not in DATA_DIR, and erasure leaves only a tombstone', async () => {
    const masterKey = randomBytes(32).toString('base64')
    const server = await startServer({
      DATA_KEYS_URL: database.url,
      MASTER_KEY: masterKey,
      ADMIN_BOOTSTRAP_TOKEN: 'keys-bootstrap',
    })
    try {
      const request = api(server.url)
      const user = { ...newUser('keysinpg'), full_name: 'Kira Keyholder' }
      const { id } = await register(request, user)
      await login(request, user)
      expect(existsSync(join(server.dataDir, 'keys.db'))).toBe(false)
      const row = await client.query('SELECT wrapped IS NOT NULL AS live FROM data_keys WHERE owner = $1', [
        `user-${id}`,
      ])
      expect(row.rows).toEqual([{ live: true }])

      const admin = newUser('keysadmin')
      const created = await request('POST', '/admin/register', {
        json: admin,
        headers: { 'x-bootstrap-token': 'keys-bootstrap' },
      })
      expect(created.status).toBe(200)
      const { access_token } = (
        await request('POST', '/admin/login', {
          json: { username: admin.username, password: admin.password },
        })
      ).body
      expect((await request('DELETE', `/admin/user/${id}`, { token: access_token })).status).toBe(200)
      const history = await request('GET', `/admin/users/${id}/history`, { token: access_token })
      expect(JSON.stringify(history.body)).not.toContain(user.full_name)
      await server.runtime.dataKeys.preload([`user-${id}`])
      const erased = await client.query('SELECT wrapped FROM data_keys WHERE owner = $1', [`user-${id}`])
      expect(erased.rows).toEqual([{ wrapped: null }])
    } finally {
      await server.close()
    }
  })

  it('refuses to start without MASTER_KEY, or with a URL that is not PostgreSQL', async () => {
    await expect(startServer({ DATA_KEYS_URL: database.url })).rejects.toThrow(/MASTER_KEY is required/)
    await expect(startServer({ DATA_KEYS_URL: 'mysql://x', MASTER_KEY: 'x' })).rejects.toThrow(
      /DATA_KEYS_URL must start with postgres/,
    )
  })
})
