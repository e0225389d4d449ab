import type { Event } from './event.ts'

export type SessionStarted = Event<
  'SessionStarted',
  {
    session_id: number
    user_id: number
    /** The account stream's revision when the session began: later account-wide revocations cover it. */
    account_revision: number
    amr: string[]
    refresh_token_hash: string
    expires_at: string
    /** The absolute end of the session, whatever its refreshes (absent on sessions from before it existed). */
    ends_at?: string
    ip_address: string | null
    user_agent: string | null
  }
>
export type SessionRefreshed = Event<
  'SessionRefreshed',
  {
    user_id: number
    refresh_token_hash: string
    expires_at: string
    /** When the rotation happened; a token rotated out moments ago may be presented once more. */
    refreshed_at?: string
    /** Set when the presented token was rotated out within the reuse grace period (two tabs). */
    within_grace?: true
  }
>
export type SessionRevoked = Event<
  'SessionRevoked',
  { user_id: number; reason: 'user' | 'refresh_token_reuse' }
>

export type SessionEvent = SessionStarted | SessionRefreshed | SessionRevoked

export const SESSION_EVENT_TYPES: ReadonlySet<string> = new Set<SessionEvent['type']>([
  'SessionStarted',
  'SessionRefreshed',
  'SessionRevoked',
])
