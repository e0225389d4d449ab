import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { describe, expect, it } from 'vitest'
import { verifyChain } from '../../src/eventstore/hash-chain.ts'
import { openSqliteEventStore, StoreFileError } from '../../src/eventstore/sqlite-event-store.ts'
import { tempDir } from '../support/temp.ts'
import { describeEventStoreContract, newEvent } from './contract.ts'

const storeDir = (): string => tempDir('auth-store')

describeEventStoreContract('sqlite', async () => {
  const dir = storeDir()
  return {
    open: async () => openSqliteEventStore(join(dir, 'events.db')),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  }
})

describe('sqlite event store files', () => {
  it('refuses a corrupt file with a clear message and leaves it untouched', () => {
    const path = join(storeDir(), 'events.db')
    const garbage = Buffer.from('this is not a database, but it is somebody’s file'.repeat(100))
    writeFileSync(path, garbage)
    expect(() => openSqliteEventStore(path)).toThrow(StoreFileError)
    expect(() => openSqliteEventStore(path)).toThrow(/events\.db/)
  })

  it('refuses a SQLite file of another application', () => {
    const path = join(storeDir(), 'events.db')
    const foreign = new DatabaseSync(path)
    foreign.exec('CREATE TABLE customers (id INTEGER)')
    foreign.close()
    expect(() => openSqliteEventStore(path)).toThrow(/another application/)
  })

  it('detects a tampered event and names it', async () => {
    const path = join(storeDir(), 'events.db')
    const store = openSqliteEventStore(path)
    await store.append(
      'user-1',
      [newEvent('A', { role: 'user' }), newEvent('B', { role: 'user' })],
      'no_stream',
    )
    await store.append('user-1', [newEvent('C')], 1)
    await store.close()
    const raw = new DatabaseSync(path)
    raw
      .prepare("UPDATE events SET data = ? WHERE stream_id = 'user-1' AND revision = 1")
      .run('{"role":"admin"}')
    raw.close()
    const reopened = openSqliteEventStore(path)
    expect(verifyChain(await reopened.readStream('user-1'))).toEqual({
      stream_id: 'user-1',
      revision: 1,
      reason: 'hash_mismatch',
    })
    await reopened.close()
  })

  it('fails clearly when the directory cannot be written', () => {
    expect(() => openSqliteEventStore('/proc/no-such-dir/events.db')).toThrow(StoreFileError)
  })
})
