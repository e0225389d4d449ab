import type { RecordedEvent } from '../src/eventstore/event-store.ts'
import type { Projection } from './projection.ts'
import { str } from './projection.ts'

/** Each user's own security history, as `/auth/activity` shows it. */
function activityType(event: RecordedEvent): string | null {
  const d = event.data
  switch (event.type) {
    case 'SessionStarted':
      return 'login'
    case 'LoginFailed':
      return 'login_failed'
    case 'TotpEnabled':
      return '2fa_enabled'
    case 'TotpDisabled':
      return '2fa_disabled'
    case 'RecoveryCodeUsed':
      return 'recovery_code_used'
    case 'PasswordChanged':
      return d.reason === 'rehash' ? null : d.reason === 'reset' ? 'password_reset' : 'password_changed'
    case 'PasswordResetRequested':
      return 'password_reset_requested'
    case 'EmailChanged':
      return 'email_changed'
    case 'SessionRevoked':
      return d.reason === 'refresh_token_reuse' ? 'refresh_token_reuse' : 'session_revoked'
    case 'SessionsRevoked':
      return 'sessions_revoked'
    case 'AccountLocked':
      return 'locked'
    case 'AccountUnlocked':
      return 'unlocked'
    case 'AccountDeactivated':
      return 'deactivated'
    case 'AccountActivated':
      return 'activated'
    case 'RoleChanged':
      return 'role_changed'
    default:
      return null
  }
}

export const activityProjection: Projection = {
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
  handles: new Set([
    'SessionStarted',
    'LoginFailed',
    'TotpEnabled',
    'TotpDisabled',
    'RecoveryCodeUsed',
    'PasswordChanged',
    'PasswordResetRequested',
    'EmailChanged',
    'SessionRevoked',
    'SessionsRevoked',
    'AccountLocked',
    'AccountUnlocked',
    'AccountDeactivated',
    'AccountActivated',
    'RoleChanged',
    'AccountDeleted',
  ]),
  apply(event, db) {
    const isSessionEvent = event.stream_id.startsWith('session-')
    const userId = isSessionEvent
      ? (event.data.user_id as number)
      : Number(event.stream_id.slice('user-'.length))
    if (event.type === 'AccountDeleted') {
      db.run('DELETE FROM activity WHERE user_id = ?', userId)
      return
    }
    const type = activityType(event)
    if (!type) return
    db.run(
      `INSERT OR IGNORE INTO activity (position, user_id, type, occurred_at, ip_address, user_agent, session_id)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      event.position,
      userId,
      type,
      event.metadata.occurred_at,
      str(event.data.ip_address),
      str(event.data.user_agent),
      isSessionEvent ? Number(event.stream_id.slice('session-'.length)) : null,
    )
  },
}
