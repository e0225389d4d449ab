/**
 * `GET /admin/users` on a large read store: `queries.listUsers` against a temporary read-models
 * database built with the projections' own schemas and `--users` user rows inserted directly by
 * SQL (the users projection keeps its search index up to date as rows arrive). Each case is the
 * median of `--runs` calls, after one warm-up call:
 *   - `skip=N-100`: offset paging to the last page,
 *   - `after_id` near the end: keyset paging to the same page,
 *   - `q` with no match, `q` matching about 1 % of users (first page), `q` matching one user,
 *   - a 2-character `q` (served by a scan: the trigram index needs 3),
 *   - `role` with `after_id`.
 * Usage: npx node bench/user-list.ts [--users 300000] [--runs 20]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { DatabaseSync } from 'node:sqlite'
import { parseArgs } from 'node:util'
import { projections } from '../projections/index.ts'
import { createQueries } from '../src/readstore/queries.ts'

const { values: args } = parseArgs({
  options: { users: { type: 'string', default: '300000' }, runs: { type: 'string', default: '20' } },
})
const USERS = Number(args.users.replaceAll('_', ''))
const RUNS = Number(args.runs)
if (!Number.isInteger(USERS) || USERS < 1000) throw new Error('--users must be an integer >= 1000')
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error('--runs must be a positive integer')

// A deterministic PRNG, so every run builds the same store.
let seed = 0x1b873593
function random(): number {
  seed ^= seed << 13
  seed ^= seed >>> 17
  seed ^= seed << 5
  return (seed >>> 0) / 0x1_0000_0000
}
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]
const FIRST = [
  'Anna',
  'Ben',
  'Chloé',
  'David',
  'Eva',
  'Farid',
  'Grace',
  'Hugo',
  'Ines',
  'Jonas',
  'Kim',
  'Lena',
]
const LAST = ['Smith', 'Müller', 'García', 'Rossi', 'Nowak', 'Dubois', 'Jensen', 'Silva', 'Kowalski', 'Ito']
const ROLES = ['user', 'user', 'user', 'user', 'vendor', 'auditor', 'admin'] as const

const dir = mkdtempSync(join(tmpdir(), 'auth-bench-user-list-'))
try {
  const db = new DatabaseSync(join(dir, 'read-models.db'))
  db.exec('PRAGMA journal_mode = WAL; PRAGMA secure_delete = ON; PRAGMA synchronous = NORMAL')
  for (const p of projections) db.exec(p.schema)

  const insert = db.prepare(
    `INSERT INTO users (id, username, username_lower, email, email_lower, full_name, company_name, role,
       is_active, created_at, revision) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, 1, ?, 0)`,
  )
  let started = performance.now()
  db.exec('BEGIN')
  for (let id = 1; id <= USERS; id++) {
    const first = pick(FIRST)
    const last = pick(LAST)
    // About 1 % of the users are called "Zhou": a query that matches a slice of the store.
    const family = random() < 0.01 ? 'Zhou' : last
    const username = `${first.toLowerCase()}.${family.toLowerCase()}${id}`
    const email = `${username}@${pick(['example.com', 'mail.example.org', 'corp.example.net'])}`
    insert.run(
      id,
      username,
      username,
      email,
      email,
      random() < 0.1 ? null : `${first} ${family}`,
      pick(ROLES),
      '2026-01-01T00:00:00.000Z',
    )
  }
  db.exec('COMMIT')
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)')
  const insertMs = performance.now() - started
  const queries = createQueries(db)

  type Options = Parameters<typeof queries.listUsers>[0]
  const median = (values: number[]): number => {
    const sorted = [...values].sort((a, b) => a - b)
    const mid = sorted.length >> 1
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
  }
  const time = (options: Options): { ms: number; rows: number; firstId: number | null } => {
    let rows = queries.listUsers(options) // warm-up
    const times: number[] = []
    for (let i = 0; i < RUNS; i++) {
      started = performance.now()
      rows = queries.listUsers(options)
      times.push(performance.now() - started)
    }
    return { ms: median(times), rows: rows.length, firstId: rows[0]?.id ?? null }
  }

  const cases: [string, Options, (r: { rows: number; firstId: number | null }) => boolean][] = [
    ['skip=N-100', { skip: USERS - 100, limit: 100 }, (r) => r.rows === 100 && r.firstId === USERS - 99],
    [
      'after_id=N-100',
      { skip: 0, limit: 100, after_id: USERS - 100 } as Options,
      (r) => r.rows === 100 && r.firstId === USERS - 99,
    ],
    ['q no match ("qqxzv")', { skip: 0, limit: 100, q: 'qqxzv' }, (r) => r.rows === 0],
    ['q ~1 % match ("zhou"), first 100', { skip: 0, limit: 100, q: 'zhou' }, (r) => r.rows === 100],
    [
      `q one match ("${USERS - 7}@")`,
      { skip: 0, limit: 100, q: `${USERS - 7}@` },
      (r) => r.rows === 1 && r.firstId === USERS - 7,
    ],
    ['q 2 chars ("zh"), first 100', { skip: 0, limit: 100, q: 'zh' }, (r) => r.rows === 100],
    [
      'role=admin after_id=N/2',
      { skip: 0, limit: 100, role: 'admin', after_id: USERS / 2 } as Options,
      (r) => r.rows === 100 && (r.firstId ?? 0) > USERS / 2,
    ],
  ]
  console.log(
    `listUsers on ${USERS.toLocaleString('en-US')} users (inserted in ${(insertMs / 1000).toFixed(1)} s), ` +
      `median of ${RUNS}; load average ${loadavg()[0].toFixed(1)}`,
  )
  console.log('| case | median ms | rows |')
  console.log('|---|---:|---:|')
  for (const [name, options, ok] of cases) {
    const result = time(options)
    const note = ok(result) ? '' : ' (unexpected result: option unsupported?)'
    console.log(`| ${name} | ${result.ms.toFixed(2)} | ${result.rows}${note} |`)
  }
  db.close()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
