/** The account holder's passkeys: add one on this device, rename, remove. */
import { api, type Passkey } from './api.ts'
import { button, type Child, field, form, h, input, messageArea, time } from './dom.ts'
import type { Page, PageContext } from './page.ts'
import { createPasskey, passkeysSupported } from './webauthn.ts'

async function passkeysPage(context: PageContext): Promise<Child[]> {
  const passkeys = await api<Passkey[]>('GET', '/auth/passkeys')
  const error = messageArea('alert')

  const remove = async (passkey: Passkey): Promise<void> => {
    if (!window.confirm(`Remove the passkey "${passkey.name}"? It can no longer log you in.`)) return
    try {
      await api('DELETE', `/auth/passkeys/${passkey.id}`)
      context.announce(`Passkey "${passkey.name}" removed.`)
      context.navigate('/passkeys')
    } catch (failure) {
      error.show((failure as Error).message)
    }
  }

  const row = (passkey: Passkey): HTMLTableRowElement => {
    const name = input({ name: 'name', value: passkey.name, maxlength: 64, required: true })
    name.setAttribute('aria-label', `New name for the passkey "${passkey.name}"`)
    return h(
      'tr',
      { 'data-passkey': String(passkey.id) },
      h('td', null, passkey.name),
      h('td', null, time(passkey.created_at)),
      h('td', null, passkey.last_used_at ? time(passkey.last_used_at) : 'never'),
      h(
        'td',
        null,
        form(
          { class: 'inline' },
          [name, h('button', { type: 'submit', class: 'secondary' }, 'Rename')],
          async () => {
            await api('PUT', `/auth/passkeys/${passkey.id}`, { json: { name: name.value.trim() } })
            context.announce('Passkey renamed.')
            context.navigate('/passkeys')
          },
        ),
        button('Remove', () => void remove(passkey), { class: 'danger' }),
      ),
    )
  }

  const newName = input({ name: 'passkey_name', maxlength: 64, placeholder: 'e.g. Laptop' })
  const addForm = passkeysSupported()
    ? form(
        { id: 'add-passkey-form' },
        [
          field('Name (optional)', newName, 'To tell your passkeys apart later.'),
          h('button', { type: 'submit' }, 'Add a passkey'),
        ],
        async () => {
          const options = await api<Record<string, unknown>>('POST', '/auth/passkeys/register/options')
          const response = await createPasskey(options)
          const added = await api<Passkey>('POST', '/auth/passkeys/register', {
            json: { response, name: newName.value.trim() || undefined },
          })
          context.announce(`Passkey "${added.name}" added.`)
          context.navigate('/passkeys')
        },
      )
    : h('p', { class: 'message warn' }, 'This browser cannot create passkeys.')

  return [
    h('h1', { tabindex: '-1' }, 'Passkeys'),
    h(
      'p',
      null,
      'A passkey logs you in with this device’s screen lock or a security key instead of your password, ' +
        'and cannot be phished. One that checks your PIN or fingerprint also counts as two-factor authentication.',
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'passkeys-list' },
      h('h2', { id: 'passkeys-list' }, 'Your passkeys'),
      passkeys.length === 0
        ? h('p', { id: 'no-passkeys' }, 'No passkey yet.')
        : h(
            'table',
            { id: 'passkeys' },
            h(
              'thead',
              null,
              h(
                'tr',
                null,
                ['Name', 'Added', 'Last used', 'Actions'].map((t) => h('th', { scope: 'col' }, t)),
              ),
            ),
            h('tbody', null, passkeys.map(row)),
          ),
      error.element,
    ),
    h('section', { class: 'card' }, addForm),
  ]
}

export const passkeyPages: Page[] = [
  {
    pattern: /^\/passkeys$/,
    title: 'Passkeys',
    nav: { path: '/passkeys', label: 'Passkeys' },
    render: passkeysPage,
  },
]
