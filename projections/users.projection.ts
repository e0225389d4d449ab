import type { Projection } from './projection.ts'
import { str } from './projection.ts'

const FOREVER = '9999-12-31T23:59:59.999Z'

export const usersProjection: Projection = {
  name: 'users',
  tables: ['users', 'erased_users'],
  schema: `
    CREATE TABLE IF NOT EXISTS users (
      id INTEGER PRIMARY KEY,
      username TEXT NOT NULL,
      username_lower TEXT NOT NULL,
      email TEXT NOT NULL,
      email_lower TEXT NOT NULL,
      full_name TEXT,
      company_name TEXT,
      role TEXT NOT NULL,
      is_active INTEGER NOT NULL,
      locked_until TEXT,
      lock_reason TEXT,
      lock_note TEXT,
      failed_logins INTEGER NOT NULL DEFAULT 0,
      is_2fa_enabled INTEGER NOT NULL DEFAULT 0,
      created_at TEXT NOT NULL,
      last_login_at TEXT,
      revision INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS users_username ON users (username_lower);
    CREATE INDEX IF NOT EXISTS users_email ON users (email_lower);
    CREATE INDEX IF NOT EXISTS users_role ON users (role, id);
    CREATE TABLE IF NOT EXISTS erased_users (user_id INTEGER PRIMARY KEY);
  `,
  handles: new Set([
    'AccountRegistered',
    'LoginFailed',
    'FailedLoginsCleared',
    'AccountLocked',
    'AccountUnlocked',
    'AccountDeactivated',
    'AccountActivated',
    'RoleChanged',
    'EmailChanged',
    'FullNameChanged',
    'TotpEnabled',
    'TotpDisabled',
    'AccountDeleted',
    'SessionStarted',
  ]),
  apply(event, db) {
    const d = event.data
    if (event.type === 'SessionStarted') {
      db.run(
        'UPDATE users SET last_login_at = ? WHERE id = ?',
        event.metadata.occurred_at,
        d.user_id as number,
      )
      return
    }
    const id = Number(event.stream_id.slice('user-'.length))
    if (event.type === 'AccountRegistered') {
      const username = str(d.username) ?? ''
      const email = str(d.email) ?? ''
      db.run(
        `INSERT OR IGNORE INTO users (id, username, username_lower, email, email_lower, full_name, company_name,
           role, is_active, created_at, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
        id,
        username,
        username.toLowerCase(),
        email,
        email.toLowerCase(),
        str(d.full_name),
        str(d.company_name),
        d.role as string,
        event.metadata.occurred_at,
        event.revision,
      )
      return
    }
    const row = db.get<{ revision: number }>('SELECT revision FROM users WHERE id = ?', id)
    if (!row || row.revision >= event.revision) return
    const set = (assignments: string, ...params: (string | number | null)[]): void =>
      db.run(`UPDATE users SET ${assignments}, revision = ? WHERE id = ?`, ...params, event.revision, id)
    switch (event.type) {
      case 'LoginFailed':
        return set('failed_logins = failed_logins + 1')
      case 'FailedLoginsCleared':
        return set('failed_logins = 0')
      case 'AccountLocked':
        return set(
          'locked_until = ?, lock_reason = ?, lock_note = ?, failed_logins = 0',
          str(d.until) ?? FOREVER,
          d.reason as string,
          str(d.note),
        )
      case 'AccountUnlocked':
        return set('locked_until = NULL, lock_reason = NULL, lock_note = NULL, failed_logins = 0')
      case 'AccountDeactivated':
        return set('is_active = 0')
      case 'AccountActivated':
        return set('is_active = 1')
      case 'RoleChanged':
        return set('role = ?', d.role as string)
      case 'EmailChanged': {
        const email = str(d.email) ?? ''
        return set('email = ?, email_lower = ?', email, email.toLowerCase())
      }
      case 'FullNameChanged':
        return set('full_name = ?', str(d.full_name))
      case 'TotpEnabled':
        return set('is_2fa_enabled = 1')
      case 'TotpDisabled':
        return set('is_2fa_enabled = 0')
      case 'AccountDeleted':
        db.run('DELETE FROM users WHERE id = ?', id)
        // Committed with the checkpoint: at start-up every erasure listed here has its key destroyed.
        return db.run('INSERT OR IGNORE INTO erased_users (user_id) VALUES (?)', id)
    }
  },
}
