/** Every domain event, and the type names this version can read (the codec refuses others). */
import { ACCOUNT_EVENT_FIELDS, type AccountEvent } from './account.events.ts'
import { SESSION_EVENT_FIELDS, type SessionEvent } from './session.events.ts'

export type DomainEvent = AccountEvent | SessionEvent

export const DOMAIN_EVENT_TYPES: ReadonlySet<string> = new Set([
  ...Object.keys(ACCOUNT_EVENT_FIELDS),
  ...Object.keys(SESSION_EVENT_FIELDS),
])
