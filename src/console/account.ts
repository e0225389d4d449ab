/** The account holder's pages: log in, profile, two-factor, sessions, activity. */
import * as session from './api.ts'
import { api, type Session, type User } from './api.ts'
import {
  badge,
  button,
  type Child,
  clear,
  deviceOf,
  download,
  field,
  form,
  h,
  input,
  messageArea,
  relativeTime,
  select,
  time,
} from './dom.ts'
import type { Page, PageContext } from './page.ts'
import { passkeysSupported } from './webauthn.ts'

const heading = (text: string): HTMLHeadingElement => h('h1', { tabindex: '-1' }, text)

// --- logging in ---

export function loginPage(options: { message?: string; onLoggedIn: () => void }): Node {
  const container = h('section', { class: 'card narrow', 'aria-labelledby': 'login-title' })
  const notice = options.message ? h('p', { class: 'message ok', role: 'status' }, options.message) : null

  const passwordStep = (): void => {
    const username = input({ name: 'username', autocomplete: 'username', required: true, maxlength: 254 })
    const password = input({
      name: 'password',
      type: 'password',
      autocomplete: 'current-password',
      required: true,
      maxlength: 1024,
    })
    clear(
      container,
      h('h1', { id: 'login-title', tabindex: '-1' }, 'Log in'),
      notice,
      form(
        { id: 'login-form' },
        [field('Username', username), field('Password', password), h('button', { type: 'submit' }, 'Log in')],
        async () => {
          const outcome = await session.login(username.value, password.value)
          if (outcome.kind === 'done') options.onLoggedIn()
          else secondFactorStep(outcome.challenge)
        },
      ),
      passkeysSupported()
        ? form(
            { id: 'passkey-login-form', class: 'alternative' },
            [
              h('button', { type: 'submit', class: 'secondary' }, 'Log in with a passkey'),
              h('p', { class: 'hint' }, 'With the username above, or choose the account on your device.'),
            ],
            async () => {
              await session.passkeyLogin(username.value.trim())
              options.onLoggedIn()
            },
          )
        : null,
      h(
        'p',
        null,
        button('Forgot your password?', forgotStep, { class: 'link', id: 'show-forgot' }),
        ' · No account yet? ',
        button('Create an account', registerStep, { class: 'link', id: 'show-register' }),
      ),
    )
  }

  const forgotStep = (): void => {
    const email = input({ name: 'email', type: 'email', autocomplete: 'email', required: true })
    const sent = messageArea('status')
    clear(
      container,
      h('h1', { id: 'login-title', tabindex: '-1' }, 'Reset your password'),
      form(
        { id: 'forgot-form' },
        [
          field(
            'Email',
            email,
            'The address of your account. The mail holds a link to choose a new password.',
          ),
          h('button', { type: 'submit' }, 'Send the link'),
          sent.element,
        ],
        async () => {
          await api('POST', '/auth/password-reset-request', { json: { email: email.value.trim() } })
          // The service answers alike for every address, so must the page.
          sent.show(
            `If an account uses ${email.value.trim()}, a mail with a link is on its way. The link works once and soon expires; the mail says when.`,
          )
        },
      ),
      h('p', null, button('Back to logging in', passwordStep, { class: 'link' })),
    )
    email.focus()
  }

  const secondFactorStep = (challenge: string): void => {
    const code = input({
      name: 'code',
      autocomplete: 'one-time-code',
      required: true,
      maxlength: 64,
      spellcheck: 'false',
      autocapitalize: 'none',
    })
    clear(
      container,
      h('h1', { id: 'login-title', tabindex: '-1' }, 'Two-factor authentication'),
      form(
        { id: 'second-factor-form' },
        [
          field(
            'Code',
            code,
            'The 6-digit code from your authenticator app, or one of your recovery codes. The challenge is valid for 5 minutes.',
          ),
          h('button', { type: 'submit' }, 'Verify'),
        ],
        async () => {
          await session.verifySecondFactor(challenge, code.value.trim())
          options.onLoggedIn()
        },
      ),
      h('p', null, button('Start over', passwordStep, { class: 'link' })),
    )
    code.focus()
  }

  const registerStep = (): void => {
    const username = input({
      name: 'username',
      autocomplete: 'username',
      required: true,
      minlength: 3,
      maxlength: 32,
    })
    const email = input({ name: 'email', type: 'email', autocomplete: 'email', required: true })
    const fullName = input({ name: 'full_name', autocomplete: 'name', maxlength: 100 })
    const password = input({
      name: 'password',
      type: 'password',
      autocomplete: 'new-password',
      required: true,
      minlength: 8,
      maxlength: 128,
    })
    clear(
      container,
      h('h1', { id: 'login-title', tabindex: '-1' }, 'Create an account'),
      form(
        { id: 'register-form' },
        [
          field('Username', username, '3–32 letters, digits, ".", "_" or "-".'),
          field('Email', email),
          field('Full name (optional)', fullName),
          field('Password', password, '8–128 characters; not a common password, not your username or email.'),
          h('button', { type: 'submit' }, 'Create account'),
        ],
        async () => {
          await api('POST', '/auth/register', {
            json: {
              username: username.value,
              email: email.value,
              password: password.value,
              full_name: fullName.value || null,
            },
          })
          const outcome = await session.login(username.value, password.value)
          if (outcome.kind === 'done') options.onLoggedIn()
        },
      ),
      h('p', null, 'Already registered? ', button('Log in', passwordStep, { class: 'link' })),
    )
    username.focus()
  }

  passwordStep()
  return container
}

// --- profile ---

function detailsList(rows: [string, Child][]): HTMLDListElement {
  return h(
    'dl',
    { class: 'details' },
    rows.map(([term, value]) => [h('dt', null, term), h('dd', null, value)]),
  )
}

export function accountBadges(user: User): Child[] {
  return [
    user.is_active ? badge('active', 'ok') : badge('deactivated', 'bad'),
    user.is_locked ? badge('locked', 'bad') : null,
    user.is_2fa_enabled ? badge('2FA on', 'ok') : badge('2FA off', 'warn'),
    user.email_verified ? badge('email confirmed', 'ok') : badge('email not confirmed', 'warn'),
  ]
}

/** The address, a change waiting for confirmation, and a new link (whether it is confirmed: Status). */
function emailDetails(me: User, context: PageContext): Child[] {
  const sent = messageArea('status')
  const waiting = !me.email_verified || me.pending_email !== null
  return [
    me.email,
    me.pending_email
      ? h(
          'p',
          { class: 'hint', id: 'pending-email' },
          `Changing to ${me.pending_email} once confirmed from the link sent there.`,
        )
      : null,
    waiting
      ? button(
          'Send the confirmation link again',
          async (event) => {
            const target = event.currentTarget as HTMLButtonElement
            target.disabled = true
            try {
              await api('POST', '/auth/verify-email/resend')
              sent.show(
                `A new link is on its way to ${me.pending_email ?? me.email}; earlier links no longer work.`,
              )
              context.announce('Confirmation link sent.')
            } catch (failure) {
              sent.show((failure as Error).message)
            } finally {
              target.disabled = false
            }
          },
          { class: 'link', id: 'resend-verification' },
        )
      : null,
    sent.element,
  ]
}

async function profilePage(context: PageContext): Promise<Child[]> {
  const me = await context.reloadMe()
  const fullName = input({
    name: 'full_name',
    autocomplete: 'name',
    maxlength: 100,
    value: me.full_name ?? '',
  })
  const email = input({ name: 'email', type: 'email', autocomplete: 'email', value: me.email })
  const currentForProfile = input({
    name: 'current_password',
    type: 'password',
    autocomplete: 'current-password',
  })
  const profileForm = form(
    { id: 'profile-form', 'aria-labelledby': 'profile-edit' },
    [
      h('h2', { id: 'profile-edit' }, 'Edit profile'),
      field('Full name', fullName),
      field('Email', email),
      field('Current password', currentForProfile, 'Needed only to change your email.'),
      h('button', { type: 'submit' }, 'Save profile'),
    ],
    async () => {
      const update: Record<string, unknown> = { full_name: fullName.value.trim() || null }
      if (email.value.trim() !== me.email) {
        update.email = email.value.trim()
        update.current_password = currentForProfile.value
      }
      await api('PUT', '/auth/profile', { json: update })
      context.announce('Profile saved.')
      context.navigate('/profile')
    },
  )

  const current = input({
    name: 'current_password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  })
  const next = input({
    name: 'password',
    type: 'password',
    autocomplete: 'new-password',
    required: true,
    minlength: 8,
    maxlength: 128,
  })
  const confirm = input({ name: 'confirm', type: 'password', autocomplete: 'new-password', required: true })
  const changed = messageArea('status')
  const passwordForm = form(
    { id: 'password-form', 'aria-labelledby': 'password-change' },
    [
      h('h2', { id: 'password-change' }, 'Change password'),
      // For password managers: which account the new password belongs to.
      h('input', {
        type: 'text',
        name: 'username',
        autocomplete: 'username',
        value: me.username,
        hidden: true,
      }),
      field('Current password', current),
      field('New password', next, '8–128 characters; not a common password, not your username or email.'),
      field('Repeat the new password', confirm),
      h('button', { type: 'submit' }, 'Change password'),
      changed.element,
    ],
    async (_data, element) => {
      changed.show(null)
      if (next.value !== confirm.value) throw new Error('The two new passwords differ.')
      await api('PUT', '/auth/profile', { json: { password: next.value, current_password: current.value } })
      element.reset()
      changed.show('Password changed. Your other sessions were logged out.')
      context.announce('Password changed.')
    },
  )

  return [
    heading('Your profile'),
    h(
      'section',
      { class: 'card', 'aria-label': 'Account details' },
      detailsList([
        ['Username', me.username],
        ['Email', emailDetails(me, context)],
        ['Full name', me.full_name ?? '—'],
        ['Role', me.role],
        ['Status', accountBadges(me)],
        ['Member since', time(me.created_at)],
      ]),
    ),
    h(
      'div',
      { class: 'columns' },
      h('section', { class: 'card' }, profileForm),
      h('section', { class: 'card' }, passwordForm),
    ),
  ]
}

// --- two-factor ---

/** As src/app/amr.ts decides on the server: a code, or a passkey that verified its user. */
const passedSecondFactor = (amr: string[]): boolean =>
  amr.includes('otp') || ((amr.includes('hwk') || amr.includes('swk')) && amr.includes('user'))

type Setup = { secret: string; otpauth_url: string; qr_svg: string }

/** The base32 secret in groups of four, easier to type into an app by hand. */
const grouped = (secret: string): string => secret.replace(/(.{4})/g, '$1 ').trim()

async function twoFactorPage(context: PageContext): Promise<Child[]> {
  const me = await context.reloadMe()
  const body = h('div', { id: 'two-factor' })
  const otpSession = passedSecondFactor(session.claims()?.amr ?? [])

  const showEnabled = (): void => {
    const error = messageArea('alert')
    clear(
      body,
      h(
        'p',
        null,
        badge('Enabled', 'ok'),
        ' Logging in needs a code from your authenticator app (or a recovery code).',
      ),
      h('h2', null, 'Turn two-factor authentication off'),
      otpSession
        ? h('p', null, 'Your account will then be protected by your password alone.')
        : h(
            'p',
            { class: 'hint' },
            'To turn it off, this session must have passed two-factor authentication: log out and log in again with a code or a passkey.',
          ),
      button(
        'Turn off two-factor authentication',
        async () => {
          if (!window.confirm('Turn off two-factor authentication? Your recovery codes stop working.')) return
          try {
            await api('POST', '/auth/disable-2fa')
            context.announce('Two-factor authentication is off.')
            context.navigate('/security')
          } catch (failure) {
            error.show((failure as Error).message)
          }
        },
        { class: 'danger', id: 'disable-2fa', disabled: !otpSession },
      ),
      error.element,
    )
  }

  const showDisabled = (): void => {
    clear(
      body,
      h('p', null, badge('Off', 'warn'), ' Your account is protected by your password alone.'),
      h(
        'p',
        null,
        'With two-factor authentication, logging in also needs a 6-digit code from an authenticator app (such as FreeOTP, Aegis, Google Authenticator or 1Password).',
      ),
      button('Set up two-factor authentication', () => void startEnrolment(), { id: 'start-2fa' }),
    )
  }

  const startEnrolment = async (): Promise<void> => {
    const setup = await api<Setup>('GET', '/auth/generate-2fa-code')
    const code = input({
      name: 'code',
      inputmode: 'numeric',
      autocomplete: 'one-time-code',
      pattern: '[0-9]{6}',
      maxlength: 6,
      required: true,
    })
    clear(
      body,
      h('h2', null, '1. Scan the code'),
      h(
        'div',
        { class: 'enrol' },
        h('img', {
          class: 'qr',
          id: 'qr-code',
          src: `data:image/svg+xml;base64,${btoa(setup.qr_svg)}`,
          alt: 'QR code to scan with your authenticator app',
          width: 200,
          height: 200,
        }),
        h(
          'div',
          null,
          h('p', null, 'Scan it with your authenticator app, or type this key into it:'),
          h(
            'p',
            null,
            h(
              'code',
              { id: 'totp-secret', class: 'secret', 'data-secret': setup.secret },
              grouped(setup.secret),
            ),
          ),
          h('p', { class: 'hint' }, 'Time-based, 6 digits, every 30 seconds (SHA-1).'),
        ),
      ),
      h('h2', null, '2. Confirm with a code'),
      form(
        { id: 'enable-2fa-form' },
        [
          field('Code from the app', code, 'Proves that the app is set up before 2FA is switched on.'),
          h(
            'div',
            { class: 'actions' },
            h('button', { type: 'submit' }, 'Turn on'),
            button('Cancel', showDisabled, { class: 'secondary' }),
          ),
        ],
        async () => {
          const result = await api<{ message: string; recovery_codes: string[] }>(
            'POST',
            '/auth/enable-2fa',
            {
              json: { code: code.value.trim() },
            },
          )
          showRecoveryCodes(result.recovery_codes)
          context.announce('Two-factor authentication is on. Save your recovery codes.')
        },
      ),
    )
    code.focus()
  }

  const showRecoveryCodes = (codes: string[]): void => {
    const text = `Auth Service recovery codes for ${me.username}\nEach code works once, instead of a code from the app.\n\n${codes.join('\n')}\n`
    const copied = messageArea('status')
    const saved = h('input', { type: 'checkbox', id: 'codes-saved' })
    const done = button('Done', () => context.navigate('/profile'), { id: 'codes-done', disabled: true })
    saved.addEventListener('change', () => {
      done.disabled = !saved.checked
    })
    clear(
      body,
      h('p', null, badge('Enabled', 'ok'), ' Two-factor authentication is on.'),
      h('h2', null, 'Your recovery codes'),
      h(
        'p',
        { class: 'message warn' },
        'These codes are shown only now. Each one logs you in once if you lose your phone. Keep them somewhere safe.',
      ),
      h(
        'ol',
        { class: 'codes', id: 'recovery-codes' },
        codes.map((c) => h('li', null, h('code', null, c))),
      ),
      h(
        'div',
        { class: 'actions' },
        button(
          'Copy',
          async () => {
            try {
              await navigator.clipboard.writeText(codes.join('\n'))
              copied.show('Copied to the clipboard.')
            } catch {
              copied.show('Copying is not allowed here; select the codes or download them.')
            }
          },
          { id: 'copy-codes', class: 'secondary' },
        ),
        button('Download', () => download(`recovery-codes-${me.username}.txt`, text), {
          id: 'download-codes',
          class: 'secondary',
        }),
      ),
      copied.element,
      h('p', { class: 'check' }, saved, h('label', { for: 'codes-saved' }, 'I have saved my recovery codes')),
      done,
    )
  }

  if (me.is_2fa_enabled) showEnabled()
  else showDisabled()
  return [heading('Two-factor authentication'), h('section', { class: 'card' }, body)]
}

// --- sessions ---

async function sessionsPage(context: PageContext): Promise<Child[]> {
  const sessions = await api<Session[]>('GET', '/auth/sessions')
  sessions.sort(
    (a, b) => Number(b.is_current) - Number(a.is_current) || b.last_used_at.localeCompare(a.last_used_at),
  )
  const error = messageArea('alert')
  const others = sessions.filter((s) => !s.is_current)

  const revoke = async (target: Session): Promise<void> => {
    try {
      await api('DELETE', `/auth/sessions/${target.id}`)
      if (target.is_current) {
        await context.logOut('You logged out this session.')
        return
      }
      context.announce(`Session ${target.id} logged out.`)
      context.navigate('/sessions')
    } catch (failure) {
      error.show((failure as Error).message)
    }
  }

  const everywhereElse = async (): Promise<void> => {
    if (!window.confirm(`Log out ${others.length} other session(s)?`)) return
    try {
      for (const other of others) await api('DELETE', `/auth/sessions/${other.id}`).catch(() => undefined)
      context.announce('Every other session is logged out.')
      context.navigate('/sessions')
    } catch (failure) {
      error.show((failure as Error).message)
    }
  }

  const rows = sessions.map((s) =>
    h(
      'tr',
      { 'data-session-id': s.id, class: s.is_current ? 'current' : null },
      h(
        'td',
        null,
        h('span', { title: s.user_agent ?? '' }, deviceOf(s.user_agent)),
        s.is_current ? [' ', badge('this session', 'info')] : null,
      ),
      h('td', null, s.ip_address ?? '—'),
      h('td', null, time(s.created_at)),
      h('td', null, h('span', { title: s.last_used_at }, relativeTime(s.last_used_at))),
      h('td', null, time(s.expires_at)),
      h(
        'td',
        null,
        button(s.is_current ? 'Log out' : 'Revoke', () => void revoke(s), {
          class: s.is_current ? 'secondary' : 'danger',
          'aria-label': s.is_current
            ? 'Log out this session'
            : `Revoke session ${s.id} (${deviceOf(s.user_agent)})`,
        }),
      ),
    ),
  )

  return [
    heading('Sessions'),
    h(
      'section',
      { class: 'card' },
      h(
        'p',
        null,
        `You are logged in on ${sessions.length} device(s). Revoking a session stops its tokens at once.`,
      ),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { id: 'sessions' },
          h('caption', { class: 'visually-hidden' }, 'Your active sessions'),
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              ['Device', 'IP address', 'Started', 'Last used', 'Expires', 'Action'].map((c) =>
                h('th', { scope: 'col' }, c),
              ),
            ),
          ),
          h('tbody', null, rows),
        ),
      ),
      error.element,
      h(
        'div',
        { class: 'actions' },
        button('Log out everywhere else', () => void everywhereElse(), {
          id: 'logout-others',
          class: 'danger',
          disabled: others.length === 0,
        }),
      ),
    ),
  ]
}

// --- activity ---

/** Icon (decorative), label, and whether the kind is one a user should look at twice. */
const KINDS: Record<string, { icon: string; label: string; unexpected?: boolean }> = {
  login: { icon: '→', label: 'Logged in' },
  login_failed: { icon: '✗', label: 'Failed login', unexpected: true },
  '2fa_enabled': { icon: '⚷', label: 'Two-factor turned on' },
  '2fa_disabled': { icon: '⚠', label: 'Two-factor turned off', unexpected: true },
  recovery_code_used: { icon: '⚷', label: 'Recovery code used' },
  password_changed: { icon: '✎', label: 'Password changed' },
  password_reset: { icon: '✎', label: 'Password reset' },
  password_reset_requested: { icon: '✉', label: 'Password reset requested' },
  email_changed: { icon: '✉', label: 'Email changed' },
  email_verified: { icon: '✓', label: 'Email verified' },
  session_revoked: { icon: '⊗', label: 'Session logged out' },
  sessions_revoked: { icon: '⊗', label: 'All sessions logged out' },
  refresh_token_reuse: {
    icon: '⚠',
    label: 'Stolen-token alarm: a used refresh token came back',
    unexpected: true,
  },
  locked: { icon: '⊘', label: 'Account locked', unexpected: true },
  unlocked: { icon: '✓', label: 'Account unlocked' },
  deactivated: { icon: '‖', label: 'Account deactivated', unexpected: true },
  activated: { icon: '▶', label: 'Account activated' },
  role_changed: { icon: '★', label: 'Role changed' },
  passkey_added: { icon: '⚷', label: 'Passkey added' },
  passkey_removed: { icon: '⚷', label: 'Passkey removed' },
  passkey_login: { icon: '→', label: 'Logged in with a passkey' },
}

type Activity = {
  type: string
  occurred_at: string
  ip_address: string | null
  user_agent: string | null
  session_id: number | null
}

async function activityPage(context: PageContext): Promise<Child[]> {
  const limit = Number(context.query.get('limit')) || 50
  const events = await api<Activity[]>('GET', '/auth/activity', { query: { limit } })
  const unexpected = events.filter((e) => KINDS[e.type]?.unexpected).length
  const limitSelect = select(
    'limit',
    ['50', '200', '500'].map((n) => [n, `Last ${n}`]),
    String(limit),
  )
  limitSelect.addEventListener('change', () => context.navigate(`/activity?limit=${limitSelect.value}`))
  return [
    heading('Activity'),
    h(
      'section',
      { class: 'card' },
      h(
        'div',
        { class: 'toolbar' },
        h(
          'p',
          null,
          unexpected > 0
            ? [
                badge(`${unexpected} to review`, 'bad'),
                ' Highlighted events are ones you may not have done yourself.',
              ]
            : 'Nothing unusual in this period.',
        ),
        field('Show', limitSelect),
      ),
      events.length === 0
        ? h('p', null, 'No activity yet.')
        : h(
            'ol',
            { class: 'timeline', id: 'activity' },
            events.map((event) => {
              const kind = KINDS[event.type] ?? { icon: '•', label: event.type.replaceAll('_', ' ') }
              return h(
                'li',
                { class: kind.unexpected ? 'unexpected' : null, 'data-type': event.type },
                h('span', { class: 'icon', 'aria-hidden': 'true' }, kind.icon),
                h(
                  'div',
                  null,
                  h(
                    'p',
                    { class: 'what' },
                    kind.label,
                    kind.unexpected ? [' ', badge('unexpected', 'bad')] : null,
                  ),
                  h(
                    'p',
                    { class: 'meta' },
                    time(event.occurred_at),
                    event.ip_address ? ` · ${event.ip_address}` : null,
                    event.user_agent ? ` · ${deviceOf(event.user_agent)}` : null,
                    event.session_id ? ` · session ${event.session_id}` : null,
                  ),
                ),
              )
            }),
          ),
    ),
  ]
}

export const accountPages: Page[] = [
  {
    pattern: /^\/profile$/,
    title: 'Profile',
    nav: { path: '/profile', label: 'Profile' },
    render: profilePage,
  },
  {
    pattern: /^\/security$/,
    title: 'Two-factor authentication',
    nav: { path: '/security', label: 'Two-factor' },
    render: twoFactorPage,
  },
  {
    pattern: /^\/sessions$/,
    title: 'Sessions',
    nav: { path: '/sessions', label: 'Sessions' },
    render: sessionsPage,
  },
  {
    pattern: /^\/activity$/,
    title: 'Activity',
    nav: { path: '/activity', label: 'Activity' },
    render: activityPage,
  },
]
