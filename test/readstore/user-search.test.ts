/**
 * GET /admin/users' query (`queries.listUsers`): `q` through the users projection's FTS5 trigram
 * index gives exactly what the former `LIKE '%q%'` scan gave; `after_id` pages by key; the index
 * follows every change of username, email and full name, and an erased user's terms leave it.
 */
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import type { Role } from '../../domain/event.ts'
import { projections } from '../../projections/index.ts'
import type { ReadModelWriter } from '../../projections/projection.ts'
import { usersProjection } from '../../projections/users.projection.ts'
import type { RecordedEvent } from '../../src/eventstore/event-store.ts'
import { createQueries, type ListUsersOptions, type UserRow } from '../../src/readstore/queries.ts'
import { tempDataDir } from '../support/runtime.ts'

type Person = { username: string; email: string; full_name: string | null; role?: Role }

const open: DatabaseSync[] = []
const dirs: string[] = []
afterEach(() => {
  for (const db of open.splice(0)) if (db.isOpen) db.close()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A read-model database as the read store makes it: its pragmas and every projection's schema. */
function readModels(path = ':memory:'): DatabaseSync {
  const db = new DatabaseSync(path)
  open.push(db)
  db.exec('PRAGMA journal_mode = WAL; PRAGMA secure_delete = ON')
  for (const p of projections) db.exec(p.schema)
  return db
}

function writer(db: DatabaseSync): ReadModelWriter {
  return {
    run: (sql, ...params) => {
      db.prepare(sql).run(...params)
    },
    get: <T>(sql: string, ...params: (string | number | bigint | null)[]) =>
      db.prepare(sql).get(...params) as T | undefined,
  }
}

/** Applies user events through the users projection, as the projection runner would. */
function projector(db: DatabaseSync) {
  const w = writer(db)
  const revisions = new Map<number, number>()
  let position = 0n
  const apply = (id: number, type: string, data: Record<string, unknown>): void => {
    const revision = revisions.has(id) ? (revisions.get(id) as number) + 1 : 0
    revisions.set(id, revision)
    const event = {
      stream_id: `user-${id}`,
      revision,
      position: ++position,
      type,
      data,
      metadata: { occurred_at: '2026-11-25T12:00:00.000Z' },
    } as unknown as RecordedEvent
    usersProjection.apply(event, w)
  }
  return {
    register: (id: number, p: Person): void =>
      apply(id, 'AccountRegistered', {
        user_id: id,
        username: p.username,
        email: p.email,
        full_name: p.full_name,
        role: p.role ?? 'user',
      }),
    changeEmail: (id: number, email: string): void => apply(id, 'EmailChanged', { email }),
    changeName: (id: number, full_name: string | null): void => apply(id, 'FullNameChanged', { full_name }),
    setRole: (id: number, role: Role): void => apply(id, 'RoleChanged', { role }),
    delete: (id: number): void => apply(id, 'AccountDeleted', {}),
  }
}

/** A users row as the projection wrote it before the search index existed. */
function insertAsBefore(db: DatabaseSync, id: number, p: Person): void {
  db.prepare(
    `INSERT INTO users (id, username, username_lower, email, email_lower, full_name, role, is_active, created_at, revision)
       VALUES (?, ?, ?, ?, ?, ?, 'user', 1, '2026-11-25T12:00:00.000Z', 0)`,
  ).run(id, p.username, p.username.toLowerCase(), p.email, p.email.toLowerCase(), p.full_name)
}

/** The query as it was before the index: a LIKE scan of three columns (plus `after_id`). */
function likeOracle(db: DatabaseSync, o: ListUsersOptions): number[] {
  const where: string[] = []
  const params: (string | number)[] = []
  if (o.role) {
    where.push('role = ?')
    params.push(o.role)
  }
  if (o.q) {
    const like = `%${o.q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`
    where.push(
      "(username_lower LIKE ? ESCAPE '\\' OR email_lower LIKE ? ESCAPE '\\' OR lower(coalesce(full_name, '')) LIKE ? ESCAPE '\\')",
    )
    params.push(like, like, like)
  }
  if (o.after_id !== undefined) {
    where.push('id > ?')
    params.push(o.after_id)
  }
  const sql = `SELECT id FROM users ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ? OFFSET ?`
  return (db.prepare(sql).all(...params, o.limit, o.skip) as { id: number }[]).map((r) => r.id)
}

const ids = (rows: UserRow[]): number[] => rows.map((r) => r.id)

/** FTS5's own check that the index matches the users table (rank 1: against the content). */
function expectIndexIntact(db: DatabaseSync): void {
  db.exec("INSERT INTO users_search (users_search, rank) VALUES ('integrity-check', 1)")
}

// Characters that are FTS5 or LIKE syntax, both cases of ASCII letters, and lowercase non-ASCII.
const CHARS = [...'abcABC xyzXYZ019_.-@%"*\'\\():^+éøß名']
const text = (min: number, max: number) =>
  fc.array(fc.constantFrom(...CHARS), { minLength: min, maxLength: max }).map((cs) => cs.join(''))
const person: fc.Arbitrary<Person> = fc.record({
  username: text(1, 12),
  email: text(1, 16),
  full_name: fc.option(text(0, 14), { nil: null }),
  role: fc.constantFrom<Role>('user', 'admin', 'vendor', 'auditor'),
})

describe('listUsers q: the trigram index answers as the LIKE scan did', () => {
  it('for any users, q, role, skip, limit and after_id (property)', () => {
    fc.assert(
      fc.property(
        fc.array(person, { minLength: 1, maxLength: 30 }),
        fc.array(
          fc.record({
            // Substrings of stored values (with their case changed) hit; random text mostly misses.
            q: fc.oneof(text(0, 6), fc.tuple(fc.nat(), fc.nat(), fc.nat(), fc.boolean())),
            role: fc.option(fc.constantFrom<Role>('user', 'admin', 'vendor', 'auditor'), { nil: undefined }),
            skip: fc.nat(5),
            limit: fc.integer({ min: 1, max: 40 }),
            after_id: fc.option(fc.nat(32), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 15 },
        ),
        (people, searches) => {
          const db = readModels()
          const project = projector(db)
          people.forEach((p, i) => {
            project.register(i + 1, p)
          })
          const queries = createQueries(db)
          for (const s of searches) {
            let q: string
            if (typeof s.q === 'string') q = s.q
            else {
              const [which, from, length, upper] = s.q
              const p = people[which % people.length]
              const value = [p.username, p.email, p.full_name ?? ''][from % 3]
              const start = from % (value.length + 1)
              q = value.slice(start, start + 1 + (length % 6))
              if (upper) q = q.toUpperCase()
            }
            const options: ListUsersOptions = {
              skip: s.skip,
              limit: s.limit,
              role: s.role,
              q,
              after_id: s.after_id,
            }
            expect(ids(queries.listUsers(options)), JSON.stringify(options)).toEqual(likeOracle(db, options))
          }
          expectIndexIntact(db)
          db.close()
        },
      ),
      { numRuns: 150 },
    )
  })

  it('treats FTS5 and LIKE syntax in q as plain characters', () => {
    const db = readModels()
    const project = projector(db)
    const names = [
      'say "hello" now',
      '100% sure',
      'snake_case_name',
      'star*gazer',
      'a"b',
      'NEAR(x y)',
      'this AND that',
      'this OR that',
      'NOT me',
      'col:umn',
      '^caret',
      'back\\slash',
      "o'brien",
      '-minus+plus',
      'plain person',
    ]
    names.forEach((full_name, i) => {
      project.register(i + 1, { username: `user${i}`, email: `u${i}@example.com`, full_name })
    })
    const queries = createQueries(db)
    const cases: [string, string[]][] = [
      ['"hello"', ['say "hello" now']],
      ['"he', ['say "hello" now']],
      ['"', ['say "hello" now', 'a"b']],
      ['a"b', ['a"b']],
      ['%', ['100% sure']],
      ['0% s', ['100% sure']],
      ['_', ['snake_case_name']],
      ['e_c', ['snake_case_name']],
      ['*', ['star*gazer']],
      ['r*g', ['star*gazer']],
      ['NEAR(', ['NEAR(x y)']],
      ['and', ['this AND that']],
      [' OR ', ['this OR that']],
      ['not', ['NOT me']],
      ['l:u', ['col:umn']],
      ['^ca', ['^caret']],
      ['k\\s', ['back\\slash']],
      ["'br", ["o'brien"]],
      ['-mi', ['-minus+plus']],
      ['s+p', ['-minus+plus']],
      ['%%%', []],
      ['___', []],
      ['***', []],
      ['"""', []],
    ]
    for (const [q, expected] of cases) {
      const found = queries.listUsers({ skip: 0, limit: 100, q }).map((u) => u.full_name)
      expect(found, q).toEqual(expected)
      expect(ids(queries.listUsers({ skip: 0, limit: 100, q })), q).toEqual(
        likeOracle(db, { skip: 0, limit: 100, q }),
      )
    }
  })

  it('matches q of 1 and 2 characters by substring too (a scan: trigrams need 3)', () => {
    const db = readModels()
    const project = projector(db)
    project.register(1, { username: 'ab', email: 'x1@example.com', full_name: 'Q' })
    project.register(2, { username: 'zz_top', email: 'x2@example.com', full_name: null })
    project.register(3, { username: 'percent', email: 'x3@example.com', full_name: '50%' })
    const queries = createQueries(db)
    const q = (value: string, options: Partial<ListUsersOptions> = {}) =>
      ids(queries.listUsers({ skip: 0, limit: 100, q: value, ...options }))
    expect(q('ab')).toEqual([1])
    expect(q('AB')).toEqual([1])
    expect(q('q')).toEqual([1])
    expect(q('_')).toEqual([2])
    expect(q('%')).toEqual([3])
    expect(q('x')).toEqual([1, 2, 3])
    expect(q('x', { after_id: 1 })).toEqual([2, 3])
    expect(q('x', { after_id: 1, skip: 1 })).toEqual([3])
    expect(q('zz')).toEqual([2])
    expect(q('')).toEqual([1, 2, 3])
  })

  it('finds non-ASCII capitals case-insensitively, which the LIKE scan did not', () => {
    const db = readModels()
    projector(db).register(1, { username: 'emile', email: 'e@example.com', full_name: 'Émile Ørsted' })
    const queries = createQueries(db)
    for (const q of ['Émile', 'émile', 'ÉMILE', 'ørsted', 'ØRSTED', 'le Ø'])
      expect(ids(queries.listUsers({ skip: 0, limit: 10, q })), q).toEqual([1])
    expect(ids(queries.listUsers({ skip: 0, limit: 10, q: 'emile o' }))).toEqual([])
  })
})

describe('listUsers after_id (keyset paging)', () => {
  function store(n: number) {
    const db = readModels()
    const project = projector(db)
    for (let id = 1; id <= n; id++)
      project.register(id, {
        username: `member${id}`,
        email: `member${id}@${id % 3 ? 'example.com' : 'corp.example'}`,
        full_name: id % 4 ? `Member Number ${id}` : null,
        role: id % 5 === 0 ? 'admin' : 'user',
      })
    return { db, queries: createQueries(db) }
  }

  it('pages through everything, in id order, without gaps or repeats, with any filter', () => {
    const { queries } = store(137)
    for (const filter of [
      {},
      { role: 'admin' as const },
      { q: 'corp' },
      { q: 'er1' },
      { q: 'r 1', role: 'user' as const },
    ]) {
      const all = ids(queries.listUsers({ skip: 0, limit: 1000, ...filter }))
      expect(all.length).toBeGreaterThan(5)
      const paged: number[] = []
      let after: number | undefined
      for (;;) {
        const page = ids(queries.listUsers({ skip: 0, limit: 10, after_id: after, ...filter }))
        if (page.length === 0) break
        paged.push(...page)
        after = page[page.length - 1]
      }
      expect(paged, JSON.stringify(filter)).toEqual(all)
    }
  })

  it('applies skip after after_id, and combines with role and q', () => {
    const { queries } = store(60)
    const list = (o: Partial<ListUsersOptions>) => ids(queries.listUsers({ skip: 0, limit: 1000, ...o }))
    expect(list({ after_id: 50 })).toEqual([51, 52, 53, 54, 55, 56, 57, 58, 59, 60])
    expect(list({ after_id: 50, skip: 3, limit: 2 })).toEqual([54, 55])
    expect(list({ after_id: 0, limit: 3 })).toEqual([1, 2, 3])
    expect(list({ after_id: 60 })).toEqual([])
    expect(list({ after_id: 10 ** 12 })).toEqual([])
    expect(list({ after_id: 20, role: 'admin' })).toEqual([25, 30, 35, 40, 45, 50, 55, 60])
    expect(list({ after_id: 20, role: 'admin', skip: 2, limit: 3 })).toEqual([35, 40, 45])
    expect(list({ after_id: 40, q: 'corp' })).toEqual([42, 45, 48, 51, 54, 57, 60])
    expect(list({ after_id: 40, q: 'corp', role: 'admin', skip: 1 })).toEqual([60])
    expect(list({ after_id: 40, q: 'rp' })).toEqual(list({ after_id: 40, q: 'corp' }))
  })

  it('uses the primary key, the role index and the FTS rowid order: no sort, no full scan', () => {
    const { db } = store(10)
    const plan = (sql: string, ...params: (string | number)[]) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail)
    const spied: string[] = []
    const prepare = db.prepare.bind(db)
    db.prepare = ((sql: string) => {
      spied.push(sql)
      return prepare(sql)
    }) as typeof db.prepare
    const queries = createQueries(db)
    queries.listUsers({ skip: 0, limit: 10, after_id: 5 })
    queries.listUsers({ skip: 0, limit: 10, after_id: 5, role: 'admin' })
    queries.listUsers({ skip: 0, limit: 10, after_id: 5, role: 'admin', q: 'member' })
    const lists = spied.filter((s) => s.includes('LIMIT ? OFFSET ?'))
    expect(lists).toHaveLength(3)
    expect(plan(lists[0], 5, 10, 0).join('; ')).toMatch(/SEARCH users USING INTEGER PRIMARY KEY \(rowid>\?\)/)
    expect(plan(lists[1], 5, 'admin', 10, 0).join('; ')).toMatch(
      /SEARCH users USING INDEX users_role \(role=\? AND id>\?\)/,
    )
    const fts = plan(lists[2], '"member"', 5, 'admin', 10, 0).join('; ')
    expect(fts).toMatch(/SCAN users_search VIRTUAL TABLE/)
    for (const p of [lists[0], lists[1], lists[2]].map((s) =>
      plan(s, ...(s.match(/\?/g) ?? []).map(() => 1)),
    ))
      expect(p.join('; ')).not.toMatch(/TEMP B-TREE|SCAN users(?!_search)/)
  })
})

describe('the search index follows the users table', () => {
  it('on email and name changes, role changes and deletions', () => {
    const db = readModels()
    const project = projector(db)
    project.register(1, { username: 'alpha', email: 'old-address@example.com', full_name: 'Original Name' })
    project.register(2, { username: 'beta', email: 'beta@example.com', full_name: null })
    const queries = createQueries(db)
    const q = (value: string) => ids(queries.listUsers({ skip: 0, limit: 10, q: value }))
    expect(q('old-address')).toEqual([1])
    project.changeEmail(1, 'new-address@example.com')
    expect(q('old-address')).toEqual([])
    expect(q('new-address')).toEqual([1])
    project.changeName(1, null)
    expect(q('original')).toEqual([])
    project.changeName(2, 'Second Person')
    expect(q('second')).toEqual([2])
    project.setRole(2, 'admin')
    expect(q('second')).toEqual([2])
    expectIndexIntact(db)
    project.delete(2)
    expect(q('second')).toEqual([])
    expect(q('beta')).toEqual([])
    expect(q('alpha')).toEqual([1])
    expectIndexIntact(db)
    // A re-delivered registration changes nothing (INSERT OR IGNORE), nor the index.
    usersProjection.apply(
      {
        stream_id: 'user-1',
        revision: 0,
        position: 99n,
        type: 'AccountRegistered',
        data: { username: 'alpha', email: 'other@example.com', full_name: 'Other', role: 'user' },
        metadata: { occurred_at: '2026-11-25T12:00:00.000Z' },
      } as unknown as RecordedEvent,
      writer(db),
    )
    expect(q('other')).toEqual([])
    expectIndexIntact(db)
  })

  it('is dropped with the users projection on rebuild, and filled again by the replay', () => {
    const db = readModels()
    projector(db).register(1, { username: 'gamma', email: 'gamma@example.com', full_name: null })
    for (const table of usersProjection.tables) db.exec(`DROP TABLE IF EXISTS ${table}`)
    const left = db
      .prepare("SELECT name FROM sqlite_schema WHERE name LIKE 'users%' OR tbl_name LIKE 'users%'")
      .all()
    expect(left).toEqual([])
    db.exec(usersProjection.schema)
    expect(ids(createQueries(db).listUsers({ skip: 0, limit: 10, q: 'gamma' }))).toEqual([])
    const project = projector(db)
    project.register(1, { username: 'gamma', email: 'gamma@example.com', full_name: null })
    expect(ids(createQueries(db).listUsers({ skip: 0, limit: 10, q: 'gamma' }))).toEqual([1])
    // The recreated index gets its secure-delete option again before its first delete.
    project.register(2, { username: 'omega', email: 'omega@example.com', full_name: null })
    project.delete(2)
    expect(db.prepare("SELECT v FROM users_search_config WHERE k = 'secure-delete'").get()).toEqual({ v: 1 })
    expectIndexIntact(db)
  })

  const lookupIndexes = (db: DatabaseSync): string[] =>
    (
      db
        .prepare(
          "SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ('users_username', 'users_email') ORDER BY name",
        )
        .all() as { name: string }[]
    ).map((row) => row.name)

  it('a replay from the first event indexes in one pass at the end, changes and deletions included', () => {
    const db = readModels()
    const bulk = usersProjection.bulkLoad as { suspend: string; resume: string }
    db.exec(bulk.suspend)
    const project = projector(db)
    for (let id = 1; id <= 30; id++)
      project.register(id, { username: `bulk${id}`, email: `bulk${id}@example.com`, full_name: null })
    project.changeEmail(3, 'renamed@example.org')
    project.changeName(4, 'Zebedee Quinn')
    project.delete(5)
    const q = (text: string) => ids(createQueries(db).listUsers({ skip: 0, limit: 100, q: text }))
    // Suspended: not every row is indexed, so q scans and still answers right.
    expect(q('bulk2')).toEqual([2, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29])
    expect(lookupIndexes(db)).toEqual([])
    db.exec(bulk.resume)
    expect(lookupIndexes(db)).toEqual(['users_email', 'users_username'])
    expect(db.prepare('SELECT count(*) AS n FROM users_search_docsize').get()).toEqual({ n: 29 })
    expect(q('renamed')).toEqual([3])
    expect(q('zebedee')).toEqual([4])
    expect(q('bulk5@')).toEqual([])
    expectIndexIntact(db)
    // And the insert trigger is back: a user registered afterwards is indexed by it.
    project.register(31, { username: 'afterwards', email: 'afterwards@example.com', full_name: null })
    expect(q('afterwards')).toEqual([31])
    expect(db.prepare('SELECT count(*) AS n FROM users_search_docsize').get()).toEqual({ n: 30 })
    expectIndexIntact(db)
  })

  it('a replay that crashed before its end gets its username and email indexes back from the schema', () => {
    const db = readModels()
    db.exec((usersProjection.bulkLoad as { suspend: string }).suspend)
    expect(lookupIndexes(db)).toEqual([])
    db.exec(usersProjection.schema) // what the next start runs
    expect(lookupIndexes(db)).toEqual(['users_email', 'users_username'])
    const plan = db.prepare("EXPLAIN QUERY PLAN SELECT id FROM users WHERE username_lower = 'x'").all()
    expect(JSON.stringify(plan)).toContain('users_username')
  })

  it('a read-model file from before the index: opening writes nothing, q scans until the first event fills it', () => {
    const dir = tempDataDir()
    dirs.push(dir)
    const path = join(dir, 'read-models.db')
    const db = readModels(path)
    // As before this version: the users table without the index or its triggers.
    db.exec('DROP TABLE users_search')
    for (const t of ['users_search_insert', 'users_search_update', 'users_search_delete'])
      db.exec(`DROP TRIGGER ${t}`)
    insertAsBefore(db, 7, { username: 'delta', email: 'delta@example.com', full_name: 'Dee Elta' })
    insertAsBefore(db, 8, { username: 'epsilon', email: 'eps@example.com', full_name: null })
    insertAsBefore(db, 9, { username: 'zeta', email: 'zeta@example.com', full_name: null })
    db.exec(usersProjection.schema) // creates the index and its triggers: new tables, like any upgrade

    // Opened again by another process while the service holds the write lock: no write, no wait.
    const other = new DatabaseSync(path)
    open.push(other)
    db.exec('BEGIN IMMEDIATE')
    for (const p of projections) other.exec(p.schema)
    db.exec('COMMIT')

    const queries = createQueries(db)
    const q = (value: string) => ids(queries.listUsers({ skip: 0, limit: 10, q: value }))
    const indexed = () =>
      (db.prepare('SELECT count(*) AS n FROM users_search_docsize').get() as { n: number }).n
    expect(indexed()).toBe(0)
    expect(q('elta')).toEqual([7]) // by the scan
    expect(q('example')).toEqual([7, 8, 9])
    // The first event the projection applies fills it (here a deletion: the erased row is not indexed).
    usersProjection.apply(
      {
        stream_id: 'user-9',
        revision: 5,
        position: 10n,
        type: 'AccountDeleted',
        data: {},
        metadata: { occurred_at: '2026-11-25T12:00:00.000Z' },
      } as unknown as RecordedEvent,
      writer(db),
    )
    expect(indexed()).toBe(2)
    expectIndexIntact(db)
    expect(ids(createQueries(db).listUsers({ skip: 0, limit: 10, q: 'example' }))).toEqual([7, 8])
    expect(ids(createQueries(db).listUsers({ skip: 0, limit: 10, q: 'zeta' }))).toEqual([])
  })

  it('a read-model file from before the index: the first event the projection applies fills it', () => {
    const db = readModels()
    db.exec('DROP TABLE users_search')
    for (const t of ['users_search_insert', 'users_search_update', 'users_search_delete'])
      db.exec(`DROP TRIGGER ${t}`)
    insertAsBefore(db, 3, { username: 'theta', email: 'theta@example.com', full_name: 'Tee Heta' })
    db.exec(usersProjection.schema)
    // A login: it touches no indexed column, yet the projection builds the index first.
    usersProjection.apply(
      {
        stream_id: 'session-1',
        revision: 0,
        position: 10n,
        type: 'SessionStarted',
        data: { user_id: 3 },
        metadata: { occurred_at: '2026-11-25T12:00:00.000Z' },
      } as unknown as RecordedEvent,
      writer(db),
    )
    expect((db.prepare('SELECT count(*) AS n FROM users_search_docsize').get() as { n: number }).n).toBe(1)
    expectIndexIntact(db)
    expect(ids(createQueries(db).listUsers({ skip: 0, limit: 10, q: 'heta' }))).toEqual([3])
  })
})

describe('erasure', () => {
  it("removes an erased user's terms from the index, not just their row: nothing stays in the file", () => {
    const dir = tempDataDir()
    dirs.push(dir)
    const path = join(dir, 'read-models.db')
    const db = readModels(path)
    const project = projector(db)
    // The victim's text uses characters no neighbour has, so its trigrams are its own.
    const victim = { username: 'wyvqx~kz', email: 'qzxv~~erase@jkqw.example', full_name: 'Ǯǯxq Wyvern~Jq' }
    for (let id = 1; id <= 400; id++) {
      if (id === 200) project.register(id, victim)
      else
        project.register(id, {
          username: `neighbour${id}`,
          email: `n${id}@example.com`,
          full_name: id % 2 ? `Neighbour ${id}` : null,
        })
    }
    const fold = (s: string) => s.toLowerCase()
    const neighbourText = Array.from(
      { length: 400 },
      (_, i) => `neighbour${i + 1} n${i + 1}@example.com neighbour ${i + 1}`,
    ).join('\n')
    const own = new Set<string>()
    for (const value of [victim.username, victim.email, victim.full_name]) {
      const chars = [...fold(value)]
      for (let i = 0; i + 3 <= chars.length; i++) {
        const gram = chars.slice(i, i + 3).join('')
        if (!neighbourText.includes(gram)) own.add(gram)
      }
    }
    expect(own.size).toBeGreaterThan(20)
    const indexBytes = () =>
      Buffer.concat([
        ...(db.prepare('SELECT block FROM users_search_data').all() as { block: Uint8Array | null }[]).map(
          (r) => Buffer.from(r.block ?? new Uint8Array()),
        ),
        ...(db.prepare('SELECT term FROM users_search_idx').all() as { term: Uint8Array | null }[]).map((r) =>
          Buffer.from(r.term ?? new Uint8Array()),
        ),
      ])
    const traces = (bytes: Buffer) => [...own].filter((gram) => bytes.includes(Buffer.from(gram)))
    // In the whole file, only trigrams with a character nothing else has: 'era' or 'ver' are
    // also in the schema's text.
    const rare = [...own].filter((gram) => /[~ǯ]/.test(gram))
    const fileTraces = (bytes: Buffer) => rare.filter((gram) => bytes.includes(Buffer.from(gram)))
    // The search can fail: before the deletion some of the victim's own trigrams are in the index.
    expect(traces(indexBytes()).length).toBeGreaterThan(0)
    db.exec('PRAGMA wal_checkpoint(TRUNCATE)')
    expect(fileTraces(readFileSync(path)).length).toBeGreaterThan(0)

    project.delete(200)
    db.exec('PRAGMA wal_checkpoint(TRUNCATE)')
    expect(traces(indexBytes())).toEqual([])
    const file = readFileSync(path)
    expect(fileTraces(file)).toEqual([])
    for (const value of [victim.username, victim.email, victim.full_name, fold(victim.full_name)])
      expect(file.includes(Buffer.from(value)), value).toBe(false)
    db.exec("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, 'users_search', 'row')")
    const terms = new Set(
      (db.prepare('SELECT term FROM temp.vocab').all() as { term: string }[]).map((r) => r.term),
    )
    expect([...own].filter((gram) => terms.has(gram))).toEqual([])
    expectIndexIntact(db)
    // The neighbours are still found.
    expect(ids(createQueries(db).listUsers({ skip: 0, limit: 5, q: 'neighbour19' }))).toEqual([
      19, 190, 191, 192, 193,
    ])
  })
})
