/** The admins' pages (auditors see them read-only): the user list and one user's page. */
import { accountBadges } from './account.ts'
import { api, type Role, type User, userById } from './api.ts'
import { button, type Child, field, form, h, input, messageArea, select, time } from './dom.ts'
import type { Page, PageContext } from './page.ts'

const ROLES: Role[] = ['user', 'vendor', 'admin', 'auditor']
const PAGE_SIZES = ['5', '10', '25', '50', '100']

async function usersPage(context: PageContext): Promise<Child[]> {
  const q = context.query.get('q') ?? ''
  const role = context.query.get('role') ?? ''
  const size = PAGE_SIZES.includes(context.query.get('size') ?? '') ? Number(context.query.get('size')) : 25
  const pageNumber = Math.max(1, Number(context.query.get('page')) || 1)
  // One more than shown: whether a next page exists, without counting.
  const users = await api<User[]>('GET', '/admin/users', {
    query: { q, role, skip: (pageNumber - 1) * size, limit: size + 1 },
  })
  const hasNext = users.length > size
  const shown = users.slice(0, size)

  const go = (changes: Record<string, string | number>): void => {
    const params = new URLSearchParams({ q, role, size: String(size), page: String(pageNumber) })
    for (const [key, value] of Object.entries(changes)) params.set(key, String(value))
    for (const key of [...params.keys()]) if (!params.get(key)) params.delete(key)
    context.navigate(`/users?${params}`)
  }

  const search = input({ name: 'q', type: 'search', value: q, maxlength: 100, id: 'user-search' })
  const roleFilter = select('role', [['', 'Any role'], ...ROLES.map((r): [string, string] => [r, r])], role)
  roleFilter.id = 'role-filter'
  const sizeSelect = select(
    'size',
    PAGE_SIZES.map((n) => [n, n]),
    String(size),
  )
  const filters = form(
    { id: 'user-filters', class: 'filters', role: 'search' },
    [
      field('Search', search, 'Username, email or name.'),
      field('Role', roleFilter),
      field('Per page', sizeSelect),
      h('button', { type: 'submit' }, 'Search'),
    ],
    async () => go({ q: search.value.trim(), role: roleFilter.value, size: sizeSelect.value, page: 1 }),
  )

  return [
    h('h1', { tabindex: '-1' }, 'Users'),
    h(
      'section',
      { class: 'card' },
      filters,
      shown.length === 0
        ? h('p', { id: 'no-users' }, 'No user matches.')
        : h(
            'div',
            { class: 'table-wrap' },
            h(
              'table',
              { id: 'users' },
              h('caption', { class: 'visually-hidden' }, 'Users'),
              h(
                'thead',
                null,
                h(
                  'tr',
                  null,
                  ['ID', 'Username', 'Email', 'Name', 'Role', 'Status', 'Created'].map((c) =>
                    h('th', { scope: 'col' }, c),
                  ),
                ),
              ),
              h(
                'tbody',
                null,
                shown.map((user) =>
                  h(
                    'tr',
                    { 'data-user-id': user.id },
                    h('td', null, String(user.id)),
                    h('td', null, h('a', { href: `#/users/${user.id}` }, user.username)),
                    h('td', null, user.email),
                    h('td', null, user.full_name ?? '—'),
                    h('td', null, user.role),
                    h('td', null, accountBadges(user)),
                    h('td', null, time(user.created_at)),
                  ),
                ),
              ),
            ),
          ),
      h(
        'nav',
        { class: 'pager', 'aria-label': 'Pages' },
        button('← Previous', () => go({ page: pageNumber - 1 }), {
          disabled: pageNumber <= 1,
          id: 'prev-page',
        }),
        h('span', { 'aria-live': 'polite' }, `Page ${pageNumber}`),
        button('Next →', () => go({ page: pageNumber + 1 }), { disabled: !hasNext, id: 'next-page' }),
      ),
    ),
  ]
}

async function userPage(context: PageContext): Promise<Child[]> {
  const id = Number(context.params[0])
  const user = await userById(id)
  const isAdmin = context.me.role === 'admin'
  if (!user) {
    return [
      h('h1', { tabindex: '-1' }, `User ${id}`),
      h(
        'section',
        { class: 'card' },
        h('p', null, 'No such user: never created, or deleted (its personal data erased).'),
        h('p', null, h('a', { href: `#/audit/users/${id}` }, 'See its history')),
      ),
    ]
  }
  const self = user.id === context.me.id
  const reload = (message: string): void => {
    context.announce(message)
    context.navigate(`/users/${id}`)
  }
  const error = messageArea('alert')
  const act = (run: () => Promise<unknown>, done: string) => async () => {
    error.show(null)
    try {
      await run()
      reload(done)
    } catch (failure) {
      error.show((failure as Error).message)
    }
  }

  const sections: Child[] = []
  if (isAdmin && !self) {
    const reason = input({ name: 'reason', maxlength: 500 })
    const minutes = input({ name: 'duration_minutes', type: 'number', min: 1, step: 1, inputmode: 'numeric' })
    const roleSelect = select(
      'role',
      ROLES.map((r) => [r, r]),
      user.role,
    )
    roleSelect.id = 'new-role'
    const confirmName = input({
      name: 'confirm',
      autocomplete: 'off',
      spellcheck: 'false',
      id: 'delete-confirm',
    })
    const deleteButton = h(
      'button',
      { type: 'submit', class: 'danger', id: 'delete-user', disabled: true },
      'Delete user',
    )
    confirmName.addEventListener('input', () => {
      deleteButton.disabled = confirmName.value !== user.username
    })

    sections.push(
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'state-title' },
        h('h2', { id: 'state-title' }, 'Access'),
        h(
          'div',
          { class: 'actions' },
          user.is_active
            ? button(
                'Deactivate',
                act(
                  () => api('PUT', `/admin/deactivate-user/${id}`),
                  'User deactivated; their sessions ended.',
                ),
                { class: 'danger', id: 'deactivate' },
              )
            : button(
                'Activate',
                act(() => api('PUT', `/admin/activate-user/${id}`), 'User activated.'),
                {
                  id: 'activate',
                },
              ),
          user.is_locked
            ? button(
                'Unlock',
                act(() => api('POST', '/admin/unlock', { json: { user_id: id } }), 'User unlocked.'),
                { id: 'unlock' },
              )
            : null,
        ),
        error.element,
      ),
      user.is_locked
        ? null
        : h(
            'section',
            { class: 'card', 'aria-labelledby': 'lock-title' },
            h('h2', { id: 'lock-title' }, 'Lock'),
            form(
              { id: 'lock-form' },
              [
                field('Reason', reason, 'Shown to no one but admins and auditors.'),
                field('Duration in minutes', minutes, 'Leave empty to lock until unlocked.'),
                h('button', { type: 'submit', class: 'danger' }, 'Lock account'),
              ],
              async () => {
                await api('POST', '/admin/lock', {
                  json: {
                    user_id: id,
                    reason: reason.value.trim() || null,
                    duration_minutes: minutes.value ? Number(minutes.value) : null,
                  },
                })
                reload('User locked; their sessions ended.')
              },
            ),
          ),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'role-title' },
        h('h2', { id: 'role-title' }, 'Role'),
        form(
          { id: 'role-form' },
          [
            field('New role', roleSelect, 'Changing it ends the user’s sessions.'),
            h('button', { type: 'submit' }, 'Change role'),
          ],
          async () => {
            if (roleSelect.value === user.role) throw new Error(`The role is already ${user.role}.`)
            await api('PUT', '/admin/user/role', { json: { user_id: id, role: roleSelect.value } })
            reload(`Role changed to ${roleSelect.value}.`)
          },
        ),
      ),
      h(
        'section',
        { class: 'card danger-zone', 'aria-labelledby': 'delete-title' },
        h('h2', { id: 'delete-title' }, 'Delete'),
        h(
          'p',
          null,
          'Erases the user’s personal data for good and ends their sessions. The history stays, with the personal fields erased.',
        ),
        form(
          { id: 'delete-form' },
          [field(`Type “${user.username}” to confirm`, confirmName), deleteButton],
          async () => {
            if (confirmName.value !== user.username) throw new Error('The name typed does not match.')
            await api('DELETE', `/admin/user/${id}`)
            context.announce(`User ${user.username} deleted.`)
            context.navigate('/users')
          },
        ),
      ),
    )
  } else if (self) {
    sections.push(
      h('p', { class: 'hint' }, 'This is your own account: admins cannot change their own access here.'),
    )
  }

  return [
    h('h1', { tabindex: '-1' }, user.username),
    h(
      'section',
      { class: 'card', 'aria-label': 'Account details' },
      h(
        'dl',
        { class: 'details', id: 'user-details' },
        [
          ['ID', String(user.id)],
          ['Email', user.email],
          ['Full name', user.full_name ?? '—'],
          ['Role', user.role],
          ['Status', accountBadges(user)],
          ['Created', time(user.created_at)],
        ].map(([term, value]) => [h('dt', null, term as string), h('dd', null, value as Child)]),
      ),
      h('p', null, h('a', { href: `#/audit/users/${id}` }, 'History of this account')),
    ),
    ...sections,
  ]
}

export const adminPages: Page[] = [
  {
    pattern: /^\/users$/,
    title: 'Users',
    roles: ['admin', 'auditor'],
    nav: { path: '/users', label: 'Users' },
    render: usersPage,
  },
  { pattern: /^\/users\/([1-9][0-9]{0,15})$/, title: 'User', roles: ['admin', 'auditor'], render: userPage },
]
