/** RFC 9162's Merkle tree hash (MTH) over event hashes, computed the plain recursive way: the
 * independent reference the stored tree and the proofs are held to. */
import { createHash } from 'node:crypto'

export const sha256 = (...parts: Buffer[]): Buffer =>
  createHash('sha256').update(Buffer.concat(parts)).digest()

export function referenceRoot(eventHashes: string[]): string {
  const mth = (leaves: Buffer[]): Buffer => {
    if (leaves.length === 0) return sha256()
    if (leaves.length === 1) return sha256(Buffer.from([0]), leaves[0])
    let k = 1
    while (k * 2 < leaves.length) k *= 2
    return sha256(Buffer.from([1]), mth(leaves.slice(0, k)), mth(leaves.slice(k)))
  }
  return mth(eventHashes.map((h) => Buffer.from(h, 'hex'))).toString('hex')
}
