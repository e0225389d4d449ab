import type { Event, TextFieldDeclarations } from './event.ts'

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

/** Every text field of every session event, personal or not. */
export const SESSION_EVENT_FIELDS = {
  SessionStarted: {
    amr: 'safe',
    refresh_token_hash: 'safe',
    expires_at: 'safe',
    ends_at: 'safe',
    ip_address: 'personal',
    user_agent: 'personal',
  },
  SessionRefreshed: { refresh_token_hash: 'safe', expires_at: 'safe', refreshed_at: 'safe' },
  SessionRevoked: { reason: 'safe' },
} as const satisfies TextFieldDeclarations<SessionEvent>
