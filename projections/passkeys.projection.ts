/**
 * Each account's passkeys as `GET /auth/passkeys` lists them, and the index from a credential id
 * to its account that a login without a username needs. The account stream stays the authority:
 * a login found here is checked again against the account's own state.
 */
import { accountOf, type Projection, projectionOf } from './projection.ts'

export const passkeysProjection: Projection = projectionOf({
  name: 'passkeys',
  tables: ['passkeys'],
  schema: `
    CREATE TABLE IF NOT EXISTS passkeys (
      user_id INTEGER NOT NULL,
      passkey_id INTEGER NOT NULL,
      credential_id TEXT NOT NULL,
      name TEXT NOT NULL,
      transports TEXT NOT NULL,
      device_type TEXT NOT NULL,
      backed_up INTEGER NOT NULL,
      created_at TEXT NOT NULL,
      last_used_at TEXT,
      PRIMARY KEY (user_id, passkey_id)
    );
    CREATE INDEX IF NOT EXISTS passkeys_credential ON passkeys (credential_id);
  `,
  on: {
    PasskeyRegistered(event, db) {
      const d = event.data
      db.run(
        `INSERT OR IGNORE INTO passkeys (user_id, passkey_id, credential_id, name, transports, device_type,
           backed_up, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        accountOf(event),
        d.passkey_id,
        d.credential_id,
        d.name,
        JSON.stringify(d.transports),
        d.device_type,
        d.backed_up ? 1 : 0,
        event.metadata.occurred_at,
      )
    },
    PasskeyRenamed: (event, db) =>
      db.run(
        'UPDATE passkeys SET name = ? WHERE user_id = ? AND passkey_id = ?',
        event.data.name,
        accountOf(event),
        event.data.passkey_id,
      ),
    PasskeyUsed: (event, db) =>
      db.run(
        'UPDATE passkeys SET last_used_at = ?, backed_up = ? WHERE user_id = ? AND passkey_id = ?',
        event.metadata.occurred_at,
        event.data.backed_up ? 1 : 0,
        accountOf(event),
        event.data.passkey_id,
      ),
    PasskeyRemoved: (event, db) =>
      db.run(
        'DELETE FROM passkeys WHERE user_id = ? AND passkey_id = ?',
        accountOf(event),
        event.data.passkey_id,
      ),
    AccountDeleted: (event, db) => db.run('DELETE FROM passkeys WHERE user_id = ?', accountOf(event)),
  },
})
