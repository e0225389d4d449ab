/** Rewrites stored events the way an attacker with write access to the SQLite file would. */
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { eventHash } from '../../src/eventstore/hash-chain.ts'

type EventRow = {
  position: number
  stream_id: string
  revision: number
  type: string
  data: string
  metadata: string
}

/**
 * Rewrites the first event of `type` in `stream` (directly in events.db, server stopped), by a
 * text replacement in its stored data. With `recompute`, also recomputes the hash of that event
 * and of every later event in the stream (keeping the prev_hash links) and the stream's head,
 * as someone with write access who knows the hash scheme would.
 */
export function rewriteStoredEvent(
  dataDir: string,
  stream: string,
  type: string,
  from: string,
  to: string,
  recompute: boolean,
): number {
  const db = new DatabaseSync(join(dataDir, 'events.db'))
  try {
    const rows = db
      .prepare(
        'SELECT position, stream_id, revision, type, data, metadata FROM events WHERE stream_id = ? ORDER BY revision',
      )
      .all(stream) as EventRow[]
    const target = rows.find((r) => r.type === type)
    if (!target) throw new Error(`no ${type} in ${stream}`)
    const rewritten = target.data.replace(from, to)
    if (rewritten === target.data) throw new Error(`${from} not found in ${stream}@${target.revision}`)
    const update = db.prepare('UPDATE events SET data = ?, metadata = ? WHERE position = ?')
    db.exec('BEGIN')
    let prev: string | null = null
    for (const row of rows) {
      if (row.revision < target.revision) continue
      const dataText = row.revision === target.revision ? rewritten : row.data
      const metadata = JSON.parse(row.metadata) as Record<string, string | number | null>
      if (recompute) {
        if (prev !== null) metadata.prev_hash = prev
        const { hash: _old, ...rest } = metadata
        metadata.hash = eventHash({
          stream_id: row.stream_id,
          revision: row.revision,
          type: row.type,
          data: JSON.parse(dataText),
          metadata: rest as unknown as Parameters<typeof eventHash>[0]['metadata'],
        })
        prev = metadata.hash
      }
      update.run(dataText, JSON.stringify(metadata), row.position)
    }
    if (recompute && prev !== null)
      db.prepare('UPDATE streams SET head_hash = ? WHERE stream_id = ?').run(prev, stream)
    db.exec('COMMIT')
    return target.revision
  } finally {
    db.close()
  }
}
