/**
 * Checks the auth service's Merkle tree proofs (RFC 9162 §2.1) and signed tree heads, on its own.
 *
 *   node verify-proof.ts --jwks <jwks.json | https://.../jwks.json> --head <head.jws>
 *                        [--inclusion <proof.json>] [--consistency <proof.json> --old-head <old.jws>]
 *
 * - the tree head (a compact JWS, `typ: checkpoint+jws`, EdDSA or ES256) must be signed by the
 *   JWKS key its `kid` names, and carry an integer `tree_size`, a 64-hex `root_hash` and an
 *   `issued_at`;
 * - an inclusion proof `{"leaf_index","tree_size","leaf_hash","audit_path"}` (or `event_hash` in
 *   place of `leaf_hash`) must be for the head's tree size and lead from the leaf to its root;
 * - a consistency proof `{"first","second","proof"}` must lead from the old head's tree to the
 *   head's, so the log only grew between the two: nothing in the old tree was changed or removed.
 *
 * Prints one JSON line, `{"ok": true|false, ...}`, and exits 0 when everything verifies, 1 when
 * something does not, 2 on bad usage. It needs nothing of the service: only Node (>= 22.18, which
 * runs TypeScript as is), so it can be copied alone and read in full before it is trusted.
 * Leaf hash = SHA-256(0x00 || event hash bytes); node hash = SHA-256(0x01 || left || right).
 */
import { createHash, createPublicKey, type JsonWebKey, verify } from 'node:crypto'
import { readFileSync, realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'

export type InclusionProof = {
  leaf_index: number
  tree_size: number
  audit_path: string[]
  /** SHA-256(0x00 || event hash), hex; or give `event_hash` instead. */
  leaf_hash?: string
  event_hash?: string
}
export type ConsistencyProof = { first: number; second: number; proof: string[] }
export type TreeHead = { tree_size: number; root_hash: string; issued_at: string }

const HEX32 = /^[0-9a-fA-F]{64}$/

const sha256 = (...parts: Buffer[]): Buffer => {
  const hash = createHash('sha256')
  for (const part of parts) hash.update(part)
  return hash.digest()
}
const nodeHash = (left: Buffer, right: Buffer): Buffer => sha256(Buffer.from([0x01]), left, right)
const EMPTY_ROOT = sha256()

const hash32 = (value: unknown): Buffer | null =>
  typeof value === 'string' && HEX32.test(value) ? Buffer.from(value, 'hex') : null
const hashes = (values: unknown): Buffer[] | null => {
  if (!Array.isArray(values)) return null
  const parsed = values.map(hash32)
  return parsed.every((hash) => hash !== null) ? (parsed as Buffer[]) : null
}
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0
// Halving instead of `>>`, which would cut numbers to 32 bits.
const half = (n: number): number => Math.floor(n / 2)
const isOdd = (n: number): boolean => n % 2 === 1

function leafOf(proof: InclusionProof): Buffer | null {
  const fromEvent = proof.event_hash === undefined ? undefined : hash32(proof.event_hash)
  const given = proof.leaf_hash === undefined ? undefined : hash32(proof.leaf_hash)
  if (fromEvent === null || given === null) return null
  const leaf = fromEvent && sha256(Buffer.from([0x00]), fromEvent)
  if (leaf && given) return leaf.equals(given) ? leaf : null
  return leaf ?? given ?? null
}

/** RFC 9162 §2.1.3.2: does `audit_path` lead from the leaf at `leaf_index` to `rootHex`? */
export function verifyInclusion(proof: InclusionProof, rootHex: string): boolean {
  const root = hash32(rootHex)
  const path = hashes(proof?.audit_path)
  const leaf = proof && leafOf(proof)
  const index = proof?.leaf_index
  const size = proof?.tree_size
  if (!root || !path || !leaf || !isCount(index) || !isCount(size) || index >= size) return false
  let fn = index
  let sn = size - 1
  let r = leaf
  for (const p of path) {
    if (sn === 0) return false
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r)
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn)
        sn = half(sn)
      }
    } else {
      r = nodeHash(r, p)
    }
    fn = half(fn)
    sn = half(sn)
  }
  return sn === 0 && r.equals(root)
}

/**
 * RFC 9162 §2.1.4.2: is the tree of `first` leaves with root `firstRootHex` a prefix of the tree
 * of `second` leaves with root `secondRootHex`? For first == second the proof must be empty and
 * the roots equal; for first == 0 (which the RFC leaves out) the proof must be empty and the first
 * root the empty tree's, SHA-256 of nothing.
 */
export function verifyConsistency(
  proof: ConsistencyProof,
  firstRootHex: string,
  secondRootHex: string,
): boolean {
  const firstRoot = hash32(firstRootHex)
  const secondRoot = hash32(secondRootHex)
  const path = hashes(proof?.proof)
  const first = proof?.first
  const second = proof?.second
  if (!firstRoot || !secondRoot || !path || !isCount(first) || !isCount(second) || first > second)
    return false
  if (first === 0) {
    return path.length === 0 && firstRoot.equals(EMPTY_ROOT) && (second > 0 || secondRoot.equals(EMPTY_ROOT))
  }
  if (first === second) return path.length === 0 && firstRoot.equals(secondRoot)
  if (path.length === 0) return false
  // The old root is then a node of the new tree that the prover leaves out, as we have it.
  if (2 ** Math.round(Math.log2(first)) === first) path.unshift(firstRoot)
  let fn = first - 1
  let sn = second - 1
  while (isOdd(fn)) {
    fn = half(fn)
    sn = half(sn)
  }
  let fr = path[0]
  let sr = path[0]
  for (const c of path.slice(1)) {
    if (sn === 0) return false
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr)
      sr = nodeHash(c, sr)
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn)
        sn = half(sn)
      }
    } else {
      sr = nodeHash(sr, c)
    }
    fn = half(fn)
    sn = half(sn)
  }
  return sn === 0 && fr.equals(firstRoot) && sr.equals(secondRoot)
}

const BASE64URL = /^[A-Za-z0-9_-]*$/
const KEY_TYPES: Record<string, (jwk: JsonWebKey) => boolean> = {
  EdDSA: (jwk) => jwk.kty === 'OKP' && (jwk.crv === 'Ed25519' || jwk.crv === 'Ed448'),
  ES256: (jwk) => jwk.kty === 'EC' && jwk.crv === 'P-256',
}

function decodeJson(part: string): unknown {
  if (!BASE64URL.test(part)) return null
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
  } catch {
    return null
  }
}

/**
 * The tree head in a compact JWS, if it is signed by the JWKS key its `kid` names (EdDSA or
 * ES256 only, so never `alg: none` nor an HMAC keyed with a public key) and is a well-formed
 * `checkpoint+jws`; otherwise null.
 */
export function verifyTreeHead(jws: string, jwks: { keys: JsonWebKey[] }): TreeHead | null {
  const parts = typeof jws === 'string' ? jws.trim().split('.') : []
  if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) return null
  const [headerPart, payloadPart, signaturePart] = parts
  const header = decodeJson(headerPart) as Record<string, unknown> | null
  if (typeof header !== 'object' || header === null) return null
  const { alg, typ, kid } = header
  // `crit` names extensions the verifier must understand, and this one understands none.
  if (typeof alg !== 'string' || !Object.hasOwn(KEY_TYPES, alg) || header.crit !== undefined) return null
  if (typ !== 'checkpoint+jws' || typeof kid !== 'string') return null
  const jwk = Array.isArray(jwks?.keys) ? jwks.keys.find((key) => key?.kid === kid) : undefined
  if (!jwk || !KEY_TYPES[alg](jwk) || (jwk.alg !== undefined && jwk.alg !== alg)) return null
  if (jwk.use !== undefined && jwk.use !== 'sig') return null
  try {
    const key = createPublicKey({ key: jwk, format: 'jwk' })
    const signingInput = Buffer.from(`${headerPart}.${payloadPart}`, 'ascii')
    const signature = Buffer.from(signaturePart, 'base64url')
    const valid =
      alg === 'ES256'
        ? verify('sha256', signingInput, { key, dsaEncoding: 'ieee-p1363' }, signature)
        : verify(null, signingInput, key, signature)
    if (!valid) return null
  } catch {
    return null
  }
  const payload = decodeJson(payloadPart) as Record<string, unknown> | null
  if (typeof payload !== 'object' || payload === null) return null
  const { tree_size, root_hash, issued_at } = payload
  if (!isCount(tree_size) || typeof root_hash !== 'string' || !HEX32.test(root_hash)) return null
  if (typeof issued_at !== 'string') return null
  return { tree_size, root_hash: root_hash.toLowerCase(), issued_at }
}

const USAGE =
  'usage: node verify-proof.ts --jwks <jwks.json|https://...> --head <head.jws>\n' +
  '         [--inclusion <proof.json>] [--consistency <proof.json> --old-head <old.jws>]'

class UsageError extends Error {}

function readInput(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new UsageError(`cannot read ${what} ${path}: ${(error as Error).message}`)
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    throw new UsageError(`${what} is not JSON`)
  }
}

async function loadJwks(source: string): Promise<{ keys: JsonWebKey[] }> {
  let text: string
  if (/^https?:\/\//.test(source)) {
    try {
      const response = await fetch(source, { signal: AbortSignal.timeout(15_000) })
      if (!response.ok) throw new Error(`HTTP ${response.status}`)
      text = await response.text()
    } catch (error) {
      throw new UsageError(`cannot fetch the JWKS ${source}: ${(error as Error).message}`)
    }
  } else {
    text = readInput(source, 'the JWKS')
  }
  const jwks = parseJson(text, 'the JWKS') as { keys?: unknown }
  if (!Array.isArray(jwks?.keys)) throw new UsageError('the JWKS has no "keys" array')
  return jwks as { keys: JsonWebKey[] }
}

type Check = { ok: boolean; reason?: string } & Record<string, unknown>

function checkInclusion(proof: InclusionProof, head: TreeHead): Check {
  const details = { leaf_index: proof?.leaf_index, tree_size: proof?.tree_size }
  if (proof?.tree_size !== head.tree_size) {
    return {
      ok: false,
      ...details,
      reason: `the proof is for tree size ${details.tree_size}, the head's is ${head.tree_size}`,
    }
  }
  return verifyInclusion(proof, head.root_hash)
    ? { ok: true, ...details }
    : { ok: false, ...details, reason: "the audit path does not lead to the head's root" }
}

function checkConsistency(
  proof: ConsistencyProof,
  oldJws: string,
  jwks: { keys: JsonWebKey[] },
  head: TreeHead,
): Check {
  const old = verifyTreeHead(oldJws, jwks)
  if (!old) return { ok: false, reason: 'the old tree head does not verify' }
  const details = { first: proof?.first, second: proof?.second, old_head: old }
  if (proof?.first !== old.tree_size || proof?.second !== head.tree_size) {
    return { ok: false, ...details, reason: "the proof's sizes are not the two heads' tree sizes" }
  }
  return verifyConsistency(proof, old.root_hash, head.root_hash)
    ? { ok: true, ...details }
    : { ok: false, ...details, reason: "the proof does not lead from the old head's root to the head's" }
}

/** Where the command line writes: its JSON line, and usage. */
export type Output = { out: (line: string) => void; err: (text: string) => void }
const console_: Output = { out: (line) => console.log(line), err: (text) => console.error(text) }

/** The command line: returns the exit code, having printed one JSON line (or usage on stderr). */
export async function main(argv: string[], output: Output = console_): Promise<number> {
  try {
    const { values } = (() => {
      try {
        return parseArgs({
          args: argv,
          options: {
            jwks: { type: 'string' },
            head: { type: 'string' },
            inclusion: { type: 'string' },
            consistency: { type: 'string' },
            'old-head': { type: 'string' },
          },
          strict: true,
          allowPositionals: false,
        })
      } catch (error) {
        throw new UsageError((error as Error).message)
      }
    })()
    if (!values.jwks || !values.head) throw new UsageError('--jwks and --head are required')
    if (!values.consistency !== !values['old-head']) {
      throw new UsageError('--consistency and --old-head go together')
    }
    const jwks = await loadJwks(values.jwks)
    const headJws = readInput(values.head, 'the tree head')
    const read = (path: string | undefined, what: string): string | undefined =>
      path === undefined ? undefined : readInput(path, what)
    const inclusionJson = read(values.inclusion, 'the inclusion proof')
    const consistencyJson = read(values.consistency, 'the consistency proof')
    const oldJws = read(values['old-head'], 'the old tree head')
    const inclusion =
      inclusionJson === undefined ? undefined : parseJson(inclusionJson, 'the inclusion proof')
    const consistency =
      consistencyJson === undefined ? undefined : parseJson(consistencyJson, 'the consistency proof')

    const head = verifyTreeHead(headJws, jwks)
    if (!head) {
      output.out(JSON.stringify({ ok: false, reason: 'the tree head does not verify' }))
      return 1
    }
    const result: { ok: boolean; head: TreeHead; inclusion?: Check; consistency?: Check } = { ok: true, head }
    if (inclusionJson !== undefined) result.inclusion = checkInclusion(inclusion as InclusionProof, head)
    if (consistencyJson !== undefined && oldJws !== undefined) {
      result.consistency = checkConsistency(consistency as ConsistencyProof, oldJws, jwks, head)
    }
    result.ok = result.inclusion?.ok !== false && result.consistency?.ok !== false
    output.out(JSON.stringify(result))
    return result.ok ? 0 : 1
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    output.err(`error: ${error.message}\n${USAGE}`)
    return 2
  }
}

function runDirectly(): boolean {
  try {
    return (
      process.argv[1] !== undefined && pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url
    )
  } catch {
    return false
  }
}

if (runDirectly()) process.exitCode = await main(process.argv.slice(2))
