/** Read-model rows as the contract's response shapes. */
import type { SessionRow, UserRow } from '../readstore/queries.ts'
import { isLockedRow, pendingEmailOf } from '../readstore/queries.ts'

export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@')
  if (at < 1) return '***'
  return `${email[0]}***${email.slice(at)}`
}

export function toUserResponse(user: UserRow, now: Date, options: { maskEmail?: boolean } = {}) {
  return {
    id: user.id,
    username: user.username,
    email: options.maskEmail ? maskEmail(user.email) : user.email,
    full_name: user.full_name,
    role: user.role,
    is_active: user.is_active === 1,
    is_locked: isLockedRow(user, now.getTime()),
    is_2fa_enabled: user.is_2fa_enabled === 1,
    created_at: user.created_at,
    email_verified: user.email_verified === 1,
    pending_email: maskedIf(options.maskEmail, pendingEmailOf(user, now.getTime())),
  }
}

const maskedIf = (mask: boolean | undefined, email: string | null): string | null =>
  email !== null && mask ? maskEmail(email) : email

export function toVendorResponse(user: UserRow) {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    company_name: user.company_name ?? '',
    is_active: user.is_active === 1,
    created_at: user.created_at,
  }
}

export function toSessionResponse(session: SessionRow, currentSessionId: number) {
  return {
    id: session.id,
    created_at: session.created_at,
    last_used_at: session.last_used_at,
    expires_at: session.expires_at,
    ip_address: session.ip_address,
    user_agent: session.user_agent,
    is_current: session.id === currentSessionId,
  }
}
