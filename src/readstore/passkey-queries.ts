/** Reads of the passkeys read model (projections/passkeys.projection.ts). */
import type { DatabaseSync, StatementSync } from 'node:sqlite'

export type PasskeyRow = {
  user_id: number
  passkey_id: number
  credential_id: string
  name: string
  /** JSON array of transport hints. */
  transports: string
  device_type: string
  backed_up: number
  created_at: string
  last_used_at: string | null
}

export function createPasskeyQueries(db: DatabaseSync) {
  const statements = new Map<string, StatementSync>()
  const prepared = (sql: string): StatementSync => {
    let statement = statements.get(sql)
    if (!statement) {
      statement = db.prepare(sql)
      statements.set(sql, statement)
    }
    return statement
  }
  return {
    /** The account's passkeys, oldest first. */
    passkeysOf(userId: number): PasskeyRow[] {
      return prepared('SELECT * FROM passkeys WHERE user_id = ? ORDER BY passkey_id').all(
        userId,
      ) as PasskeyRow[]
    },
    passkey(userId: number, passkeyId: number): PasskeyRow | undefined {
      return prepared('SELECT * FROM passkeys WHERE user_id = ? AND passkey_id = ?').get(userId, passkeyId) as
        | PasskeyRow
        | undefined
    },
    /** Every registration of a credential id (more than one only if two accounts hold the same). */
    byCredentialId(credentialId: string): PasskeyRow[] {
      return prepared('SELECT * FROM passkeys WHERE credential_id = ? ORDER BY user_id LIMIT 10').all(
        credentialId,
      ) as PasskeyRow[]
    },
  }
}

export type PasskeyQueries = ReturnType<typeof createPasskeyQueries>
