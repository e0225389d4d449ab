import type { Projection } from './projection.ts'
import { str } from './projection.ts'

export const sessionsProjection: Projection = {
  name: 'sessions',
  tables: ['sessions', 'session_revocations', 'session_owners'],
  schema: `
    CREATE TABLE IF NOT EXISTS sessions (
      id INTEGER PRIMARY KEY,
      user_id INTEGER NOT NULL,
      amr TEXT NOT NULL,
      created_at TEXT NOT NULL,
      last_used_at TEXT NOT NULL,
      expires_at TEXT NOT NULL,
      ip_address TEXT,
      user_agent TEXT,
      account_revision INTEGER NOT NULL,
      revoked_reason TEXT,
      revision INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id, id);
    CREATE TABLE IF NOT EXISTS session_owners (
      session_id INTEGER PRIMARY KEY,
      user_id INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS session_owners_user ON session_owners (user_id);
    CREATE TABLE IF NOT EXISTS session_revocations (
      user_id INTEGER PRIMARY KEY,
      account_revision INTEGER NOT NULL
    );
  `,
  handles: new Set([
    'SessionStarted',
    'SessionRefreshed',
    'SessionRevoked',
    'SessionsRevoked',
    'AccountDeleted',
  ]),
  apply(event, db) {
    const d = event.data
    const sessionId = Number(event.stream_id.slice('session-'.length))
    switch (event.type) {
      case 'SessionStarted': {
        const revoked = db.get<{ account_revision: number }>(
          'SELECT account_revision FROM session_revocations WHERE user_id = ?',
          d.user_id as number,
        )
        // Ids only, no personal data: kept after erasure so auditors can still find the history.
        db.run(
          'INSERT OR IGNORE INTO session_owners (session_id, user_id) VALUES (?, ?)',
          sessionId,
          d.user_id as number,
        )
        const coveredByRevocation =
          revoked !== undefined && (d.account_revision as number) < revoked.account_revision
        db.run(
          `INSERT OR IGNORE INTO sessions (id, user_id, amr, created_at, last_used_at, expires_at, ip_address,
             user_agent, account_revision, revoked_reason, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          sessionId,
          d.user_id as number,
          JSON.stringify(d.amr),
          event.metadata.occurred_at,
          event.metadata.occurred_at,
          d.expires_at as string,
          str(d.ip_address),
          str(d.user_agent),
          d.account_revision as number,
          coveredByRevocation ? 'account' : null,
          event.revision,
        )
        return
      }
      case 'SessionRefreshed':
        db.run(
          'UPDATE sessions SET last_used_at = ?, expires_at = ?, revision = ? WHERE id = ? AND revision < ?',
          event.metadata.occurred_at,
          d.expires_at as string,
          event.revision,
          sessionId,
          event.revision,
        )
        return
      case 'SessionRevoked':
        db.run(
          'UPDATE sessions SET revoked_reason = COALESCE(revoked_reason, ?), revision = ? WHERE id = ? AND revision < ?',
          d.reason as string,
          event.revision,
          sessionId,
          event.revision,
        )
        return
      case 'SessionsRevoked': {
        const userId = Number(event.stream_id.slice('user-'.length))
        db.run(
          `UPDATE sessions SET revoked_reason = ? WHERE user_id = ? AND revoked_reason IS NULL
             AND account_revision < ? AND id IS NOT ?`,
          d.reason as string,
          userId,
          event.revision,
          (d.except_session_id as number | null) ?? null,
        )
        db.run(
          `INSERT INTO session_revocations (user_id, account_revision) VALUES (?, ?)
             ON CONFLICT (user_id) DO UPDATE SET account_revision = excluded.account_revision`,
          userId,
          event.revision,
        )
        return
      }
      case 'AccountDeleted': {
        const userId = Number(event.stream_id.slice('user-'.length))
        db.run('DELETE FROM sessions WHERE user_id = ?', userId)
        return
      }
    }
  },
}
