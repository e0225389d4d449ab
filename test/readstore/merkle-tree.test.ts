/**
 * The stored Merkle tree against a plain recursive one: every size from 1 to 70 leaves, its
 * root, every inclusion proof and the consistency proofs, also after the file is reopened
 * mid-way (the right edge is read back from the stored nodes).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterEach, describe, expect, it } from 'vitest'
import { verifyConsistency, verifyInclusion } from '../../scripts/verify-proof.ts'
import { consistencyProof, inclusionProof, rootOf } from '../../src/audit/merkle.ts'
import { MERKLE_SCHEMA, MerkleTree } from '../../src/readstore/merkle-tree.ts'
import { referenceRoot, sha256 } from '../support/merkle-reference.ts'

const eventHash = (i: number): string => sha256(Buffer.from(`event ${i}`)).toString('hex')

let dir: string | null = null
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true })
  dir = null
})

function openTree(path: string): { db: DatabaseSync; tree: MerkleTree } {
  const db = new DatabaseSync(path)
  db.exec(MERKLE_SCHEMA)
  return { db, tree: new MerkleTree(db) }
}

describe('MerkleTree (stored in SQLite)', () => {
  it('has the reference root, inclusion and consistency proofs at every size, across a reopen', () => {
    dir = mkdtempSync(join(tmpdir(), 'merkle-'))
    const path = join(dir, 'tree.db')
    let { db, tree } = openTree(path)
    const hashes: string[] = []
    const roots: string[] = []
    for (let i = 0; i < 70; i++) {
      if (i === 37) {
        db.close()
        ;({ db, tree } = openTree(path))
        expect(tree.size).toBe(37)
      }
      hashes.push(eventHash(i))
      tree.append(BigInt(i * 3 + 1), `stream-${i % 5}`, Math.floor(i / 5), hashes[i])
      const root = tree.root().toString('hex')
      expect(root, `size ${i + 1}`).toBe(referenceRoot(hashes))
      expect(rootOf(i + 1, tree.subtree()).toString('hex')).toBe(root)
      roots.push(root)
    }
    for (let size = 1; size <= 70; size++) {
      for (let index = 0; index < size; index++) {
        const path = inclusionProof(index, size, tree.subtree()).map((b) => b.toString('hex'))
        const proof = { leaf_index: index, tree_size: size, audit_path: path, event_hash: hashes[index] }
        expect(verifyInclusion(proof, roots[size - 1]), `${index} of ${size}`).toBe(true)
      }
      for (let first = 1; first <= size; first++) {
        const proof = consistencyProof(first, size, tree.subtree()).map((b) => b.toString('hex'))
        expect(verifyConsistency({ first, second: size, proof }, roots[first - 1], roots[size - 1])).toBe(
          true,
        )
      }
    }
    expect(tree.leafAtPosition(52n)).toMatchObject({
      leafIndex: 17,
      streamId: 'stream-2',
      revision: 3,
      eventHash: hashes[17],
    })
    expect(tree.leafAtPosition(1n)?.leafIndex).toBe(0)
    expect(tree.leafAtPosition(208n)?.leafIndex).toBe(69)
    expect(tree.leafAtPosition(53n)).toBeNull()
    expect(tree.leafAt(70)).toBeNull()
    db.close()
  })

  it('refuses an event hash that is not 64 hex digits, and stays as it was', () => {
    dir = mkdtempSync(join(tmpdir(), 'merkle-'))
    const { db, tree } = openTree(join(dir, 'tree.db'))
    tree.append(1n, 's', 0, eventHash(0))
    for (const bad of [
      'zz'.repeat(32),
      eventHash(1).slice(1),
      `${eventHash(1)}00`,
      `${eventHash(1).slice(2)}g0`,
    ])
      expect(() => tree.append(2n, 's', 1, bad), bad).toThrow(/not a 64-hex event hash/)
    expect(tree.size).toBe(1)
    expect(tree.root().toString('hex')).toBe(referenceRoot([eventHash(0)]))
    db.close()
  })

  it('reload() forgets leaves of a rolled-back transaction', () => {
    dir = mkdtempSync(join(tmpdir(), 'merkle-'))
    const { db, tree } = openTree(join(dir, 'tree.db'))
    for (let i = 0; i < 5; i++) tree.append(BigInt(i + 1), 's', i, eventHash(i))
    const root = tree.root().toString('hex')
    db.exec('BEGIN')
    for (let i = 5; i < 8; i++) tree.append(BigInt(i + 1), 's', i, eventHash(i))
    db.exec('ROLLBACK')
    tree.reload()
    expect(tree.size).toBe(5)
    expect(tree.root().toString('hex')).toBe(root)
    tree.append(6n, 's', 5, eventHash(5))
    expect(tree.root().toString('hex')).toBe(referenceRoot([0, 1, 2, 3, 4, 5].map(eventHash)))
    db.close()
  })
})
