// Rules a new password must meet (API.md "Account rules"); the message is shown to the user as is.
import { commonPasswords } from './common-passwords.ts'
import { DomainError } from './errors.ts'

export const passwordMinLength = 8
export const passwordMaxLength = 128

export type PasswordContext = { username?: string; email?: string }

export function passwordProblem(password: string, ctx: PasswordContext): string | null {
  const length = [...password].length
  if (length < passwordMinLength) return `Password must be at least ${passwordMinLength} characters`
  if (length > passwordMaxLength) return `Password must be at most ${passwordMaxLength} characters`
  const folded = password.toLowerCase()
  if (commonPasswords.has(folded)) return 'Password is too common'
  if (ctx.username && folded === ctx.username.toLowerCase()) return 'Password must not be the username'
  if (ctx.email && isEmailOrLocalPart(folded, ctx.email.toLowerCase())) {
    return 'Password must not be the email address'
  }
  return null
}

/** Refuses a new password that breaks a rule, with that rule's message. */
export function assertPasswordAllowed(password: string, ctx: PasswordContext): void {
  const problem = passwordProblem(password, ctx)
  if (problem) throw new DomainError('WEAK_PASSWORD', problem)
}

function isEmailOrLocalPart(folded: string, email: string): boolean {
  const at = email.lastIndexOf('@')
  return folded === email || (at > 0 && folded === email.slice(0, at))
}
