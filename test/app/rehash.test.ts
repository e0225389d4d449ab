import { rmSync } from 'node:fs'
import { afterEach, expect, it } from 'vitest'
import { openRuntime, type Runtime } from '../../src/app/runtime.ts'
import { loadConfig } from '../../src/config.ts'
import { createPasswordHasher } from '../../src/security/passwords.ts'
import { tempDataDir } from '../support/runtime.ts'

const dataDir = tempDataDir()
const config = loadConfig({ DATA_DIR: dataDir })
let runtime: Runtime | null = null
afterEach(async () => {
  await runtime?.close()
  rmSync(dataDir, { recursive: true, force: true })
})

it('rehashes a password on login when the hashing parameters have changed', async () => {
  const old = createPasswordHasher({ params: { memoryKiB: 8192, passes: 1, parallelism: 1 } })
  const first = await openRuntime(config, { passwords: old })
  await first.accounts.register(
    { username: 'olga', email: 'olga@example.com', password: 'correct horse battery', role: 'user' },
    { actorId: null },
  )
  await first.close()

  runtime = await openRuntime(config)
  const token = await runtime.authentication.login(
    { username: 'olga', password: 'correct horse battery' },
    { ip_address: null, user_agent: null },
  )
  expect(token).toHaveProperty('refresh_token')
  const { state } = await runtime.commands.load('user-1', {
    decide: () => [],
    evolve: (s: Record<string, unknown>, e: { type: string; data: Record<string, unknown> }) =>
      e.type === 'AccountRegistered' || e.type === 'PasswordChanged'
        ? { hash: e.data.password_hash, last: e }
        : s,
    initialState: {} as Record<string, unknown>,
  })
  expect(state.last).toMatchObject({ type: 'PasswordChanged', data: { reason: 'rehash' } })
  expect(String(state.hash)).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
  // The new hash still verifies the same password.
  await expect(
    runtime.authentication.login(
      { username: 'olga', password: 'correct horse battery' },
      { ip_address: null, user_agent: null },
    ),
  ).resolves.toHaveProperty('access_token')
})
