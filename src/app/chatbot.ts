/**
 * The account help assistant behind `POST /chatbot/interact`: a keyword intent recogniser, a
 * snapshot of the caller's own account read from the read models, and a rule-based assistant
 * that answers from that snapshot. Only the recognised intent is ever recorded, never the text.
 */
import { DomainError } from '../../domain/errors.ts'
import type { Role } from '../../domain/event.ts'
import {
  ACCOUNT_LOCK_THRESHOLD,
  automaticLockMinutes,
  MAX_CONSECUTIVE_FAILURES,
} from '../../domain/lockout.ts'
import { endpoint, ROUTES } from '../api/routes.ts'
import {
  type ActivityRow,
  type LockReason,
  pendingEmailOf,
  type Queries,
  type UserLock,
  type UserRow,
  userLock,
} from '../readstore/queries.ts'
import { RESEND_INTERVAL_SECONDS } from './email-verification.ts'
import { RESET_TOKEN_MINUTES } from './password-reset.ts'

export const INTENTS = [
  'enable_2fa',
  'disable_2fa',
  'reset_password',
  'list_sessions',
  'revoke_session',
  'why_locked',
  'verify_email',
  'change_email',
  'delete_account',
  'greeting',
  'unknown',
] as const
export type Intent = (typeof INTENTS)[number]

export type { LockReason }

export type AccountSnapshot = {
  username: string
  role: Role
  is_2fa_enabled: boolean
  /** `until` is null for a lock that lasts until an administrator lifts it. */
  lock: UserLock
  active_sessions: number
  newest_session: { created_at: string; ip_address: string | null; user_agent: string | null } | null
  last_login_at: string | null
  /** `login_failed` entries of the user's activity within the last RECENT_FAILURE_DAYS days. */
  recent_failed_logins: number
  email_verified: boolean
  /** A change of address awaiting confirmation (masked, `a***@example.com`), or null. */
  pending_email: string | null
  /** The service's REQUIRE_VERIFIED_EMAIL: sign-in needs a verified address, changes wait for confirmation. */
  verified_email_required: boolean
}

export type AssistantReply = { reply: string; suggested_endpoints: string[] }

// The seam for a language-model backend: anything that turns intent + snapshot into a reply.
export interface ChatAssistant {
  reply(intent: Intent, snapshot: AccountSnapshot, message: string): AssistantReply
}

export type ChatbotAnswer = { reply: string; intent: Intent; suggested_endpoints: string[] }

// --- Intent recognition -------------------------------------------------------------------

/** Lower case, apostrophes dropped ("can't" → "cant"), every other non-alphanumeric a space. */
export function normalise(message: string): string {
  return message
    .normalize('NFKC')
    .toLowerCase()
    .replace(/['’`]/g, '')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim()
}

const TWO_FACTOR =
  /\b(2 ?fa|two ?factor|2 ?factor|mfa|multi ?factor|totp|otp|authenticator|(two|2) ?step|one ?time (code|password)|recovery codes?)\b/
const TURN_OFF =
  /\b(disable|disabling|turn(ing)? (it )?off|switch(ing)? (it )?off|deactivate|remove|delete|stop|get rid of|unenrol|unenroll|opt out)\b/
const LOCK_WORDS = /\b(locked|lock|lockout|lock out|blocked|suspended|frozen|423)\b/
const CANT_LOG_IN =
  /\b(cant|cannot|can not|unable to|not able to|wont let me) (log ?in|sign ?in|get in|access)\b/
const SESSION_NOUN =
  /\b(sessions?|devices?|computers?|laptops?|phones?|browsers?|tablets?|everywhere|(other|another) (place|location)s?|(logged|signed) ?in|(active|recent|last) (log ?ins?|sign ?ins?))\b/
const SIGN_OUT = /\b(log ?(me )?out|sign ?(me )?out|kick (\w+ )?(out|off)|force (log|sign) ?out)\b/
const END_VERB = /\b(revoke|kick|terminate|end|kill|remove|disconnect|close|invalidate|stop|delete)\b/
const WHO_WHERE =
  /\b(who (is|else|has)|where (am i|is my account)|when did i (last )?(log|sign) ?in|last (log ?in|sign ?in))\b/
const PASSWORD = /\b(password|passwords|passcode|passphrase|pwd)\b/
const ACCOUNT_DELETION =
  /\b((delete|deleting|remove|erase|close|closing|cancel|terminate|deactivate|destroy) (my |this |the )?(account|profile|user|data|personal data)|(delete|erase|forget) me|right to (be forgotten|erasure)|gdpr)\b/
const EMAIL = /\b(e ?mail|email address|mail address)\b/
const EMAIL_CHANGE =
  /\b(change|changing|update|updating|new|edit|modify|replace|wrong|different|set|switch|move)\b/
const VERIFY =
  /\b(verify|verified|verifying|verification|unverified|confirm|confirmed|confirming|confirmation|resend|validate|validated|validation)\b/
const VERIFICATION_MAIL = /\b(verification|confirmation) (e ?mail|mail|link|token)\b/
const GREETING =
  /^(hi|hello|hey|hiya|howdy|hallo|hola|yo|greetings|good (morning|afternoon|evening|day)|thanks|thank you|help|what can you do)\b/

type Rule = { intent: Intent; matches(text: string): boolean }

/** First match wins: the order settles overlaps ("remove 2FA from my account" is no deletion). */
const RULES: readonly Rule[] = [
  { intent: 'why_locked', matches: (t) => LOCK_WORDS.test(t) },
  { intent: 'disable_2fa', matches: (t) => TWO_FACTOR.test(t) && TURN_OFF.test(t) },
  { intent: 'enable_2fa', matches: (t) => TWO_FACTOR.test(t) },
  { intent: 'reset_password', matches: (t) => PASSWORD.test(t) },
  {
    intent: 'revoke_session',
    matches: (t) => SIGN_OUT.test(t) || (SESSION_NOUN.test(t) && END_VERB.test(t)),
  },
  { intent: 'list_sessions', matches: (t) => SESSION_NOUN.test(t) || WHO_WHERE.test(t) },
  { intent: 'delete_account', matches: (t) => ACCOUNT_DELETION.test(t) },
  {
    intent: 'verify_email',
    matches: (t) => (EMAIL.test(t) && VERIFY.test(t)) || VERIFICATION_MAIL.test(t),
  },
  { intent: 'change_email', matches: (t) => EMAIL.test(t) && EMAIL_CHANGE.test(t) },
  { intent: 'why_locked', matches: (t) => CANT_LOG_IN.test(t) },
  { intent: 'greeting', matches: (t) => GREETING.test(t) },
]

export function recogniseIntent(message: string): Intent {
  const text = normalise(message)
  return RULES.find((rule) => rule.matches(text))?.intent ?? 'unknown'
}

// --- Account snapshot ---------------------------------------------------------------------

export const RECENT_FAILURE_DAYS = 7
const ACTIVITY_WINDOW = 200

function recentFailures(activity: readonly ActivityRow[], now: Date): number {
  const since = now.getTime() - RECENT_FAILURE_DAYS * 24 * 60 * 60 * 1000
  return activity.filter((a) => a.type === 'login_failed' && Date.parse(a.occurred_at) >= since).length
}

/** `a***@example.com`: the chatbot names an address only masked. */
function masked(email: string): string {
  const at = email.lastIndexOf('@')
  return at < 1 ? '***' : `${email[0]}***${email.slice(at)}`
}

export function snapshotOf(
  queries: Queries,
  userId: number,
  now: Date,
  policy: { verified_email_required?: boolean } = {},
): AccountSnapshot {
  const user = queries.userById(userId)
  if (!user) throw new DomainError('ACCOUNT_NOT_FOUND', 'User not found')
  const sessions = queries.activeSessions(userId, now)
  const newest = sessions.reduce<(typeof sessions)[number] | undefined>(
    (latest, s) => (latest === undefined || s.created_at > latest.created_at ? s : latest),
    undefined,
  )
  return {
    username: user.username,
    role: user.role,
    is_2fa_enabled: user.is_2fa_enabled === 1,
    lock: userLock(user, now.getTime()),
    active_sessions: sessions.length,
    newest_session: newest
      ? { created_at: newest.created_at, ip_address: newest.ip_address, user_agent: newest.user_agent }
      : null,
    last_login_at: user.last_login_at,
    recent_failed_logins: recentFailures(queries.activity(userId, ACTIVITY_WINDOW), now),
    email_verified: user.email_verified === 1,
    pending_email: pendingOf(user, now),
    verified_email_required: policy.verified_email_required === true,
  }
}

function pendingOf(user: UserRow, now: Date): string | null {
  const pending = pendingEmailOf(user, now.getTime())
  return pending === null ? null : masked(pending)
}

// --- Rule-based assistant -----------------------------------------------------------------

/** `GET /auth/sessions` and the like, from the routes the routers' OpenAPI meta declares. */
export const ENDPOINTS = Object.fromEntries(
  Object.entries(ROUTES).map(([name, route]) => [name, endpoint(route)]),
) as Record<keyof typeof ROUTES, string>

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`

const NUMBER_WORDS = (
  'zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen ' +
  'sixteen seventeen eighteen nineteen twenty'
).split(' ')
/** Up to twenty in words, as prose writes them; larger numbers in digits. */
const inWords = (n: number): string => NUMBER_WORDS[n] ?? String(n)
const capitalised = (text: string): string => `${text[0].toUpperCase()}${text.slice(1)}`

/** The lockout policy of domain/lockout.ts, as a user reads it. */
function lockoutPolicy(): string {
  const first = automaticLockMinutes(0)
  const growth = automaticLockMinutes(1) / first
  const longer = growth === 2 ? 'twice as long' : `${growth} times as long`
  return `${capitalised(inWords(MAX_CONSECUTIVE_FAILURES))} failed sign-ins in a row from one device pause sign-ins from that device for ${plural(first, 'minute')} (each later pause lasts ${longer}); ${inWords(ACCOUNT_LOCK_THRESHOLD)} in a row from anywhere lock the account for new sign-ins, while sessions already open keep working. A successful sign-in resets the count.`
}

function describeSessions(s: AccountSnapshot): string {
  if (s.active_sessions === 0 || s.newest_session === null) return 'you have no active sessions'
  const { created_at, ip_address, user_agent } = s.newest_session
  const from = `${ip_address ?? 'an unknown address'} (${user_agent ?? 'unknown client'})`
  const count = plural(s.active_sessions, 'active session')
  return s.active_sessions === 1
    ? `you have 1 active session, from ${from} since ${created_at}`
    : `you have ${count}, the newest from ${from} since ${created_at}`
}

function twoFactorStatus(s: AccountSnapshot): string {
  return s.is_2fa_enabled ? '2FA is on' : '2FA is off'
}

function lockStatus(s: AccountSnapshot): string {
  if (!s.lock.is_locked) return 'Your account is not locked.'
  const why =
    s.lock.reason === 'too_many_failures' ? 'after too many failed sign-in attempts' : 'by an administrator'
  const until = s.lock.until === null ? 'until an administrator unlocks it' : `until ${s.lock.until}`
  return `Your account is locked ${why}, ${until}; sign-ins answer 423 until then.`
}

function failuresNote(s: AccountSnapshot): string {
  if (s.recent_failed_logins === 0) return ''
  const attempts = plural(s.recent_failed_logins, 'failed sign-in attempt')
  return ` There ${s.recent_failed_logins === 1 ? 'was' : 'were'} ${attempts} in the last ${RECENT_FAILURE_DAYS} days; ${ENDPOINTS.activity} shows when and from where.`
}

const CAPABILITIES =
  'I can help you turn two-factor authentication on or off, see or sign out your sessions, reset or change your password, change or verify your email, explain an account lock, or explain how accounts are deleted.'

/** Where verification stands: a change awaiting confirmation, or whether the address is verified. */
function emailStatus(s: AccountSnapshot): string {
  if (s.pending_email !== null)
    return `A change of your email address to ${s.pending_email} is waiting for confirmation: it takes effect when the token mailed to that address is used with ${ENDPOINTS.verifyEmail}.`
  return s.email_verified
    ? 'Your email address is verified.'
    : `Your email address is not verified yet: use the token mailed to it with ${ENDPOINTS.verifyEmail}.${s.verified_email_required ? ' Until then, signing in is refused.' : ''}`
}

export const ruleBasedAssistant: ChatAssistant = {
  reply(intent, s) {
    switch (intent) {
      case 'enable_2fa':
        if (s.is_2fa_enabled) {
          return {
            reply: `2FA is already on for ${s.username}; ${describeSessions(s)}. ${ENDPOINTS.test2fa} tells you whether this session passed 2FA.`,
            suggested_endpoints: [ENDPOINTS.test2fa, ENDPOINTS.disable2fa],
          }
        }
        return {
          reply: `2FA is off for ${s.username}. To turn it on, call ${ENDPOINTS.generate2fa} and add the secret (or QR code) to your authenticator app, then confirm with ${ENDPOINTS.enable2fa} and a current 6-digit code. You get 10 single-use recovery codes, shown once: store them safely.`,
          suggested_endpoints: [ENDPOINTS.generate2fa, ENDPOINTS.enable2fa],
        }
      case 'disable_2fa':
        if (!s.is_2fa_enabled) {
          return {
            reply: `2FA is already off for ${s.username}, so there is nothing to turn off. To turn it on, start with ${ENDPOINTS.generate2fa}.`,
            suggested_endpoints: [ENDPOINTS.generate2fa, ENDPOINTS.enable2fa],
          }
        }
        return {
          reply: `2FA is on. To turn it off, call ${ENDPOINTS.disable2fa} from a session that signed in with a 2FA code (otherwise it answers 403); ${ENDPOINTS.test2fa} tells you whether this session did.`,
          suggested_endpoints: [ENDPOINTS.disable2fa, ENDPOINTS.test2fa],
        }
      case 'reset_password':
        return {
          reply: `If you forgot your password, ${ENDPOINTS.resetRequest} with your email sends a single-use reset link valid for ${RESET_TOKEN_MINUTES} minutes; ${ENDPOINTS.reset} with that token sets the new password and signs out all your sessions. If you know your current password, ${ENDPOINTS.profile} with \`password\` and \`current_password\` changes it and signs out your other sessions.`,
          suggested_endpoints: [ENDPOINTS.resetRequest, ENDPOINTS.reset, ENDPOINTS.profile],
        }
      case 'list_sessions': {
        const lastLogin = s.last_login_at ? ` Your last sign-in was at ${s.last_login_at}.` : ''
        return {
          reply: `${twoFactorStatus(s)}; ${describeSessions(s)}.${lastLogin} ${ENDPOINTS.sessions} lists them all; ${ENDPOINTS.revokeSession} signs one out.`,
          suggested_endpoints: [ENDPOINTS.sessions, ENDPOINTS.revokeSession],
        }
      }
      case 'revoke_session': {
        const sessions = describeSessions(s)
        return {
          reply: `${sessions[0].toUpperCase()}${sessions.slice(1)}. Find the session's id with ${ENDPOINTS.sessions}, then ${ENDPOINTS.revokeSession} signs it out at once: its access and refresh tokens stop working. Changing your password (${ENDPOINTS.profile}) signs out all your other sessions.`,
          suggested_endpoints: [ENDPOINTS.sessions, ENDPOINTS.revokeSession, ENDPOINTS.profile],
        }
      }
      case 'why_locked':
        if (s.lock.is_locked) {
          return s.lock.reason === 'too_many_failures'
            ? {
                reply: `${lockStatus(s)} Wait until then; if you forgot your password, ${ENDPOINTS.resetRequest} sends a reset link.${failuresNote(s)}`,
                suggested_endpoints: [ENDPOINTS.resetRequest, ENDPOINTS.activity],
              }
            : {
                reply: `${lockStatus(s)} Only an administrator can lift it; please contact one.`,
                suggested_endpoints: [],
              }
        }
        return {
          reply: `${lockStatus(s)} ${lockoutPolicy()}${failuresNote(s)} If you forgot your password, ${ENDPOINTS.resetRequest} sends a reset link.`,
          suggested_endpoints: [ENDPOINTS.resetRequest, ENDPOINTS.activity],
        }
      case 'verify_email':
        if (s.email_verified && s.pending_email === null) {
          return {
            reply: `${emailStatus(s)} There is nothing to confirm; a change of address (${ENDPOINTS.profile}) mails a new token to the new address.`,
            suggested_endpoints: [ENDPOINTS.profile],
          }
        }
        return {
          reply: `${emailStatus(s)} The token works once, until it expires. No mail? ${ENDPOINTS.resendVerification} sends a new token (at most one every ${plural(RESEND_INTERVAL_SECONDS, 'second')}) and the earlier one stops working.`,
          suggested_endpoints: [ENDPOINTS.verifyEmail, ENDPOINTS.resendVerification],
        }
      case 'change_email': {
        const when = s.verified_email_required
          ? 'The change takes effect only when you confirm it with the token mailed to the new address'
          : 'The change takes effect at once, and the new address is unverified until you use the token mailed to it'
        const pending = s.pending_email !== null ? ` ${emailStatus(s)}` : ''
        return {
          reply: `To change your email, call ${ENDPOINTS.profile} with the new \`email\` and your \`current_password\`. ${when} (${ENDPOINTS.verifyEmail}); your old address is told, and password reset tokens sent to it stop working. It answers 409 if another account already uses that email, and 401 if the current password is wrong.${pending}`,
          suggested_endpoints: [ENDPOINTS.profile, ENDPOINTS.verifyEmail],
        }
      }
      case 'delete_account':
        return {
          reply: `Accounts are deleted by an administrator (${ENDPOINTS.deleteUser}), so please ask one. Deletion erases your personal data (username, email, full name, password hash, sign-in addresses and devices), signs out every session, and frees your username and email; the account id then answers 404, and only the auditors' history keeps the events, with personal data shown as "[erased]".`,
          suggested_endpoints: [ENDPOINTS.deleteUser],
        }
      case 'greeting':
        return {
          reply: `Hello ${s.username}! ${twoFactorStatus(s)}; ${describeSessions(s)}. ${CAPABILITIES}`,
          suggested_endpoints: [],
        }
      case 'unknown':
        return { reply: `Sorry, I did not understand that. ${CAPABILITIES}`, suggested_endpoints: [] }
      default: {
        const unhandled: never = intent
        throw new Error(`unhandled intent ${String(unhandled)}`)
      }
    }
  },
}

// --- Service -------------------------------------------------------------------------------

export function createChatbot(deps: {
  queries: Queries
  now: () => Date
  /** REQUIRE_VERIFIED_EMAIL, which the replies about email explain. */
  verifiedEmailRequired?: boolean
  assistant?: ChatAssistant
  onIntent?: (intent: string) => void
}) {
  const assistant = deps.assistant ?? ruleBasedAssistant
  return {
    interact(userId: number, message: string): ChatbotAnswer {
      const intent = recogniseIntent(message)
      const snapshot = snapshotOf(deps.queries, userId, deps.now(), {
        verified_email_required: deps.verifiedEmailRequired,
      })
      // Record what was asked about, never what was said: the message may hold secrets.
      deps.onIntent?.(intent)
      const { reply, suggested_endpoints } = assistant.reply(intent, snapshot, message)
      return { reply, intent, suggested_endpoints }
    },
  }
}

export type Chatbot = ReturnType<typeof createChatbot>
