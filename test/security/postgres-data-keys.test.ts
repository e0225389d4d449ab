/**
 * Data keys shared through PostgreSQL (issue 12): two key stores on one database stand for two
 * service instances. What one encrypts the other decrypts; a key is created once however many
 * instances race for it; a key one destroys is gone for the other; another MASTER_KEY is refused.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestPostgres, type TestPostgres } from '../../harness/postgres.ts'
import { DataKeyDestroyedError } from '../../src/security/data-keys.ts'
import { openPostgresDataKeyStore, type PostgresDataKeyStore } from '../../src/security/postgres-data-keys.ts'

const MASTER_KEY = randomBytes(32).toString('base64')

let database: TestPostgres
let pool: pg.Pool
let a: PostgresDataKeyStore
let b: PostgresDataKeyStore

beforeAll(async () => {
  database = await startTestPostgres()
  pool = new pg.Pool({ connectionString: database.url, max: 4 })
  // Two instances opening at once: the schema and the master-key check are set up once.
  ;[a, b] = await Promise.all([
    openPostgresDataKeyStore({ pool, masterKey: MASTER_KEY }),
    openPostgresDataKeyStore({ pool, masterKey: MASTER_KEY }),
  ])
})
afterAll(async () => {
  await a?.close()
  await b?.close()
  await pool?.end()
  await database?.stop()
})

describe('postgres data keys', () => {
  it('decrypts on B what A encrypted, once B has preloaded the owner', async () => {
    await a.prepare('user-1')
    const value = a.encrypt('user-1', 'alice@example.com')
    expect(value).toMatch(/^enc:v1:/)
    expect(() => b.decrypt('user-1', value)).toThrow(/not preloaded/)
    await b.preload(['user-1'])
    expect(b.decrypt('user-1', value)).toBe('alice@example.com')
    expect(b.isErased('user-1')).toBe(false)
    // An owner with no key yet decrypts to null after preload, and is not erased.
    await b.preload(['user-404'])
    expect(b.decrypt('user-404', value)).toBeNull()
    expect(b.isErased('user-404')).toBe(false)
  })

  it('refuses to encrypt for an owner that was not prepared', () => {
    expect(() => a.encrypt('user-never', 'x')).toThrow(/not prepared/)
    expect(() => a.ensureKey('user-never')).toThrow(/not prepared/)
  })

  it('creates one key when both instances prepare the same owner at once', async () => {
    await Promise.all([a.prepare('user-2'), b.prepare('user-2'), a.prepare('user-2'), b.prepare('user-2')])
    const fromA = a.encrypt('user-2', 'from A')
    const fromB = b.encrypt('user-2', 'from B')
    expect(b.decrypt('user-2', fromA)).toBe('from A')
    expect(a.decrypt('user-2', fromB)).toBe('from B')
    const { rows } = await pool.query("SELECT count(*)::int AS n FROM data_keys WHERE owner = 'user-2'")
    expect(rows[0].n).toBe(1)
  })

  it('destroys for every instance: B decrypts to null after preload, and prepare fails', async () => {
    await a.prepare('user-3')
    const value = a.encrypt('user-3', 'carol@example.com')
    await b.preload(['user-3'])
    expect(b.decrypt('user-3', value)).toBe('carol@example.com')

    a.destroy('user-3')
    expect(a.isErased('user-3')).toBe(true) // at once, before the write completes
    expect(a.decrypt('user-3', value)).toBeNull()
    await a.flush()
    const { rows } = await pool.query("SELECT wrapped, destroyed_at FROM data_keys WHERE owner = 'user-3'")
    expect(rows).toEqual([{ wrapped: null, destroyed_at: expect.any(Date) }])

    await b.preload(['user-3'])
    expect(b.isErased('user-3')).toBe(true)
    expect(b.decrypt('user-3', value)).toBeNull()
    await expect(b.prepare('user-3')).rejects.toThrow(DataKeyDestroyedError)
    expect(() => b.encrypt('user-3', 'new data')).toThrow(/destroyed/)
  })

  it('refuses another master key at open, naming MASTER_KEY', async () => {
    await expect(
      openPostgresDataKeyStore({ pool, masterKey: randomBytes(32).toString('base64') }),
    ).rejects.toThrow(/MASTER_KEY is not the master key/)
    await expect(openPostgresDataKeyStore({ pool, masterKey: undefined })).rejects.toThrow(
      /MASTER_KEY is required/,
    )
    await expect(openPostgresDataKeyStore({ pool, masterKey: 'short' })).rejects.toThrow(/MASTER_KEY must be/)
  })
})
