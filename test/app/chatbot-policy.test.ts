/**
 * The chatbot's numbers come from the policies, not from its text: with other numbers in
 * domain/lockout.ts and another reset token lifetime, its replies say the other numbers.
 */
import { describe, expect, it, vi } from 'vitest'
import { type AccountSnapshot, ruleBasedAssistant } from '../../src/app/chatbot.ts'

vi.mock('../../domain/lockout.ts', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../domain/lockout.ts')>()),
  MAX_CONSECUTIVE_FAILURES: 7,
  ACCOUNT_LOCK_THRESHOLD: 25,
  automaticLockMinutes: (previousLocks: number) => 11 * 3 ** previousLocks,
}))
vi.mock('../../src/app/password-reset.ts', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../src/app/password-reset.ts')>()),
  RESET_TOKEN_MINUTES: 45,
}))

const snapshot: AccountSnapshot = {
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
const reply = (intent: 'why_locked' | 'reset_password') =>
  ruleBasedAssistant.reply(intent, snapshot, '').reply

describe('chatbot replies under other policy numbers', () => {
  it('the lockout explanation follows domain/lockout.ts', () => {
    const text = reply('why_locked')
    expect(text).toContain(
      'Seven failed sign-ins in a row from one device pause sign-ins from that device for 11 minutes (each later pause lasts 3 times as long); 25 in a row from anywhere lock the account',
    )
    expect(text).not.toMatch(/\b(five|Five|15 minutes|twice|twenty)\b/)
  })

  it('the reset link lifetime follows RESET_TOKEN_MINUTES', () => {
    const text = reply('reset_password')
    expect(text).toContain('a single-use reset link valid for 45 minutes')
    expect(text).not.toContain('30 minutes')
  })
})
