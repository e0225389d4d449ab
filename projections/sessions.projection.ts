import { accountOf, type Projection, projectionOf, sessionOf } from './projection.ts'

export const sessionsProjection: Projection = projectionOf({
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
  on: {
    SessionStarted(event, db) {
      const d = event.data
      const sessionId = sessionOf(event)
      const revoked = db.get<{ account_revision: number }>(
        'SELECT account_revision FROM session_revocations WHERE user_id = ?',
        d.user_id,
      )
      // Ids only, no personal data: kept after erasure so auditors can still find the history.
      db.run('INSERT OR IGNORE INTO session_owners (session_id, user_id) VALUES (?, ?)', sessionId, d.user_id)
      const coveredByRevocation = revoked !== undefined && d.account_revision < revoked.account_revision
      db.run(
        `INSERT OR IGNORE INTO sessions (id, user_id, amr, created_at, last_used_at, expires_at, ip_address,
           user_agent, account_revision, revoked_reason, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        sessionId,
        d.user_id,
        JSON.stringify(d.amr),
        event.metadata.occurred_at,
        event.metadata.occurred_at,
        d.expires_at,
        d.ip_address ?? null,
        d.user_agent ?? null,
        d.account_revision,
        coveredByRevocation ? 'account' : null,
        event.revision,
      )
    },
    SessionRefreshed(event, db) {
      db.run(
        'UPDATE sessions SET last_used_at = ?, expires_at = ?, revision = ? WHERE id = ? AND revision < ?',
        event.metadata.occurred_at,
        event.data.expires_at,
        event.revision,
        sessionOf(event),
        event.revision,
      )
    },
    SessionRevoked(event, db) {
      db.run(
        'UPDATE sessions SET revoked_reason = COALESCE(revoked_reason, ?), revision = ? WHERE id = ? AND revision < ?',
        event.data.reason,
        event.revision,
        sessionOf(event),
        event.revision,
      )
    },
    SessionsRevoked(event, db) {
      const userId = accountOf(event)
      db.run(
        `UPDATE sessions SET revoked_reason = ? WHERE user_id = ? AND revoked_reason IS NULL
           AND account_revision < ? AND id IS NOT ?`,
        event.data.reason,
        userId,
        event.revision,
        event.data.except_session_id ?? null,
      )
      db.run(
        `INSERT INTO session_revocations (user_id, account_revision) VALUES (?, ?)
           ON CONFLICT (user_id) DO UPDATE SET account_revision = excluded.account_revision`,
        userId,
        event.revision,
      )
    },
    AccountDeleted(event, db) {
      db.run('DELETE FROM sessions WHERE user_id = ?', accountOf(event))
    },
  },
})
