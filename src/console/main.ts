/**
 * The console's entry: restores the session from the refresh cookie, then routes on the URL's
 * hash (`#/profile`, `#/users/7`, …) to the page for it, with the navigation the role allows.
 */
import { accountPages, loginPage } from './account.ts'
import { adminPages } from './admin.ts'
import * as session from './api.ts'
import { auditPages } from './audit.ts'
import { append, button, clear, h } from './dom.ts'
import { mailLinkPages } from './mail-links.ts'
import type { Page, PageContext } from './page.ts'
import { passkeyPages } from './passkeys.ts'

const main = document.getElementById('main') as HTMLElement
const nav = document.getElementById('nav') as HTMLElement
const account = document.getElementById('account') as HTMLElement
const status = document.getElementById('status') as HTMLElement

const pages: Page[] = [...accountPages, ...passkeyPages, ...adminPages, ...auditPages]
let me: session.User | null = null

let statusTimer: ReturnType<typeof setTimeout> | undefined

/** Shows (and has screen readers read) the outcome of an action for a few seconds. */
function announce(text: string): void {
  clearTimeout(statusTimer)
  status.textContent = ''
  // Set after a tick, so that a repeated message is announced again.
  statusTimer = setTimeout(() => {
    status.textContent = text
    statusTimer = setTimeout(() => {
      status.textContent = ''
    }, 8000)
  }, 50)
}

function navigate(path: string): void {
  if (location.hash === `#${path}`) void render()
  else location.hash = path
}

function currentPath(): { path: string; query: URLSearchParams } {
  const raw = location.hash.startsWith('#/') ? location.hash.slice(1) : '/profile'
  const q = raw.indexOf('?')
  return q < 0
    ? { path: raw, query: new URLSearchParams() }
    : { path: raw.slice(0, q), query: new URLSearchParams(raw.slice(q + 1)) }
}

function renderChrome(): void {
  const role = me?.role
  const visible = pages.filter((page) => page.nav && (!page.roles || (role && page.roles.includes(role))))
  const { path } = currentPath()
  clear(
    nav,
    me
      ? h(
          'ul',
          null,
          visible.map((page) => {
            const current = path === page.nav?.path || path.startsWith(`${page.nav?.path}/`)
            return h(
              'li',
              null,
              h(
                'a',
                { href: `#${page.nav?.path}`, 'aria-current': current ? 'page' : null },
                page.nav?.label,
              ),
            )
          }),
        )
      : null,
  )
  clear(
    account,
    me
      ? [
          h('span', { class: 'who' }, me.username, ' ', h('span', { class: 'role' }, me.role)),
          button('Log out', () => void logOut(), { class: 'secondary', id: 'logout' }),
        ]
      : null,
  )
}

async function logOut(message = 'You are logged out.'): Promise<void> {
  await session.logout()
  me = null
  showLogin(message)
}

function showLogin(message?: string): void {
  me = null
  // Nothing of the previous session's status line stays on the screen.
  clearTimeout(statusTimer)
  status.textContent = ''
  renderChrome()
  document.title = 'Log in — Auth Service console'
  clear(main, loginPage({ message, onLoggedIn: () => void loggedIn() }))
  main.querySelector<HTMLInputElement>('input')?.focus()
}

async function loggedIn(): Promise<void> {
  me = await session.whoAmI()
  // replaceState fires no hashchange: one render below.
  if (!location.hash.startsWith('#/')) history.replaceState(null, '', '#/profile')
  await render()
}

/** A page a mail links to: shown with or without a session; the token leaves the URL once spent. */
function renderMailLink(): boolean {
  const { path, query } = currentPath()
  const page = mailLinkPages.find((candidate) => candidate.pattern.test(path))
  if (!page) return false
  renderChrome()
  document.title = `${page.title} — Auth Service console`
  const finish = async (message: string): Promise<void> => {
    history.replaceState(null, '', '#/profile')
    // A password reset ended every session, this one included: only a live one carries on.
    if (me && (await session.refresh())) {
      await render()
      announce(message)
    } else {
      session.forget()
      showLogin(message)
    }
  }
  clear(main, h('section', { class: 'card narrow' }, page.render({ query, finish: (m) => void finish(m) })))
  main.querySelector<HTMLElement>('h1')?.focus()
  return true
}

/** Counts renders: a slow page that finishes after a newer one was asked for is dropped. */
let renders = 0

async function render(): Promise<void> {
  if (renderMailLink()) return
  if (!me) {
    showLogin()
    return
  }
  const ticket = ++renders
  const { path, query } = currentPath()
  let params: string[] = []
  const page =
    pages.find((candidate) => {
      const match = candidate.pattern.exec(path)
      if (match) params = match.slice(1)
      return match !== null
    }) ?? null
  renderChrome()
  if (!page || (page.roles && !page.roles.includes(me.role))) {
    document.title = 'Not found — Auth Service console'
    clear(
      main,
      h('h1', { tabindex: '-1' }, 'Page not found'),
      h('p', null, h('a', { href: '#/profile' }, 'Go to your profile')),
    )
    main.querySelector('h1')?.focus()
    return
  }
  const context: PageContext = {
    me,
    params,
    query,
    navigate,
    announce,
    reloadMe: async () => {
      me = await session.whoAmI()
      renderChrome()
      return me
    },
    logOut: (message) => logOut(message),
  }
  document.title = `${page.title} — Auth Service console`
  clear(main, h('p', { class: 'loading' }, 'Loading…'))
  main.setAttribute('aria-busy', 'true')
  try {
    const content = await page.render(context)
    if (ticket !== renders) return
    clear(main, content)
  } catch (failure) {
    if (ticket !== renders || (failure instanceof session.ApiError && failure.status === 401)) return
    clear(
      main,
      h('h1', { tabindex: '-1' }, page.title),
      h(
        'p',
        { class: 'message error', role: 'alert' },
        failure instanceof Error ? failure.message : String(failure),
      ),
    )
  } finally {
    main.removeAttribute('aria-busy')
  }
  main.querySelector<HTMLElement>('h1')?.focus()
}

session.onSessionLost(() => {
  if (me) showLogin('Your session has ended (logged out elsewhere, expired or locked). Log in again.')
})
window.addEventListener('hashchange', () => void render())
document.getElementById('skip')?.addEventListener('click', (event) => {
  event.preventDefault()
  main.focus()
})

async function start(): Promise<void> {
  append(main, [h('p', { class: 'loading' }, 'Loading…')])
  if (await session.refresh()) {
    try {
      await loggedIn()
      return
    } catch {}
  }
  if (!renderMailLink()) showLogin()
}

void start()
