/**
 * What must hold after a crash: the state the acknowledgements promise (folded from the clients'
 * files), and the read models against a rebuild from the events (the audit CLI, and a table-by-table
 * comparison of two read-model files).
 */
import { spawn } from 'node:child_process'
import { DatabaseSync } from 'node:sqlite'
import type { Ack } from './client.ts'
import { ROOT } from './server.ts'

type ExpectedSession = {
  id: number
  userId: number
  refresh: string
  access: string
  revoked: boolean
  uncertain: boolean
}
type ExpectedUser = { id: number; username: string; password: string; locked: boolean; uncertain: boolean }

/** Folds the acknowledgements (each client's file in order) into what the server must hold. */
export function expectedState(lines: Ack[]): {
  users: Map<number, ExpectedUser>
  sessions: Map<number, ExpectedSession>
  duplicates: string[]
} {
  const users = new Map<number, ExpectedUser>()
  const sessions = new Map<number, ExpectedSession>()
  const duplicates: string[] = []
  for (const line of lines) {
    switch (line.op) {
      case 'register':
        if (users.has(line.user_id)) duplicates.push(`user id ${line.user_id} acknowledged twice`)
        users.set(line.user_id, {
          id: line.user_id,
          username: line.username,
          password: line.password,
          locked: false,
          uncertain: false,
        })
        break
      case 'login':
        if (sessions.has(line.session_id)) duplicates.push(`session id ${line.session_id} acknowledged twice`)
        sessions.set(line.session_id, {
          id: line.session_id,
          userId: line.user_id,
          refresh: line.refresh_token,
          access: line.access_token,
          revoked: false,
          uncertain: false,
        })
        break
      case 'refresh': {
        const s = sessions.get(line.session_id)
        if (s) {
          s.refresh = line.refresh_token
          s.access = line.access_token
        }
        break
      }
      case 'revoke':
      case 'reuse_revoked': {
        const s = sessions.get(line.session_id)
        if (s) s.revoked = true
        break
      }
      case 'lock':
      case 'unlock': {
        const u = users.get(line.user_id)
        if (u) u.locked = line.op === 'lock'
        if (line.op === 'lock')
          for (const s of sessions.values()) if (s.userId === line.user_id) s.revoked = true
        break
      }
      case 'uncertain': {
        if (line.session_id !== undefined) {
          const s = sessions.get(line.session_id)
          if (s) s.uncertain = true
        } else if (line.user_id !== undefined && (line.kind === 'lock' || line.kind === 'unlock')) {
          const u = users.get(line.user_id)
          if (u) u.uncertain = true
          for (const s of sessions.values()) if (s.userId === line.user_id) s.uncertain = true
        }
        break
      }
    }
  }
  return { users, sessions, duplicates }
}

/** Runs `node src/cli/audit.ts <args>` on a DATA_DIR. */
export async function runAuditCli(
  dataDir: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['src/cli/audit.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString('utf8')
  })
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString('utf8')
  })
  const code = await new Promise<number | null>((done) => child.once('exit', (c) => done(c)))
  return { code, stdout, stderr }
}

/**
 * Every table of two read-model files, row by row (the live one and a rebuild from the events).
 * Returns the differences (empty when equal) and how many rows were compared.
 */
export function compareReadModels(
  livePath: string,
  rebuiltPath: string,
): { differences: string[]; rows: number } {
  const live = new DatabaseSync(livePath, { readOnly: true })
  const rebuilt = new DatabaseSync(rebuiltPath, { readOnly: true })
  const differences: string[] = []
  let rows = 0
  try {
    // An FTS5 index's shadow tables hold it in a layout that depends on the order of writes
    // (segments, merges, a structure counter): its terms are compared instead, further down.
    const ftsOf = (db: DatabaseSync): string[] =>
      (
        db
          .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE % fts5%'",
          )
          .all() as { name: string }[]
      ).map((t) => t.name)
    const ftsTables = ftsOf(live)
    const shadows = new Set(
      ftsTables.flatMap((t) => ['data', 'idx', 'docsize', 'config', 'content'].map((s) => `${t}_${s}`)),
    )
    const tablesOf = (db: DatabaseSync): string[] =>
      (
        db
          .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
          )
          .all() as { name: string }[]
      )
        .map((t) => t.name)
        .filter((name) => !shadows.has(name))
    for (const table of ftsTables) {
      const terms = (db: DatabaseSync): string[] => {
        db.exec(`CREATE VIRTUAL TABLE temp.${table}_terms USING fts5vocab(main, '${table}', 'instance')`)
        return db
          .prepare(`SELECT term, doc, col, offset FROM temp.${table}_terms ORDER BY doc, col, offset`)
          .all()
          .map((r) => JSON.stringify(r))
      }
      const a = terms(live)
      const b = ftsOf(rebuilt).includes(table) ? terms(rebuilt) : []
      rows += a.length
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        const at = a.findIndex((r, i) => r !== b[i])
        differences.push(
          `${table} (full-text index): ${a.length} live terms, ${b.length} rebuilt; first difference: ${a[at] ?? '-'} vs ${b[at] ?? '-'}`,
        )
      }
    }
    const liveTables = tablesOf(live)
    const rebuiltTables = tablesOf(rebuilt)
    if (JSON.stringify(liveTables) !== JSON.stringify(rebuiltTables)) {
      differences.push(`tables differ: live ${liveTables.join(',')} vs rebuilt ${rebuiltTables.join(',')}`)
    }
    for (const table of ['users', 'sessions', 'activity']) {
      if (!liveTables.includes(table)) differences.push(`table ${table} missing from the live read models`)
    }
    for (const table of liveTables.filter((t) => rebuiltTables.includes(t))) {
      const columns = (live.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map(
        (c) => c.name,
      )
      const order = columns.map((_, i) => i + 1).join(', ')
      const a = live
        .prepare(`SELECT * FROM ${table} ORDER BY ${order}`)
        .all()
        .map((r) => JSON.stringify(r))
      const b = rebuilt
        .prepare(`SELECT * FROM ${table} ORDER BY ${order}`)
        .all()
        .map((r) => JSON.stringify(r))
      rows += a.length
      if (a.length !== b.length) differences.push(`${table}: ${a.length} live rows, ${b.length} rebuilt rows`)
      const inB = new Set(b)
      const inA = new Set(a)
      const onlyLive = a.filter((r) => !inB.has(r))
      const onlyRebuilt = b.filter((r) => !inA.has(r))
      for (const r of onlyLive.slice(0, 3)) differences.push(`${table}: only live: ${r}`)
      for (const r of onlyRebuilt.slice(0, 3)) differences.push(`${table}: only rebuilt: ${r}`)
      if (onlyLive.length + onlyRebuilt.length > 6)
        differences.push(`${table}: ${onlyLive.length} rows only live, ${onlyRebuilt.length} only rebuilt`)
    }
  } finally {
    live.close()
    rebuilt.close()
  }
  return { differences, rows }
}
