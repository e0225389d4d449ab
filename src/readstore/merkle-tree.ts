/**
 * The log-wide Merkle tree (RFC 9162 §2.1) over every event in global order, kept beside the
 * read models and written in the transaction of the batch that projects its events (the read
 * store lets the leaves of small batches wait a little: see TREE_BATCH there). Appending a leaf
 * is O(1) amortised: the right edge (the roots of the perfect subtrees that make up the tree)
 * stays in memory, and each completed perfect subtree of at least 2^STORED_LEVEL leaves is
 * stored once, so any proof reads O(log n) stored hashes (a smaller subtree is hashed from its
 * leaves, read in one query).
 *
 * A leaf keeps the event's stored hash (its encrypted form: crypto-shredding never changes it)
 * and where the event is. The leaves table has no index but its key: positions grow with the
 * leaf index, so a position is found by bisection, and every append stays one cheap insert.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite'
import {
  EMPTY_ROOT,
  leafHash,
  leafHashHex,
  nodeHash,
  nodeHashHex,
  type SubtreeHash,
  subtreeHashFrom,
} from '../audit/merkle.ts'

export const MERKLE_SCHEMA = `
  CREATE TABLE IF NOT EXISTS merkle_leaves (
    leaf_index INTEGER PRIMARY KEY,
    position INTEGER NOT NULL,
    stream_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    event_hash BLOB NOT NULL
  );
  CREATE TABLE IF NOT EXISTS merkle_nodes (
    level INTEGER NOT NULL,
    node_index INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, node_index)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS merkle_verified (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    tree_size INTEGER NOT NULL,
    root_hash TEXT NOT NULL
  );
`
/** Dropped by a rebuild. `merkle_verified` is not: a rebuilt tree must still extend it. */
export const MERKLE_TABLES = ['merkle_leaves', 'merkle_nodes'] as const

export type Leaf = {
  leafIndex: number
  position: bigint
  streamId: string
  revision: number
  eventHash: string
}

/** A root of the right edge; hex, as the append path hashes. */
type Edge = { level: number; hash: string }

/**
 * The lowest level whose nodes are stored. Storing every node doubled the rows a replay writes
 * (one node per leaf on average); from level 4 it is one per 8 leaves, and a proof hashes at
 * most 8 leaves for each subtree below it.
 */
export const STORED_LEVEL = 4

export class MerkleTree {
  readonly #db: DatabaseSync
  #size = 0
  /** Roots of the perfect subtrees that make up the tree, largest (leftmost) first. */
  #edge: Edge[] = []
  #statements: Record<string, StatementSync> | null = null
  readonly #beforeRead: () => void

  /** `beforeRead` runs before every read: the read store writes the leaves it holds back. */
  constructor(db: DatabaseSync, beforeRead: () => void = () => {}) {
    this.#db = db
    this.#beforeRead = beforeRead
    this.reload()
  }

  get size(): number {
    this.#beforeRead()
    return this.#size
  }

  #sql(): Record<string, StatementSync> {
    this.#statements ??= {
      insertLeaf: this.#db.prepare(
        'INSERT INTO merkle_leaves (leaf_index, position, stream_id, revision, event_hash) VALUES (?, ?, ?, ?, ?)',
      ),
      insertNode: this.#db.prepare('INSERT INTO merkle_nodes (level, node_index, hash) VALUES (?, ?, ?)'),
      leaves: this.#db.prepare(
        'SELECT event_hash FROM merkle_leaves WHERE leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index',
      ),
      node: this.#db.prepare('SELECT hash FROM merkle_nodes WHERE level = ? AND node_index = ?'),
      count: this.#db.prepare('SELECT count(*) AS n FROM merkle_leaves'),
      range: this.#db.prepare(
        'SELECT leaf_index, position, stream_id, revision, event_hash FROM merkle_leaves WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?',
      ),
      verified: this.#db.prepare('SELECT tree_size, root_hash FROM merkle_verified WHERE id = 1'),
      markVerified: this.#db.prepare(
        'INSERT INTO merkle_verified (id, tree_size, root_hash) VALUES (1, ?, ?) ' +
          'ON CONFLICT (id) DO UPDATE SET tree_size = excluded.tree_size, root_hash = excluded.root_hash',
      ),
      byIndex: this.#db.prepare(
        'SELECT leaf_index, position, stream_id, revision, event_hash FROM merkle_leaves WHERE leaf_index = ?',
      ),
    }
    return this.#statements
  }

  /** Reads the size and right edge back from the tables (at start, and after a rolled-back batch). */
  reload(): void {
    this.#statements = null
    this.#size = Number((this.#sql().count.get() as { n: number }).n)
    this.#edge = []
    let start = 0
    for (let level = 52; level >= 0; level--) {
      const width = 2 ** level
      if (this.#size - start >= width) {
        this.#edge.push({ level, hash: this.#perfect(level, start / width).toString('hex') })
        start += width
      }
    }
  }

  /** Adds the next event in global order. Call inside the read store's transaction. */
  append(position: bigint, streamId: string, revision: number, eventHash: string): void {
    const sql = this.#sql()
    const index = this.#size
    const bytes = Buffer.from(eventHash, 'hex') // stops at the first character that is not hex
    if (bytes.length !== 32 || eventHash.length !== 64)
      throw new Error(`merkle tree: not a 64-hex event hash at ${position}`)
    sql.insertLeaf.run(index, position, streamId, revision, bytes)
    let hash = leafHashHex(eventHash)
    let level = 0
    // Each trailing 1-bit of the index completes a perfect subtree with the edge's last root.
    // (Arithmetic, not bit operators: those cut numbers to 32 bits.)
    for (let i = index; i % 2 === 1; i = (i - 1) / 2) {
      const left = this.#edge.pop()!
      level++
      hash = nodeHashHex(left.hash, hash)
      if (level >= STORED_LEVEL)
        sql.insertNode.run(level, Math.floor(index / 2 ** level), Buffer.from(hash, 'hex'))
    }
    this.#edge.push({ level, hash })
    this.#size = index + 1
  }

  #perfect(level: number, index: number): Buffer {
    if (level < STORED_LEVEL) return this.#hashLeaves(level, index)
    const row = this.#sql().node.get(level, index) as { hash: Uint8Array } | undefined
    if (!row) throw new Error(`merkle tree: no node ${level}/${index}`)
    return Buffer.from(row.hash)
  }

  /** A perfect subtree below STORED_LEVEL, hashed from its leaves. */
  #hashLeaves(level: number, index: number): Buffer {
    const width = 2 ** level
    const rows = this.#sql().leaves.all(index * width, (index + 1) * width) as { event_hash: Uint8Array }[]
    if (rows.length !== width) throw new Error(`merkle tree: leaves of ${level}/${index} missing`)
    let hashes = rows.map((row) => leafHash(Buffer.from(row.event_hash)))
    while (hashes.length > 1) {
      hashes = Array.from({ length: hashes.length / 2 }, (_, i) => nodeHash(hashes[2 * i], hashes[2 * i + 1]))
    }
    return hashes[0]
  }

  /** The root of the whole tree, from the right edge in memory. */
  root(): Buffer {
    this.#beforeRead()
    const root = this.#edge.reduceRight<string | null>(
      (right, left) => (right ? nodeHashHex(left.hash, right) : left.hash),
      null,
    )
    return root === null ? EMPTY_ROOT : Buffer.from(root, 'hex')
  }

  /** MTH of any range of the stored leaves, from O(log n) stored hashes. */
  subtree(): SubtreeHash {
    this.#beforeRead()
    return subtreeHashFrom((level, index) => this.#perfect(level, index))
  }

  /** The tree head the last successful verify reached, if any. */
  lastVerified(): { size: number; rootHash: string } | null {
    this.#beforeRead()
    const row = this.#sql().verified.get() as { tree_size: number; root_hash: string } | undefined
    return row ? { size: row.tree_size, rootHash: row.root_hash } : null
  }

  markVerified(size: number, rootHash: string): void {
    this.#sql().markVerified.run(size, rootHash)
  }

  leafAt(index: number): Leaf | null {
    this.#beforeRead()
    return toLeaf(this.#sql().byIndex.get(index))
  }

  /** Up to `count` leaves from `start` on, in order (a verify reads them a batch at a time). */
  leaves(start: number, count: number): Leaf[] {
    this.#beforeRead()
    return (this.#sql().range.all(start, count) as unknown[]).map((row) => toLeaf(row) as Leaf)
  }

  /** The leaf of the event at `position`, by bisection over the leaf index (positions only grow). */
  leafAtPosition(position: bigint): Leaf | null {
    this.#beforeRead()
    let low = 0
    let high = this.#size - 1
    while (low <= high) {
      const middle = Math.floor((low + high) / 2)
      const leaf = this.leafAt(middle)
      if (!leaf) return null
      if (leaf.position === position) return leaf
      if (leaf.position < position) low = middle + 1
      else high = middle - 1
    }
    return null
  }
}

function toLeaf(row: unknown): Leaf | null {
  if (!row) return null
  const r = row as {
    leaf_index: number
    position: number
    stream_id: string
    revision: number
    event_hash: Uint8Array
  }
  return {
    leafIndex: r.leaf_index,
    position: BigInt(r.position),
    streamId: r.stream_id,
    revision: r.revision,
    eventHash: Buffer.from(r.event_hash).toString('hex'),
  }
}
