import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterEach, describe, expect, it } from 'vitest'
import { isDomainError } from '../../domain/errors.ts'
import { SEALED_FIELD } from '../../src/app/event-codec.ts'
import { openRuntime } from '../../src/app/runtime.ts'
import { verifyChain } from '../../src/eventstore/hash-chain.ts'
import { openTestRuntime } from '../support/runtime.ts'

const alice = {
  username: 'alice',
  email: 'alice@example.com',
  password: 'correct horse battery',
  role: 'user',
} as const

describe('registration through the store and projections', () => {
  let cleanup: (() => Promise<void>) | null = null
  afterEach(async () => {
    await cleanup?.()
    cleanup = null
  })

  it('registers an account with an id from the sequence and shows it in the read model', async () => {
    const t = await openTestRuntime()
    cleanup = t.cleanup
    const first = await t.runtime.accounts.register(alice, { actorId: null })
    const second = await t.runtime.accounts.register(
      { ...alice, username: 'bob', email: 'bob@example.com' },
      { actorId: null },
    )
    expect(first).toMatchObject({
      id: 1,
      username: 'alice',
      email: 'alice@example.com',
      role: 'user',
      is_active: 1,
    })
    expect(second.id).toBe(2)
    const events = await t.runtime.store.readStream('user-1')
    expect(events.map((e) => e.type)).toEqual(['AccountRegistered', 'EmailVerificationRequested'])
    expect(verifyChain(events)).toBeNull()
  })

  it('stores personal fields encrypted, never in clear', async () => {
    const t = await openTestRuntime()
    cleanup = t.cleanup
    await t.runtime.accounts.register(alice, { actorId: null })
    const [event] = await t.runtime.store.readStream('user-1')
    expect(event.data).not.toHaveProperty('email')
    expect(event.data).not.toHaveProperty('password_hash')
    expect(String(event.data[SEALED_FIELD])).toMatch(/^enc:v1:/)
    const raw = new DatabaseSync(join(t.dataDir, 'events.db'), { readOnly: true })
    const dump = JSON.stringify(raw.prepare('SELECT * FROM events').all())
    raw.close()
    expect(dump).not.toContain('alice@example.com')
    expect(dump).not.toContain('argon2id')
  })

  it('lets exactly one of concurrent registrations of one username succeed', async () => {
    const t = await openTestRuntime()
    cleanup = t.cleanup
    const attempts = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        t.runtime.accounts.register(
          { ...alice, username: 'Alice', email: `a${i}@example.com` },
          { actorId: null },
        ),
      ),
    )
    const won = attempts.filter((a) => a.status === 'fulfilled')
    expect(won).toHaveLength(1)
    for (const a of attempts) {
      if (a.status === 'rejected') expect(isDomainError(a.reason, 'USERNAME_TAKEN')).toBe(true)
    }
    // The losers released nothing they did not own: their emails are free again.
    const lost = attempts.findIndex((a) => a.status === 'rejected')
    await expect(
      t.runtime.accounts.register(
        { ...alice, username: 'carol', email: `a${lost}@example.com` },
        { actorId: null },
      ),
    ).resolves.toMatchObject({ username: 'carol' })
  })

  it('refuses a taken email case-insensitively and a weak password', async () => {
    const t = await openTestRuntime()
    cleanup = t.cleanup
    await t.runtime.accounts.register(alice, { actorId: null })
    const taken = await t.runtime.accounts
      .register({ ...alice, username: 'alice2', email: 'ALICE@example.com' }, { actorId: null })
      .catch((e: unknown) => e)
    expect(isDomainError(taken, 'EMAIL_TAKEN')).toBe(true)
    const weak = await t.runtime.accounts
      .register(
        { ...alice, username: 'dave', email: 'd@example.com', password: 'password1' },
        { actorId: null },
      )
      .catch((e: unknown) => e)
    expect(isDomainError(weak, 'WEAK_PASSWORD')).toBe(true)
  })

  it('keeps accounts and ids across a restart', async () => {
    const t = await openTestRuntime()
    await t.runtime.accounts.register(alice, { actorId: null })
    await t.runtime.close()
    const again = await openRuntime(t.config)
    cleanup = async () => {
      await again.close()
      rmSync(t.dataDir, { recursive: true, force: true })
    }
    expect(again.queries.userByUsername('ALICE')).toMatchObject({ id: 1, email: 'alice@example.com' })
    const bob = await again.accounts.register(
      { ...alice, username: 'bob', email: 'b@example.com' },
      { actorId: null },
    )
    expect(bob.id).toBe(2)
  })
})
