/**
 * Fields that identify a person, as the event declarations say. They are stored encrypted under
 * the account's data key, so destroying the key erases them while the events (and their hash
 * chain) stay.
 */
import { ACCOUNT_EVENT_FIELDS } from './account.events.ts'
import { SESSION_EVENT_FIELDS } from './session.events.ts'

type Declarations = Readonly<Record<string, Readonly<Record<string, 'personal' | 'safe'>>>>

function personalFieldsOf(declarations: Declarations): [string, readonly string[]][] {
  return Object.entries(declarations)
    .map(([type, fields]): [string, string[]] => [
      type,
      Object.keys(fields).filter((field) => fields[field] === 'personal'),
    ])
    .filter(([, personal]) => personal.length > 0)
}

/** Event type → its personal fields; types without any are absent. */
export const PERSONAL_FIELDS: ReadonlyMap<string, readonly string[]> = new Map([
  ...personalFieldsOf(ACCOUNT_EVENT_FIELDS),
  ...personalFieldsOf(SESSION_EVENT_FIELDS),
])

export const ERASED = '[erased]'
