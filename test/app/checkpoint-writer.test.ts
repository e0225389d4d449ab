import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { startCheckpointWriter } from '../../src/app/checkpoint-writer.ts'
import { silentLogger } from '../../src/logger.ts'
import { openTestRuntime } from '../support/runtime.ts'

let cleanup: (() => Promise<void>) | null = null
afterEach(async () => cleanup?.())

it('writes signed checkpoints to DATA_DIR/checkpoints that later verify against the store', async () => {
  const t = await openTestRuntime()
  cleanup = t.cleanup
  await t.runtime.accounts.register(
    { username: 'cora', email: 'cora@example.com', password: 'correct horse battery', role: 'user' },
    { actorId: null },
  )
  const writer = startCheckpointWriter({
    audit: t.runtime.audit,
    dataDir: t.dataDir,
    intervalMinutes: 0,
    log: silentLogger,
    now: () => new Date('2026-11-25T12:00:00Z'),
  })
  const path = await writer.writeNow()
  writer.stop()
  expect(readdirSync(join(t.dataDir, 'checkpoints'))).toEqual(['2026-11-25T12-00-00-000Z.jws'])
  const result = await t.runtime.audit.verifyCheckpoint(readFileSync(path, 'utf8').trim())
  expect(result).toMatchObject({ ok: true, first_broken: null })
  // A signed tree head of every event so far (settings fingerprints, id reservation, registration
  // and its email verification request).
  expect(result && 'tree_size' in result && result.tree_size).toBe(4)
})
