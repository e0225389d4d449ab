import type { OpenApiMeta } from 'trpc-to-openapi'
import { describe, expect, it } from 'vitest'
import {
  ACCOUNT_LOCK_THRESHOLD,
  automaticLockMinutes,
  MAX_CONSECUTIVE_FAILURES,
} from '../../domain/lockout.ts'
import { appRouter } from '../../src/api/router.ts'
import {
  type AccountSnapshot,
  type ChatAssistant,
  createChatbot,
  ENDPOINTS,
  INTENTS,
  type Intent,
  recogniseIntent,
  ruleBasedAssistant,
  snapshotOf,
} from '../../src/app/chatbot.ts'
import { RESET_TOKEN_MINUTES } from '../../src/app/password-reset.ts'
import type { ActivityRow, Queries, SessionRow, UserRow } from '../../src/readstore/queries.ts'

const phrasings: Record<Intent, string[]> = {
  enable_2fa: [
    'how do I turn on two factor',
    'Enable 2FA please!',
    'set up two-factor authentication',
    'Is 2-step verification on for my account?',
    'add an authenticator app',
    'I want MFA',
  ],
  disable_2fa: [
    'disable 2fa',
    'How can I turn off two factor?',
    'remove the authenticator from my account',
    'stop asking me for an OTP code',
    'switch off 2-FA',
  ],
  reset_password: [
    'I forgot my password',
    'reset password',
    'How do I change my password?',
    "my password reset link doesn't work",
    'I cannot remember my PASSWORD!!!',
  ],
  list_sessions: [
    'who is logged in to my account',
    'show my active sessions',
    'which devices are signed in?',
    'when did I last log in',
    'where am I logged in',
  ],
  revoke_session: [
    'log out my other device',
    'sign me out everywhere',
    'revoke that session',
    'kick the other laptop out',
    'log-out please',
    'end session 42',
  ],
  why_locked: [
    "why can't I log in, it says locked",
    'my account is locked',
    'I got locked out!',
    'Why was my account blocked?',
    'I cant sign in',
  ],
  verify_email: [
    'how do I verify my email?',
    'my e-mail address is not verified',
    'resend the confirmation email please',
    'I never got the verification mail',
    'confirm my new email address',
  ],
  change_email: [
    'change my email',
    'how do I update my e-mail address?',
    'my email is wrong',
    'I need to set a new email',
  ],
  delete_account: [
    'delete my account',
    'How can I close my account?',
    'please erase my personal data',
    'right to be forgotten',
    'forget me',
  ],
  greeting: ['hi', 'Hello!', 'hey there', 'Good morning', 'help'],
  unknown: ['asdf qwerty zxcv', 'lorem ipsum dolor sit amet', '???', 'what is the weather in Paris', '42'],
}

describe('recogniseIntent', () => {
  const cases = Object.entries(phrasings).flatMap(([intent, messages]) =>
    messages.map((message) => ({ intent, message })),
  )

  it('covers every intent', () => {
    expect(Object.keys(phrasings).sort()).toEqual([...INTENTS].sort())
  })

  it.each(cases)('"$message" → $intent', ({ message, intent }) => {
    expect(recogniseIntent(message)).toBe(intent)
  })

  it.each([
    ['remove 2FA from my account', 'disable_2fa'],
    ['I forgot my password and now I am locked out', 'why_locked'],
    ["I can't log in, I forgot my password", 'reset_password'],
    ['my password reset token expired', 'reset_password'],
    ['hi, how do I enable 2fa?', 'enable_2fa'],
    ['history', 'unknown'],
  ])('settles the overlap in "%s" as %s', (message, intent) => {
    expect(recogniseIntent(message)).toBe(intent)
  })
})

const base: AccountSnapshot = {
  username: 'alice',
  role: 'user',
  is_2fa_enabled: false,
  lock: { is_locked: false },
  active_sessions: 0,
  newest_session: null,
  last_login_at: null,
  recent_failed_logins: 0,
  email_verified: true,
  pending_email: null,
  verified_email_required: false,
}
const threeSessions: AccountSnapshot = {
  ...base,
  active_sessions: 3,
  newest_session: {
    created_at: '2026-11-25T10:00:00.000Z',
    ip_address: '203.0.113.9',
    user_agent: 'curl/8.0',
  },
  last_login_at: '2026-11-25T10:00:00.000Z',
}
const reply = (intent: Intent, snapshot: AccountSnapshot) => ruleBasedAssistant.reply(intent, snapshot, '')

describe('rule-based replies, from the caller snapshot', () => {
  it('2FA off: explains enrolment and points at generate and enable', () => {
    const r = reply('enable_2fa', base)
    expect(r.reply).toMatch(/2FA is off/)
    expect(r.reply).toMatch(/recovery codes/)
    expect(r.suggested_endpoints).toEqual(['GET /auth/generate-2fa-code', 'POST /auth/enable-2fa'])
  })

  it('2FA on: says so, with the sessions, instead of enrolling again', () => {
    const r = reply('enable_2fa', { ...threeSessions, is_2fa_enabled: true })
    expect(r.reply).toContain('2FA is already on')
    expect(r.reply).toContain(
      '3 active sessions, the newest from 203.0.113.9 (curl/8.0) since 2026-11-25T10:00:00.000Z',
    )
    expect(r.suggested_endpoints).not.toContain('GET /auth/generate-2fa-code')
  })

  it('disabling: needs a 2FA session when on, nothing to do when off', () => {
    const on = reply('disable_2fa', { ...base, is_2fa_enabled: true })
    expect(on.reply).toMatch(/POST \/auth\/disable-2fa/)
    expect(on.suggested_endpoints).toContain('POST /auth/disable-2fa')
    const off = reply('disable_2fa', base)
    expect(off.reply).toMatch(/already off/)
    expect(off.suggested_endpoints).not.toContain('POST /auth/disable-2fa')
  })

  it('3 sessions: names the count and the newest one', () => {
    const r = reply('list_sessions', threeSessions)
    expect(r.reply).toBe(
      '2FA is off; you have 3 active sessions, the newest from 203.0.113.9 (curl/8.0) since 2026-11-25T10:00:00.000Z. Your last sign-in was at 2026-11-25T10:00:00.000Z. GET /auth/sessions lists them all; DELETE /auth/sessions/{session_id} signs one out.',
    )
    expect(r.suggested_endpoints).toEqual(['GET /auth/sessions', 'DELETE /auth/sessions/{session_id}'])
  })

  it('0 sessions: says there are none', () => {
    expect(reply('list_sessions', base).reply).toContain('you have no active sessions')
    expect(reply('revoke_session', base).reply).toMatch(/^You have no active sessions\./)
  })

  it('1 session: singular, with where it comes from', () => {
    const one = {
      ...threeSessions,
      active_sessions: 1,
      newest_session: { ...threeSessions.newest_session!, user_agent: null },
    }
    expect(reply('list_sessions', one).reply).toContain(
      'you have 1 active session, from 203.0.113.9 (unknown client)',
    )
  })

  it('revoking: points at listing and deleting a session', () => {
    const r = reply('revoke_session', threeSessions)
    expect(r.reply).toMatch(/^You have 3 active sessions/)
    expect(r.suggested_endpoints).toEqual(
      expect.arrayContaining(['GET /auth/sessions', 'DELETE /auth/sessions/{session_id}']),
    )
  })

  it('unlocked: says so and mentions recent failures', () => {
    const r = reply('why_locked', { ...base, recent_failed_logins: 2 })
    expect(r.reply).toMatch(/^Your account is not locked\./)
    expect(r.reply).toContain('There were 2 failed sign-in attempts in the last 7 days')
    expect(reply('why_locked', base).reply).not.toMatch(/failed sign-in attempts? in/)
  })

  it('locked after failures: reason and until when', () => {
    const r = reply('why_locked', {
      ...base,
      lock: { is_locked: true, until: '2026-11-25T10:15:00.000Z', reason: 'too_many_failures' },
    })
    expect(r.reply).toContain(
      'Your account is locked after too many failed sign-in attempts, until 2026-11-25T10:15:00.000Z',
    )
    expect(r.suggested_endpoints).toContain('POST /auth/password-reset-request')
  })

  it('locked by an admin without an end: until an administrator unlocks it', () => {
    const r = reply('why_locked', { ...base, lock: { is_locked: true, until: null, reason: 'admin' } })
    expect(r.reply).toContain('locked by an administrator, until an administrator unlocks it')
    expect(r.suggested_endpoints).toEqual([])
  })

  it('password, email and deletion answers name the real routes', () => {
    expect(reply('reset_password', base).suggested_endpoints).toEqual([
      'POST /auth/password-reset-request',
      'POST /auth/password-reset',
      'PUT /auth/profile',
    ])
    expect(reply('change_email', base).suggested_endpoints).toEqual([
      'PUT /auth/profile',
      'POST /auth/verify-email',
    ])
    const deletion = reply('delete_account', base)
    expect(deletion.suggested_endpoints).toEqual(['DELETE /admin/user/{user_id}'])
    expect(deletion.reply).toMatch(/administrator/)
    expect(deletion.reply).toMatch(/erases your personal data/)
  })

  it('email verification: unverified, pending change, verified; and how a change takes effect', () => {
    const unverified = reply('verify_email', { ...base, email_verified: false })
    expect(unverified.reply).toMatch(/^Your email address is not verified yet/)
    expect(unverified.reply).not.toContain('signing in is refused')
    expect(unverified.suggested_endpoints).toEqual([
      'POST /auth/verify-email',
      'POST /auth/verify-email/resend',
    ])
    expect(
      reply('verify_email', { ...base, email_verified: false, verified_email_required: true }).reply,
    ).toContain('Until then, signing in is refused.')
    const pending = reply('verify_email', { ...base, pending_email: 'n***@example.org' })
    expect(pending.reply).toContain(
      'A change of your email address to n***@example.org is waiting for confirmation',
    )
    expect(pending.suggested_endpoints).toContain('POST /auth/verify-email/resend')
    const done = reply('verify_email', base)
    expect(done.reply).toMatch(/^Your email address is verified\. There is nothing to confirm/)
    expect(done.suggested_endpoints).toEqual(['PUT /auth/profile'])
    expect(reply('change_email', base).reply).toContain('takes effect at once')
    expect(reply('change_email', { ...base, verified_email_required: true }).reply).toContain(
      'takes effect only when you confirm it',
    )
  })

  it("the numbers in the replies are the policies' own (chatbot-policy.test.ts changes them)", () => {
    const words = (
      'zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen ' +
      'sixteen seventeen eighteen nineteen twenty'
    ).split(' ')
    const count = (n: number) => `(${n}|${words[n] ?? n})`
    const lockout = reply('why_locked', base).reply
    expect(lockout).toMatch(new RegExp(`${count(MAX_CONSECUTIVE_FAILURES)} failed sign-ins in a row`, 'i'))
    expect(lockout).toContain(`from that device for ${automaticLockMinutes(0)} minutes`)
    expect(lockout).toMatch(new RegExp(`${count(ACCOUNT_LOCK_THRESHOLD)} in a row from anywhere`, 'i'))
    expect(reply('reset_password', base).reply).toContain(
      `reset link valid for ${RESET_TOKEN_MINUTES} minutes`,
    )
  })

  it('every endpoint the replies name is a route the router declares', () => {
    const declared = new Set<string>()
    for (const procedure of Object.values(appRouter._def.procedures)) {
      const openapi = (procedure as unknown as { _def: { meta?: OpenApiMeta } })._def.meta?.openapi
      if (openapi) declared.add(`${openapi.method} ${openapi.path}`)
    }
    for (const endpoint of Object.values(ENDPOINTS)) expect(declared).toContain(endpoint)
    for (const intent of INTENTS) {
      const { reply: text, suggested_endpoints } = reply(intent, threeSessions)
      for (const endpoint of suggested_endpoints) expect(declared).toContain(endpoint)
      for (const named of text.match(/\b(GET|POST|PUT|DELETE) \/[\w/{}.-]*\w}?/g) ?? [])
        expect(declared, `${intent} names ${named}`).toContain(named)
    }
  })

  it.each(INTENTS)('%s: a non-empty reply and well-formed endpoints', (intent) => {
    for (const snapshot of [base, threeSessions, { ...threeSessions, is_2fa_enabled: true }]) {
      const r = reply(intent, snapshot)
      expect(r.reply.length).toBeGreaterThan(0)
      for (const e of r.suggested_endpoints) expect(e).toMatch(/^(GET|POST|PUT|DELETE) \/[a-z0-9/{}_-]+$/)
    }
  })
})

const NOW = new Date('2026-11-25T12:00:00.000Z')
const FOREVER = '9999-12-31T23:59:59.999Z'

function user(overrides: Partial<UserRow> = {}): UserRow {
  return {
    id: 7,
    username: 'alice',
    email: 'alice@example.com',
    full_name: null,
    company_name: null,
    role: 'user',
    is_active: 1,
    locked_until: null,
    lock_reason: null,
    lock_note: null,
    failed_logins: 0,
    is_2fa_enabled: 0,
    created_at: '2026-01-01T00:00:00.000Z',
    last_login_at: '2026-11-25T11:00:00.000Z',
    email_verified: 0,
    pending_email: null,
    pending_email_expires_at: null,
    ...overrides,
  }
}

function session(id: number, created_at: string, ip_address: string): SessionRow {
  return {
    id,
    user_id: 7,
    amr: '["pwd"]',
    created_at,
    last_used_at: created_at,
    expires_at: '2026-12-25T00:00:00.000Z',
    ip_address,
    user_agent: 'curl/8.0',
    revoked_reason: null,
  }
}

const activity = (type: string, occurred_at: string): ActivityRow => ({
  type,
  occurred_at,
  ip_address: null,
  user_agent: null,
  session_id: null,
})

function fakeQueries(
  row: UserRow | undefined,
  sessions: SessionRow[] = [],
  history: ActivityRow[] = [],
): Queries {
  return {
    userById: (id: number) => (row && id === row.id ? row : undefined),
    activeSessions: () => sessions,
    activity: (_: number, limit: number) => history.slice(0, limit),
  } as unknown as Queries
}

describe('snapshotOf', () => {
  it('reads 2FA, sessions (newest by start) and recent failures from the read models', () => {
    const queries = fakeQueries(
      user({ is_2fa_enabled: 1 }),
      [
        session(3, '2026-11-25T09:00:00.000Z', '198.51.100.1'),
        session(5, '2026-11-25T11:00:00.000Z', '203.0.113.9'),
      ],
      [
        activity('login', '2026-11-25T11:00:00.000Z'),
        activity('login_failed', '2026-11-25T10:59:00.000Z'),
        activity('login_failed', '2026-11-20T10:00:00.000Z'),
        activity('login_failed', '2026-11-01T10:00:00.000Z'),
      ],
    )
    expect(snapshotOf(queries, 7, NOW)).toEqual({
      username: 'alice',
      role: 'user',
      is_2fa_enabled: true,
      lock: { is_locked: false },
      active_sessions: 2,
      newest_session: {
        created_at: '2026-11-25T11:00:00.000Z',
        ip_address: '203.0.113.9',
        user_agent: 'curl/8.0',
      },
      last_login_at: '2026-11-25T11:00:00.000Z',
      recent_failed_logins: 2,
      email_verified: false,
      pending_email: null,
      verified_email_required: false,
    })
  })

  it('reads email verification: verified, and a change awaiting confirmation (masked) until its token expires', () => {
    const verified = user({ email_verified: 1 })
    expect(snapshotOf(fakeQueries(verified), 7, NOW, { verified_email_required: true })).toMatchObject({
      email_verified: true,
      pending_email: null,
      verified_email_required: true,
    })
    const pending = user({
      email_verified: 1,
      pending_email: 'newalice@example.org',
      pending_email_expires_at: '2026-11-25T12:00:01.000Z',
    })
    expect(snapshotOf(fakeQueries(pending), 7, NOW).pending_email).toBe('n***@example.org')
    const expired = { ...pending, pending_email_expires_at: NOW.toISOString() }
    expect(snapshotOf(fakeQueries(expired), 7, NOW).pending_email).toBeNull()
  })

  it('a lock with an end, an open-ended admin lock, and an expired lock', () => {
    const until = '2026-11-25T12:15:00.000Z'
    const timed = user({ locked_until: until, lock_reason: 'too_many_failures' })
    expect(snapshotOf(fakeQueries(timed), 7, NOW).lock).toEqual({
      is_locked: true,
      until,
      reason: 'too_many_failures',
    })
    const forever = user({ locked_until: FOREVER, lock_reason: 'admin', lock_note: 'internal remark' })
    expect(snapshotOf(fakeQueries(forever), 7, NOW).lock).toEqual({
      is_locked: true,
      until: null,
      reason: 'admin',
    })
    const expired = user({ locked_until: '2026-11-25T11:00:00.000Z', lock_reason: 'too_many_failures' })
    expect(snapshotOf(fakeQueries(expired), 7, NOW).lock).toEqual({ is_locked: false })
  })

  it('an unknown user is ACCOUNT_NOT_FOUND', () => {
    expect(() => snapshotOf(fakeQueries(undefined), 7, NOW)).toThrow(
      expect.objectContaining({ code: 'ACCOUNT_NOT_FOUND' }),
    )
  })
})

describe('createChatbot', () => {
  it('answers with the intent and records only the intent, never the message', () => {
    const recorded: unknown[][] = []
    const bot = createChatbot({
      queries: fakeQueries(user(), [session(5, '2026-11-25T11:00:00.000Z', '203.0.113.9')]),
      now: () => NOW,
      onIntent: (...args) => recorded.push(args),
    })
    const secret = 'who is logged in? my password is hunter2'
    const answer = bot.interact(7, secret)
    expect(answer.intent).toBe('reset_password')
    expect(recorded).toEqual([['reset_password']])
    expect(JSON.stringify(recorded)).not.toContain('hunter2')
    expect(answer.reply).not.toContain('hunter2')
    expect(bot.interact(7, 'who is logged in to my account')).toMatchObject({
      intent: 'list_sessions',
      suggested_endpoints: ['GET /auth/sessions', 'DELETE /auth/sessions/{session_id}'],
    })
  })

  it('hands intent, snapshot and message to a plugged-in assistant', () => {
    const calls: [Intent, AccountSnapshot, string][] = []
    const assistant: ChatAssistant = {
      reply(intent, snapshot, message) {
        calls.push([intent, snapshot, message])
        return { reply: `model says hi to ${snapshot.username}`, suggested_endpoints: ['GET /auth/sessions'] }
      },
    }
    const bot = createChatbot({ queries: fakeQueries(user()), now: () => NOW, assistant })
    expect(bot.interact(7, 'hello')).toEqual({
      reply: 'model says hi to alice',
      intent: 'greeting',
      suggested_endpoints: ['GET /auth/sessions'],
    })
    expect(calls).toHaveLength(1)
    expect(calls[0][0]).toBe('greeting')
    expect(calls[0][1].active_sessions).toBe(0)
    expect(calls[0][2]).toBe('hello')
  })
})
