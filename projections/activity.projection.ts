/** Each user's own security history, as `/auth/activity` shows it. */
import type { AccountEvent } from '../domain/account.events.ts'
import type { DomainEvent } from '../domain/events.ts'
import type { Recorded } from '../src/eventstore/event-store.ts'
import { accountOf, type Projection, projectionOf, type ReadModelWriter, sessionOf } from './projection.ts'

type Client = { ip_address: string | null; user_agent: string | null }

function insert(
  db: ReadModelWriter,
  event: Recorded<DomainEvent>,
  type: string,
  userId: number,
  sessionId: number | null,
  client?: Client,
): void {
  db.run(
    `INSERT OR IGNORE INTO activity (position, user_id, type, occurred_at, ip_address, user_agent, session_id)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    event.position,
    userId,
    type,
    event.metadata.occurred_at,
    client?.ip_address ?? null,
    client?.user_agent ?? null,
    sessionId,
  )
}

const accountActivity =
  (type: string) =>
  (event: Recorded<AccountEvent>, db: ReadModelWriter): void =>
    insert(db, event, type, accountOf(event), null)

export const activityProjection: Projection = projectionOf({
  name: 'activity',
  tables: ['activity'],
  schema: `
    CREATE TABLE IF NOT EXISTS activity (
      position INTEGER PRIMARY KEY,
      user_id INTEGER NOT NULL,
      type TEXT NOT NULL,
      occurred_at TEXT NOT NULL,
      ip_address TEXT,
      user_agent TEXT,
      session_id INTEGER
    );
    CREATE INDEX IF NOT EXISTS activity_user ON activity (user_id, position);
  `,
  on: {
    // A session a passkey started (amr `hwk` or `swk`) is a passkey login.
    SessionStarted: (event, db) =>
      insert(
        db,
        event,
        event.data.amr.some((m) => m === 'hwk' || m === 'swk') ? 'passkey_login' : 'login',
        event.data.user_id,
        sessionOf(event),
        event.data,
      ),
    LoginFailed: (event, db) => insert(db, event, 'login_failed', accountOf(event), null, event.data),
    TotpEnabled: accountActivity('2fa_enabled'),
    TotpDisabled: accountActivity('2fa_disabled'),
    RecoveryCodeUsed: accountActivity('recovery_code_used'),
    PasswordChanged(event, db) {
      if (event.data.reason === 'rehash') return
      const type = event.data.reason === 'reset' ? 'password_reset' : 'password_changed'
      insert(db, event, type, accountOf(event), null)
    },
    PasswordResetRequested: accountActivity('password_reset_requested'),
    EmailChanged: accountActivity('email_changed'),
    EmailVerified: accountActivity('email_verified'),
    SessionRevoked(event, db) {
      const type = event.data.reason === 'refresh_token_reuse' ? 'refresh_token_reuse' : 'session_revoked'
      insert(db, event, type, event.data.user_id, sessionOf(event))
    },
    SessionsRevoked: accountActivity('sessions_revoked'),
    AccountLocked: accountActivity('locked'),
    AccountUnlocked: accountActivity('unlocked'),
    AccountDeactivated: accountActivity('deactivated'),
    AccountActivated: accountActivity('activated'),
    RoleChanged: accountActivity('role_changed'),
    PasskeyRegistered: accountActivity('passkey_added'),
    PasskeyRemoved: accountActivity('passkey_removed'),
    PasskeySignCountRegressed: (event, db) =>
      insert(db, event, 'passkey_sign_count_rejected', accountOf(event), null, event.data),
    PasswordRemoved: accountActivity('password_removed'),
    AccountDeleted: (event, db) => db.run('DELETE FROM activity WHERE user_id = ?', accountOf(event)),
  },
})
