import { createDecipheriv, randomBytes } from 'node:crypto'
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { beforeEach, describe, expect, it } from 'vitest'
import { type DataKeyStore, openDataKeyStore } from '../../src/security/data-keys.ts'
import { tempDir } from '../support/temp.ts'

let dataDir: string
beforeEach(() => {
  dataDir = tempDir('data-keys')
})

function withStore<T>(options: { masterKey?: string }, use: (store: DataKeyStore) => T): T {
  const store = openDataKeyStore({ dataDir, ...options })
  try {
    return use(store)
  } finally {
    store.close()
  }
}

/** keys.db and its WAL as they are on disk. */
function diskBytes(): Buffer {
  const path = join(dataDir, 'keys.db')
  return Buffer.concat([
    readFileSync(path),
    existsSync(`${path}-wal`) ? readFileSync(`${path}-wal`) : Buffer.alloc(0),
  ])
}

describe('data keys', () => {
  it('round-trips, with a fresh IV each time', () => {
    withStore({}, (store) => {
      store.ensureKey('alice')
      const a = store.encrypt('alice', 'alice@example.com ✓')
      const b = store.encrypt('alice', 'alice@example.com ✓')
      expect(a).toMatch(/^enc:v1:[A-Za-z0-9_-]+$/)
      expect(a).not.toBe(b)
      expect(store.decrypt('alice', a)).toBe('alice@example.com ✓')
      expect(store.decrypt('alice', b)).toBe('alice@example.com ✓')
      expect(store.decrypt('alice', store.encrypt('alice', ''))).toBe('')
    })
  })

  it('binds the owner: a value moved to another account does not decrypt', () => {
    withStore({}, (store) => {
      store.ensureKey('bob')
      const value = store.encrypt('alice', 'secret')
      expect(store.decrypt('bob', value)).toBeNull()
      expect(store.decrypt('nobody', value)).toBeNull()
    })
  })

  it('returns null for tampered, truncated or non-encrypted values', () => {
    withStore({}, (store) => {
      const value = store.encrypt('alice', 'secret')
      const body = Buffer.from(value.slice(7), 'base64url')
      body[15] ^= 1
      expect(store.decrypt('alice', `enc:v1:${body.toString('base64url')}`)).toBeNull()
      expect(store.decrypt('alice', value.slice(0, 20))).toBeNull()
      expect(store.decrypt('alice', 'alice@example.com')).toBeNull()
      expect(store.decrypt('alice', 'enc:v2:abc')).toBeNull()
      expect(store.decrypt('alice', 'enc:v1:')).toBeNull()
    })
  })

  it('shreds: after destroy nothing decrypts and the key is gone from keys.db and its WAL', () => {
    const masterKey = randomBytes(32).toString('base64')
    const plaintext = `carol-${randomBytes(8).toString('hex')}@example.com`
    const encrypted = withStore({ masterKey }, (store) => {
      const value = store.encrypt('carol', plaintext)
      // Enough later keys that carol's tombstone lands on another page than her key: only
      // secure_delete then zeroes the old bytes.
      for (let i = 0; i < 200; i++) store.ensureKey(`filler-${i}`)
      return { value, dave: store.encrypt('dave', 'still here') }
    })

    // Read the wrapped key as stored, and unwrap it, to know which bytes must vanish.
    const reader = new DatabaseSync(join(dataDir, 'keys.db'), { readOnly: true })
    const { wrapped } = reader.prepare("SELECT wrapped FROM data_keys WHERE owner = 'carol'").get() as {
      wrapped: Uint8Array
    }
    reader.close()
    const wrappedBytes = Buffer.from(wrapped)
    const decipher = createDecipheriv(
      'aes-256-gcm',
      Buffer.from(masterKey, 'base64'),
      wrappedBytes.subarray(0, 12),
    )
    decipher.setAAD(Buffer.from('data-key:carol'))
    decipher.setAuthTag(wrappedBytes.subarray(-16))
    const rawKey = Buffer.concat([decipher.update(wrappedBytes.subarray(12, -16)), decipher.final()])
    expect(rawKey).toHaveLength(32)
    expect(diskBytes().includes(wrappedBytes)).toBe(true) // the search below can find what it looks for

    withStore({ masterKey }, (store) => {
      expect(store.decrypt('carol', encrypted.value)).toBe(plaintext)
      store.destroy('carol')
      expect(store.decrypt('carol', encrypted.value)).toBeNull()
      expect(store.isErased('carol')).toBe(true)
      expect(() => store.ensureKey('carol')).toThrow(/destroyed/)
      expect(() => store.encrypt('carol', 'again')).toThrow(/destroyed/)
      expect(store.decrypt('dave', encrypted.dave)).toBe('still here')
      // Checked while the store is still open: closing would checkpoint the WAL anyway.
      const disk = diskBytes()
      expect(disk.includes(wrappedBytes)).toBe(false)
      expect(disk.includes(rawKey)).toBe(false)
      expect(disk.includes(Buffer.from(plaintext))).toBe(false)
      const walPath = join(dataDir, 'keys.db-wal')
      expect(existsSync(walPath) ? statSync(walPath).size : 0).toBe(0)
    })

    withStore({ masterKey }, (store) => {
      expect(store.isErased('carol')).toBe(true)
      expect(store.decrypt('carol', encrypted.value)).toBeNull()
      expect(store.decrypt('dave', encrypted.dave)).toBe('still here')
    })
    expect(diskBytes().includes(wrappedBytes)).toBe(false)
  })

  it('tells a destroyed key from one that never existed', () => {
    withStore({}, (store) => {
      expect(store.isErased('never')).toBe(false)
      store.ensureKey('gone')
      expect(store.isErased('gone')).toBe(false)
      store.destroy('gone')
      expect(store.isErased('gone')).toBe(true)
      expect(store.isErased('never')).toBe(false)
    })
  })

  it('survives a reopen, with the master key generated once in keys/master.key (0600, dir 0700)', () => {
    const value = withStore({}, (store) => store.encrypt('erin', 'erin@example.com'))
    const masterPath = join(dataDir, 'keys', 'master.key')
    expect(statSync(masterPath).mode & 0o777).toBe(0o600)
    expect(statSync(join(dataDir, 'keys')).mode & 0o777).toBe(0o700)
    expect(statSync(join(dataDir, 'keys.db')).mode & 0o777).toBe(0o600)
    const master = readFileSync(masterPath, 'utf8')
    expect(Buffer.from(master.trim(), 'base64')).toHaveLength(32)
    withStore({}, (store) => expect(store.decrypt('erin', value)).toBe('erin@example.com'))
    expect(readFileSync(masterPath, 'utf8')).toBe(master)
    // The same key given by the environment works too.
    withStore({ masterKey: master.trim() }, (store) =>
      expect(store.decrypt('erin', value)).toBe('erin@example.com'),
    )
  })

  it('refuses a wrong or lost master key instead of reading everything as erased', () => {
    const masterKey = randomBytes(32).toString('base64')
    withStore({ masterKey }, (store) => store.ensureKey('frank'))
    expect(() => openDataKeyStore({ dataDir, masterKey: randomBytes(32).toString('base64') })).toThrow(
      /not the one that wrapped/,
    )
    expect(() => openDataKeyStore({ dataDir })).toThrow(/master\.key is missing/)
    expect(existsSync(join(dataDir, 'keys', 'master.key'))).toBe(false)
  })

  it('refuses a master key that is not base64 of 32 bytes', () => {
    expect(() => openDataKeyStore({ dataDir, masterKey: 'short' })).toThrow(/32 bytes/)
    expect(() => openDataKeyStore({ dataDir, masterKey: randomBytes(16).toString('base64') })).toThrow(
      /32 bytes/,
    )
  })

  it('refuses a corrupt keys.db with an error naming the file', () => {
    const path = join(dataDir, 'keys.db')
    writeFileSync(path, randomBytes(8192))
    rmSync(`${path}-wal`, { force: true })
    expect(() => openDataKeyStore({ dataDir })).toThrow(path)
  })

  it('refuses an empty owner', () => {
    withStore({}, (store) => {
      expect(() => store.ensureKey('')).toThrow(/owner/)
      expect(() => store.destroy('')).toThrow(/owner/)
    })
  })

  it('keeps working when the key cache is smaller than the number of owners', () => {
    const store = openDataKeyStore({ dataDir, cacheSize: 2 })
    try {
      const owners = ['o1', 'o2', 'o3', 'o4']
      const values = owners.map((o) => store.encrypt(o, `v-${o}`))
      store.destroy('o2')
      for (const [i, o] of owners.entries()) {
        expect(store.decrypt(o, values[i])).toBe(o === 'o2' ? null : `v-${o}`)
      }
    } finally {
      store.close()
    }
  })

  it('preloads a batch of owners from another connection: live keys, tombstones and unknown owners', async () => {
    const values = withStore({}, (writer) => {
      const written = ['p1', 'p2', 'p3'].map((o) => writer.encrypt(o, `v-${o}`))
      writer.destroy('p2')
      return written
    })
    const store = openDataKeyStore({ dataDir })
    try {
      await store.preload(['p1', 'p2', 'p3', 'nobody'])
      expect(['p1', 'p2', 'p3'].map((o, i) => store.decrypt(o, values[i]))).toEqual(['v-p1', null, 'v-p3'])
      expect(store.isErased('p2')).toBe(true)
      expect(store.isErased('nobody')).toBe(false)
    } finally {
      store.close()
    }
  })
})
