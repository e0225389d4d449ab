/** A crash between projecting a deletion and destroying the data key is repaired at start-up. */
import { randomUUID } from 'node:crypto'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { accountDecider } from '../../domain/account.decider.ts'
import { projections } from '../../projections/index.ts'
import { createEventCodec } from '../../src/app/event-codec.ts'
import { openRuntime, type Runtime } from '../../src/app/runtime.ts'
import { openSqliteEventStore } from '../../src/eventstore/sqlite-event-store.ts'
import { createProjectionRunner } from '../../src/readstore/projection-runner.ts'
import { ReadStore } from '../../src/readstore/read-store.ts'
import { openDataKeyStore } from '../../src/security/data-keys.ts'
import { openTestRuntime } from '../support/runtime.ts'

let cleanup: (() => Promise<void>) | null = null
let reopened: Runtime | null = null
afterEach(async () => {
  await reopened?.close()
  await cleanup?.()
})

it('destroys the data key of a deletion that was projected before the process died', async () => {
  const t = await openTestRuntime()
  await t.runtime.accounts.register(
    { username: 'ghost', email: 'ghost@example.com', password: 'correct horse battery', role: 'user' },
    { actorId: null },
  )
  const { state } = await t.runtime.commands.load('user-1', accountDecider)
  if (state.status !== 'active') throw new Error('expected an active account')
  const { usernameKey, emailKey } = state
  await t.runtime.close()

  // The deletion is appended and projected by a process that dies before it destroys the key.
  const store = openSqliteEventStore(join(t.dataDir, 'events.db'))
  await store.append(
    'user-1',
    [
      {
        type: 'AccountDeleted',
        data: { username_key: usernameKey, email_key: emailKey },
        metadata: {
          event_id: randomUUID(),
          schema_version: 1,
          occurred_at: new Date().toISOString(),
          actor_id: null,
          correlation_id: null,
          causation_id: null,
        },
      },
    ],
    1, // after AccountRegistered and EmailVerificationRequested
  )
  const keys = openDataKeyStore({ dataDir: t.dataDir })
  const readStore = new ReadStore(join(t.dataDir, 'read-models.db'), projections)
  const runner = createProjectionRunner({ store, readStore, codec: createEventCodec(keys) })
  await runner.start()
  await runner.stop()
  expect(keys.isErased('user-1')).toBe(false)
  readStore.close()
  keys.close()
  await store.close()

  reopened = await openRuntime(t.config)
  cleanup = async () => rmSync(t.dataDir, { recursive: true, force: true })
  expect(reopened.dataKeys.isErased('user-1')).toBe(true)
  const [registered] = await reopened.store.readStream('user-1')
  expect(reopened.codec.decode(registered).data).toMatchObject({ email: '[erased]' })
})
