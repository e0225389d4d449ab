/**
 * The pages that the service's mails link to, open with or without a session: confirm an email
 * address, choose a new password. The token travels in the URL's fragment (`#/verify-email?
 * token=…`), which the browser never sends to a server, and leaves the address bar once used.
 */
import { api } from './api.ts'
import { type Child, field, form, h, input } from './dom.ts'

export type MailLinkContext = {
  query: URLSearchParams
  /** The token is spent: drop it from the URL and carry on with this message. */
  finish: (message: string) => void
}

export type MailLinkPage = {
  pattern: RegExp
  title: string
  render: (context: MailLinkContext) => Child[]
}

const missingToken = (): Child[] => [
  h(
    'p',
    { class: 'message error', role: 'alert' },
    'This link has no token. Open the whole link from the mail.',
  ),
]

function verifyEmailPage({ query, finish }: MailLinkContext): Child[] {
  const token = query.get('token')
  return [
    h('h1', { tabindex: '-1' }, 'Confirm your email address'),
    token
      ? form(
          { id: 'verify-email-form' },
          [
            h('p', null, 'Confirm that this address belongs to your account.'),
            h('button', { type: 'submit' }, 'Confirm my email address'),
          ],
          async () => {
            await api('POST', '/auth/verify-email', { json: { token } })
            finish('Your email address is confirmed.')
          },
        )
      : missingToken(),
  ]
}

function resetPasswordPage({ query, finish }: MailLinkContext): Child[] {
  const token = query.get('token')
  const password = input({
    name: 'new_password',
    type: 'password',
    autocomplete: 'new-password',
    required: true,
    minlength: 8,
    maxlength: 128,
  })
  const repeat = input({ name: 'repeat', type: 'password', autocomplete: 'new-password', required: true })
  return [
    h('h1', { tabindex: '-1' }, 'Choose a new password'),
    token
      ? form(
          { id: 'reset-password-form' },
          [
            field(
              'New password',
              password,
              '8–128 characters; not a common password, not your username or email.',
            ),
            field('Repeat the new password', repeat),
            h('button', { type: 'submit' }, 'Set the new password'),
          ],
          async () => {
            if (password.value !== repeat.value) throw new Error('The two passwords differ.')
            await api('POST', '/auth/password-reset', { json: { token, new_password: password.value } })
            finish(
              'Your password is changed and every session of your account was logged out. Log in with it.',
            )
          },
        )
      : missingToken(),
  ]
}

export const mailLinkPages: MailLinkPage[] = [
  { pattern: /^\/verify-email$/, title: 'Confirm your email address', render: verifyEmailPage },
  { pattern: /^\/reset-password$/, title: 'Choose a new password', render: resetPasswordPage },
]
