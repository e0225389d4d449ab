/**
 * The web console at /console, end to end in headless Chromium (Debian's `chromium` package,
 * driven by playwright-core) against a real server on a free port: the page's own security
 * (CSP, the HttpOnly refresh cookie and its CSRF guard), and what each role does with it.
 * One browser serves the whole file; every actor gets its own context (its own cookie jar).
 *
 * Screenshots of the main pages are taken along the way, into $TMPDIR/auth-console-screenshots,
 * or into docs/console (where the README shows them) with UPDATE_SCREENSHOTS=1.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TOTP_PERIOD_MS, totp } from '../../harness/totp.ts'
import { type Api, api, type NewUser, newUser, register } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'
import { freePort, type SmtpSink, startSmtp } from '../support/smtp.ts'
import { rewriteStoredEvent } from '../support/tamper.ts'

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (path): path is string => Boolean(path && existsSync(path)),
)
if (!CHROMIUM) {
  console.warn(
    'test/browser/console.test.ts: SKIPPED — no Chromium at /usr/bin/chromium (apt-get install chromium, or set CHROMIUM_PATH)',
  )
}
const SUITE = CHROMIUM
  ? 'the web console in Chromium'
  : 'the web console in Chromium (skipped: no Chromium found; apt-get install chromium)'

const BOOTSTRAP = 'console-browser-bootstrap'
const SHOTS =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? join(import.meta.dirname, '..', '..', 'docs', 'console')
    : join(tmpdir(), 'auth-console-screenshots')
mkdirSync(SHOTS, { recursive: true })

// A loaded 2-core machine (the whole suite runs beside this file) needs room beyond the usual 30 s.
describe.skipIf(!CHROMIUM)(SUITE, { timeout: 90_000 }, () => {
  let server: TestServer
  /** The page's origin: `localhost`, which WebAuthn accepts as a relying party (an IP address it does not). */
  let site: string
  let smtp: SmtpSink
  let request: Api
  let browser: Browser
  let admin: NewUser & { id: number }
  let adminToken: string
  const contexts: BrowserContext[] = []
  /** What a page must never show: a CSP violation, a script error, a request to another origin. */
  const problems: string[] = []

  const apiLogin = async (user: { username: string; password: string }) =>
    request('POST', '/auth/login', { form: { username: user.username, password: user.password } })

  async function newPage(): Promise<Page> {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 800 },
      acceptDownloads: true,
    })
    contexts.push(context)
    // Fail on the step that hangs, well before the test's own timeout.
    context.setDefaultTimeout(20_000)
    const page = await context.newPage()
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
    page.on('console', (message) => {
      if (/Content Security Policy|Trusted Type/i.test(message.text()))
        problems.push(`CSP: ${message.text()}`)
    })
    page.on('request', (r) => {
      const url = new URL(r.url())
      if (!['data:', 'blob:'].includes(url.protocol) && url.origin !== site)
        problems.push(`third-party request: ${r.url()}`)
    })
    page.on('dialog', (dialog) => void dialog.accept())
    return page
  }

  const heading = (page: Page, text: string | RegExp) => page.locator('h1', { hasText: text })

  async function logIn(
    page: Page,
    user: { username: string; password: string },
    code?: string,
  ): Promise<void> {
    await page.goto(`${site}/console`)
    await page.locator('#login-form').waitFor()
    await page.getByLabel('Username').fill(user.username)
    await page.getByLabel('Password').fill(user.password)
    await page.getByRole('button', { name: 'Log in', exact: true }).click()
    if (code !== undefined) {
      await page.locator('#second-factor-form').waitFor()
      await page.getByLabel('Code').fill(code)
      await page.getByRole('button', { name: 'Verify' }).click()
    }
    await heading(page, 'Your profile').waitFor()
  }

  const go = async (page: Page, hash: string, title: string | RegExp): Promise<void> => {
    await page.evaluate((target) => {
      location.hash = target
    }, hash)
    await heading(page, title).waitFor()
  }

  /** Form controls a screen reader could not name: each needs a <label> (or aria-label). */
  const unlabelled = (page: Page) =>
    page.evaluate(() =>
      Array.from(document.querySelectorAll<HTMLInputElement>('input, select, textarea'))
        .filter((c) => !c.hidden && c.type !== 'hidden' && (c.labels?.length ?? 0) === 0 && !c.ariaLabel)
        .map((c) => c.outerHTML),
    )

  const shot = (page: Page, name: string) =>
    page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })

  /** Time steps already used per secret: a TOTP code is accepted once. */
  const usedSteps = new Map<string, number>()
  async function nextCode(secret: string): Promise<string> {
    const step = () => Math.floor(Date.now() / TOTP_PERIOD_MS)
    const wanted = Math.max(step(), (usedSteps.get(secret) ?? -1) + 1)
    // The service accepts one step of drift: wait only when two steps ahead.
    while (wanted > step() + 1) await new Promise((resolve) => setTimeout(resolve, 200))
    usedSteps.set(secret, wanted)
    return totp(secret, wanted)
  }

  /** The service at `site`, mailing to the test's SMTP server (again on the same port after a restart). */
  const startConsoleServer = (dataDir?: string) =>
    startServer(
      { ADMIN_BOOTSTRAP_TOKEN: BOOTSTRAP, PUBLIC_URL: site, SMTP_URL: `smtp://127.0.0.1:${smtp.port}` },
      dataDir,
      { port: Number(new URL(site).port) },
    )

  const refreshCookie = async (page: Page) =>
    (await page.context().cookies()).find((c) => c.name === 'console_refresh')

  beforeAll(async () => {
    smtp = await startSmtp()
    const port = await freePort()
    site = `http://localhost:${port}`
    server = await startConsoleServer()
    request = api(server.url)
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
    })
    const user = newUser('consoleadmin')
    const created = await request('POST', '/admin/register', {
      json: user,
      headers: { 'x-bootstrap-token': BOOTSTRAP },
    })
    expect(created.status).toBe(200)
    admin = { ...user, id: created.body.id }
    adminToken = (await apiLogin(admin)).body.access_token
  }, 60_000)

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined)
    await browser?.close()
    await server?.close()
    await smtp?.close()
  })

  it('serves the page under a strict CSP, with no inline script or style and nothing from another origin', async () => {
    const response = await fetch(`${server.url}/console`)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8')
    const csp = response.headers.get('content-security-policy') ?? ''
    for (const directive of [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "frame-ancestors 'none'",
      "object-src 'none'",
      "require-trusted-types-for 'script'",
    ])
      expect(csp).toContain(directive)
    expect(csp).not.toContain('unsafe-inline')
    expect(csp).not.toContain('unsafe-eval')
    expect(response.headers.get('x-frame-options')).toBe('DENY')
    const html = await response.text()
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)]
    expect(scripts.length).toBeGreaterThan(0)
    for (const [, attributes, body] of scripts) {
      expect(attributes).toMatch(/src="\/console\/assets\/[a-z/-]+\.ts"/)
      expect(body.trim()).toBe('')
    }
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=|javascript:|https?:\/\//)

    // The modules arrive as JavaScript, types stripped; nothing outside src/console is served.
    const module = await fetch(`${server.url}/console/assets/api.ts`)
    expect(module.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(module.headers.get('content-security-policy')).toBe(csp)
    expect(await module.text()).not.toMatch(/: Promise<|export type /)
    for (const path of [
      '/console/assets/nope.ts',
      '/console/assets/../api/console.ts',
      '/console/assets/%2e%2e/main.ts',
    ])
      expect((await fetch(`${server.url}${path}`)).status, path).toBe(404)
    expect((await fetch(`${server.url}/console`, { method: 'POST' })).status).toBe(405)

    // In the browser: the page loads clean, and an injected inline script does not run.
    const page = await newPage()
    await page.goto(`${site}/console`)
    await page.locator('#login-form').waitFor()
    const ran = await page.evaluate(() => {
      const script = document.createElement('script')
      try {
        script.textContent = 'window.injected = true'
      } catch {}
      document.body.append(script)
      return (window as unknown as { injected?: boolean }).injected === true
    })
    expect(ran).toBe(false)
    await shot(page, 'login')
    expect(problems.filter((p) => !p.startsWith('CSP'))).toEqual([])
    problems.length = 0

    // Keyboard only: the username field has the focus, Tab to the password, Enter submits;
    // then the focus is on the new page's heading.
    const user = newUser('keyboard')
    await register(request, user)
    await page.reload()
    await page.locator('#login-form').waitFor()
    expect(await unlabelled(page)).toEqual([])
    await page.keyboard.type(user.username)
    await page.keyboard.press('Tab')
    await page.keyboard.type(user.password)
    await page.keyboard.press('Enter')
    await heading(page, 'Your profile').waitFor()
    await page.waitForFunction(() => document.activeElement?.tagName === 'H1')
    expect(await unlabelled(page)).toEqual([])
    expect(problems).toEqual([])
  })

  it('keeps the refresh token in an HttpOnly, SameSite=Strict cookie of /console/api/refresh, guarded against CSRF', async () => {
    const user = newUser('cookie')
    await register(request, user)
    const page = await newPage()
    const loginAnswer = page.waitForResponse((r) => r.url().endsWith('/console/api/login'))
    await logIn(page, user)
    const answer = await loginAnswer
    expect(await answer.json()).not.toHaveProperty('refresh_token')
    const setCookie = (await answer.headerValue('set-cookie')) ?? ''
    expect(setCookie).toMatch(/^console_refresh=\d+\.[\w-]+; /)
    for (const attribute of ['Path=/console/api/refresh', 'HttpOnly', 'SameSite=Strict'])
      expect(setCookie).toContain(attribute)
    expect(setCookie).not.toContain('Secure') // plain http here; PUBLIC_URL https adds it (test/api/console.test.ts)

    const cookie = await refreshCookie(page)
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/console/api/refresh' })
    // Invisible to scripts, and the access token is in no storage either.
    expect(
      await page.evaluate(() => ({
        cookie: document.cookie,
        local: localStorage.length,
        session: sessionStorage.length,
      })),
    ).toEqual({ cookie: '', local: 0, session: 0 })

    // The cookie alone refreshes nothing: the CSRF header, an own Origin and same-origin fetch are needed.
    const refreshWith = (headers: Record<string, string>) =>
      fetch(`${server.url}/console/api/refresh`, {
        method: 'POST',
        headers: { cookie: `console_refresh=${cookie?.value}`, ...headers },
      })
    const refused = [
      await refreshWith({}),
      await refreshWith({ 'x-console-csrf': '1', origin: 'https://evil.example' }),
      await refreshWith({ 'x-console-csrf': '1', 'sec-fetch-site': 'cross-site' }),
      await refreshWith({ 'x-console-csrf': '1', 'sec-fetch-site': 'same-site' }),
    ]
    expect(refused.map((r) => r.status)).toEqual([403, 403, 403, 403])
    expect(refused.some((r) => r.headers.get('set-cookie'))).toBe(false)

    // A reload keeps the session through the cookie, which rotates.
    await page.reload()
    await heading(page, 'Your profile').waitFor()
    const rotated = await refreshCookie(page)
    expect(rotated?.value).not.toBe(cookie?.value)

    // Logging out revokes the session on the server and drops the cookie.
    await page.getByRole('button', { name: 'Log out' }).click()
    await page.getByText('You are logged out.').waitFor()
    expect(await refreshCookie(page)).toBeUndefined()
    const reuse = await request('POST', '/auth/token-refresh', { json: { refresh_token: rotated?.value } })
    expect(reuse.status).toBe(401)
    expect(problems).toEqual([])
  })

  it('enrols 2FA by reading the QR secret, shows the recovery codes once, then logs in with TOTP or a recovery code', async () => {
    const user = newUser('twofactor')
    await register(request, user)
    const page = await newPage()
    await logIn(page, user)
    await go(page, '#/security', 'Two-factor authentication')
    await page.getByRole('button', { name: 'Set up two-factor authentication' }).click()
    const qr = page.locator('#qr-code')
    await qr.waitFor()
    // The QR image really renders under the CSP (an SVG data: image).
    expect(await qr.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true)
    expect(await unlabelled(page)).toEqual([])
    const secret = ((await page.locator('#totp-secret').textContent()) ?? '').replaceAll(' ', '')
    expect(secret).toMatch(/^[A-Z2-7]{16,}$/)
    await shot(page, 'two-factor')
    await page.getByLabel('Code from the app').fill(await nextCode(secret))
    await page.getByRole('button', { name: 'Turn on' }).click()
    await page.locator('#recovery-codes li').nth(9).waitFor() // the codes come with the answer
    const codes = await page.locator('#recovery-codes li').allTextContents()
    expect(codes).toHaveLength(10)
    const done = page.getByRole('button', { name: 'Done' })
    expect(await done.isDisabled()).toBe(true)
    const downloading = page.waitForEvent('download')
    await page.getByRole('button', { name: 'Download' }).click()
    const saved = readFileSync(await (await downloading).path(), 'utf8')
    for (const code of codes) expect(saved).toContain(code)
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'])
    await page.getByRole('button', { name: 'Copy' }).click()
    await page.getByText('Copied to the clipboard.').waitFor()
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(codes.join('\n'))
    await shot(page, 'recovery-codes')
    await page.getByLabel('I have saved my recovery codes').check()
    await done.click()
    await heading(page, 'Your profile').waitFor()
    expect(await page.locator('.details').textContent()).toContain('2FA on')
    await page.getByLabel('Full name').fill('Ada Lovelace')
    await page.getByRole('button', { name: 'Save profile' }).click()
    await page.locator('#status', { hasText: 'Profile saved.' }).waitFor()
    await page.locator('.details', { hasText: 'Ada Lovelace' }).waitFor()
    await shot(page, 'profile')

    // Password, then the code from the app.
    await page.getByRole('button', { name: 'Log out' }).click()
    await page.locator('#login-form').waitFor()
    await page.getByLabel('Username').fill(user.username)
    await page.getByLabel('Password').fill(user.password)
    await page.getByRole('button', { name: 'Log in', exact: true }).click()
    await page.locator('#second-factor-form').waitFor()
    await shot(page, 'login-2fa')
    await page.getByLabel('Code').fill('000000')
    await page.getByRole('button', { name: 'Verify' }).click()
    await page
      .getByRole('alert')
      .filter({ hasText: /Invalid/ })
      .waitFor()
    await page.getByLabel('Code').fill(await nextCode(secret))
    await page.getByRole('button', { name: 'Verify' }).click()
    await heading(page, 'Your profile').waitFor()

    // Password, then a recovery code; this session passed 2FA and may turn it off.
    await page.getByRole('button', { name: 'Log out' }).click()
    await page.locator('#login-form').waitFor()
    await logIn(page, user, codes[3])
    await go(page, '#/security', 'Two-factor authentication')
    await page.getByRole('button', { name: 'Turn off two-factor authentication' }).click()
    await page.getByRole('button', { name: 'Set up two-factor authentication' }).waitFor()
    expect((await apiLogin(user)).body.requires_2fa).toBeUndefined()
    expect(problems).toEqual([])
  })

  it('passkeys: adds one through WebAuthn (a virtual authenticator), renames it, logs in with it, which passes 2FA', async () => {
    const user = newUser('passkey')
    await register(request, user)
    // 2FA on, so that only a session that passed it may add a passkey, and a passkey login must pass it.
    const token = (await apiLogin(user)).body.access_token
    const { secret } = (await request('GET', '/auth/generate-2fa-code', { token })).body
    expect(
      (await request('POST', '/auth/enable-2fa', { token, json: { code: await nextCode(secret) } })).status,
    ).toBe(200)

    const page = await newPage()
    // Chromium's own authenticator, driven over the DevTools protocol: resident keys, user verification.
    const devtools = await page.context().newCDPSession(page)
    await devtools.send('WebAuthn.enable')
    const { authenticatorId } = await devtools.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    })
    await logIn(page, user, await nextCode(secret))
    // The address is not confirmed yet: the profile says so and offers a new link (which the
    // service may refuse for a minute after the registration's mail).
    expect(await page.locator('.details').textContent()).toContain('email not confirmed')
    await page.locator('#resend-verification').click()
    await page.getByText(/A new link is on its way|sent moments ago/).waitFor()
    await go(page, '#/passkeys', 'Passkeys')
    await page.locator('#no-passkeys').waitFor()
    await page.getByLabel('Name (optional)').fill('Test laptop')
    await page.getByRole('button', { name: 'Add a passkey' }).click()
    await page.locator('#passkeys tbody tr', { hasText: 'Test laptop' }).waitFor()
    const { credentials } = await devtools.send('WebAuthn.getCredentials', { authenticatorId })
    expect(credentials).toHaveLength(1)
    expect(credentials[0].isResidentCredential).toBe(true)
    await page.getByLabel('New name for the passkey "Test laptop"').fill('Work laptop')
    await page.getByRole('button', { name: 'Rename' }).click()
    await page.locator('#passkeys tbody tr', { hasText: 'Work laptop' }).waitFor()
    expect(await unlabelled(page)).toEqual([])
    await shot(page, 'passkeys')

    // Log out, then in with the passkey alone: no username typed, no password, no code.
    await page.getByRole('button', { name: 'Log out' }).click()
    await page.getByText('You are logged out.').waitFor()
    const loginAnswer = page.waitForResponse((r) => r.url().endsWith('/console/api/passkey-login'))
    await page.getByRole('button', { name: 'Log in with a passkey' }).click()
    // The console comes back to the page it was on.
    await heading(page, 'Passkeys').waitFor()
    expect(await (await loginAnswer).json()).not.toHaveProperty('refresh_token')
    expect(await refreshCookie(page)).toBeDefined()
    // The session counts as two-factor: turning 2FA off is offered.
    await go(page, '#/security', 'Two-factor authentication')
    expect(await page.locator('#disable-2fa').isDisabled()).toBe(false)
    await go(page, '#/activity', 'Activity')
    await page.locator('#activity li[data-type="passkey_login"]').waitFor()
    await page.locator('#activity li[data-type="passkey_added"]').waitFor()
    const listed = await request('GET', '/auth/passkeys', { token })
    expect(listed.body).toMatchObject([{ name: 'Work laptop' }])
    expect(listed.body[0].last_used_at).not.toBeNull()

    // Removed from the console, the passkey logs in no more.
    await go(page, '#/passkeys', 'Passkeys')
    await page.getByRole('button', { name: 'Remove' }).click()
    await page.locator('#no-passkeys').waitFor()
    await page.getByRole('button', { name: 'Log out' }).click()
    await page.getByRole('button', { name: 'Log in with a passkey' }).click()
    await page
      .getByRole('alert')
      .filter({ hasText: /passkey/i })
      .waitFor()
    expect(await refreshCookie(page)).toBeUndefined()
    expect(problems).toEqual([])
  })

  it('mail links: confirms an email address, and resets a forgotten password from the console', async () => {
    const user = newUser('maillink')
    await register(request, user)
    const linkIn = async (subject: string): Promise<string> => {
      let link: string | undefined
      // Mail goes out after the answer, through a real SMTP server: give a loaded machine time.
      await expect
        .poll(
          () => {
            const mail = smtp.mails.findLast(
              (m) => m.envelopeTo.includes(user.email) && m.headers.subject === subject,
            )
            link = mail?.text.match(/https?:\/\/\S+#\/\S+/)?.[0]
            return link
          },
          { timeout: 15_000 },
        )
        .toBeDefined()
      return link as string
    }

    const page = await newPage()
    const confirmLink = await linkIn('Confirm your email address')
    expect(confirmLink).toMatch(new RegExp(`^${site}/console#/verify-email\\?token=`))
    await page.goto(confirmLink)
    await page.getByRole('button', { name: 'Confirm my email address' }).click()
    await page.getByText('Your email address is confirmed.').waitFor()
    // The spent token leaves the address bar.
    expect(page.url()).not.toContain('token=')
    await logIn(page, user)
    const details = await page.locator('.details').textContent()
    expect(details).toContain('email confirmed')
    expect(details).not.toContain('not confirmed')
    expect(await page.locator('#resend-verification').count()).toBe(0)
    await page.getByRole('button', { name: 'Log out' }).click()
    // Logging out ends with the login page; a link opened before that would be replaced by it.
    await page.getByText('You are logged out.').waitFor()

    // A used link says so.
    await page.goto(confirmLink)
    await page.getByRole('button', { name: 'Confirm my email address' }).click()
    await page
      .getByRole('alert')
      .filter({ hasText: /invalid|expired|used/i })
      .waitFor()

    await page.goto(`${site}/console`)
    await page.getByRole('button', { name: 'Forgot your password?' }).click()
    await page.getByLabel('Email').fill(user.email)
    await page.getByRole('button', { name: 'Send the link' }).click()
    await page.getByText('a mail with a link is on its way').waitFor()
    const resetLink = await linkIn('Reset your password')
    expect(resetLink).toMatch(new RegExp(`^${site}/console#/reset-password\\?token=`))
    await page.goto(resetLink)
    const newPassword = `${user.password}-renewed`
    await page.getByLabel('New password', { exact: true }).fill(newPassword)
    await page.getByLabel('Repeat the new password').fill(newPassword)
    await page.getByRole('button', { name: 'Set the new password' }).click()
    await page.getByText('Your password is changed').waitFor()
    expect(page.url()).not.toContain('token=')
    expect((await apiLogin(user)).status).toBe(401)
    await logIn(page, { username: user.username, password: newPassword })
    expect(problems).toEqual([])
  })

  it('lists sessions with this one marked; revoking another kills it, and "log out everywhere else" ends the rest', async () => {
    const user = newUser('sessions')
    await register(request, user)
    const mine = await newPage()
    const other = await newPage()
    await logIn(mine, user)
    await logIn(other, user)
    const otherId = Number((await refreshCookie(other))?.value.split('.')[0])
    const fromApi = (await apiLogin(user)).body.access_token

    await go(mine, '#/sessions', 'Sessions')
    const rows = mine.locator('#sessions tbody tr')
    await rows.nth(2).waitFor()
    expect(await rows.count()).toBe(3)
    expect(await mine.locator('#sessions tbody tr.current').count()).toBe(1)
    expect(await mine.locator('#sessions tbody tr.current').textContent()).toContain('this session')
    await shot(mine, 'sessions')

    await mine
      .locator(`#sessions tr[data-session-id="${otherId}"]`)
      .getByRole('button', { name: /Revoke/ })
      .click()
    await mine.locator(`#sessions tr[data-session-id="${otherId}"]`).waitFor({ state: 'detached' })
    // The other browser's next call fails, its refresh too: it is back at the login.
    await go(other, '#/activity', /Log in|Activity/)
    await other.getByText('Your session has ended').waitFor()
    await other.locator('#login-form').waitFor()

    await mine.getByRole('button', { name: 'Log out everywhere else' }).click()
    // The page renders the list again: wait for the new one (no rows while it loads), then count.
    await mine.waitForFunction(() => document.querySelectorAll('#sessions tbody tr').length === 1)
    expect(await mine.locator('#sessions tbody tr.current').count()).toBe(1)
    expect((await request('GET', '/protected', { token: fromApi })).status).toBe(401)
    expect(problems).toEqual([])
  })

  it('changes the password (the current one required), and shows the activity timeline with failed logins highlighted', async () => {
    const user = newUser('activity')
    await register(request, user)
    expect((await apiLogin({ ...user, password: 'wrong password!' })).status).toBe(401)
    const page = await newPage()
    await logIn(page, user)
    const changePassword = async (current: string, next: string) => {
      await page.locator('#password-form').getByLabel('Current password').fill(current)
      await page.getByLabel('New password', { exact: true }).fill(next)
      await page.getByLabel('Repeat the new password').fill(next)
      await page.getByRole('button', { name: 'Change password' }).click()
    }
    const newPassword = `${user.password}-renewed`
    await changePassword('not my password', newPassword)
    await page
      .locator('#password-form')
      .getByRole('alert')
      .filter({ hasText: /password/i })
      .waitFor()
    await changePassword(user.password, newPassword)
    await page.locator('#password-form .message.ok').waitFor()
    expect((await apiLogin(user)).status).toBe(401)
    expect((await apiLogin({ ...user, password: newPassword })).status).toBe(200)
    await go(page, '#/activity', 'Activity')
    const failed = page.locator('#activity li[data-type="login_failed"]')
    await failed.first().waitFor()
    expect(await failed.first().getAttribute('class')).toContain('unexpected')
    expect(await failed.first().textContent()).toContain('Failed login')
    expect(await page.locator('#activity li[data-type="login"]').first().getAttribute('class')).toBeNull()
    expect(await page.locator('#activity li[data-type="password_changed"]').count()).toBe(1)
    await shot(page, 'activity')
    expect(problems).toEqual([])
  })

  let deletedId = 0

  it('admin: searches, filters and pages users; locks a user who is then refused; unlocks, changes role, deletes', async () => {
    const crew: (NewUser & { id: number })[] = []
    for (let i = 0; i < 7; i++) {
      const user = newUser('crew')
      crew.push({ ...user, id: (await register(request, user)).id })
    }
    const victim = crew[0]
    const victimPage = await newPage()
    await logIn(victimPage, victim)

    const page = await newPage()
    await logIn(page, admin)
    await go(page, '#/users', 'Users')
    await page.getByLabel('Search').fill('crew_')
    await page.getByLabel('Per page').selectOption('10')
    await page.getByRole('button', { name: 'Search' }).click()
    await page.waitForFunction(() => location.hash.includes('q=crew_'))
    await page.locator('#users tbody tr').first().waitFor()
    await expect.poll(() => page.locator('#users tbody tr').count()).toBe(7)
    await shot(page, 'admin-users')
    expect(await unlabelled(page)).toEqual([])
    await go(page, '#/users?q=crew_&size=10&role=admin', 'Users')
    await page.locator('#no-users').waitFor()
    await go(page, '#/users?role=admin&size=10', 'Users')
    expect(await page.locator('#users tbody').textContent()).toContain(admin.username)
    // Paging: 7 matches, 5 a page.
    await go(page, '#/users?q=crew_&size=10', 'Users')
    await page.evaluate(() => {
      location.hash = '#/users?q=crew_&size=5'
    })
    await page.locator('#users tbody tr').nth(4).waitFor()
    await page.waitForFunction(() => document.querySelectorAll('#users tbody tr').length === 5)
    expect(await page.locator('#prev-page').isDisabled()).toBe(true)
    await page.locator('#next-page').click()
    await page.waitForFunction(() => document.querySelectorAll('#users tbody tr').length === 2)
    expect(await page.locator('#next-page').isDisabled()).toBe(true)
    await page.locator('#prev-page').click()
    await page.waitForFunction(() => document.querySelectorAll('#users tbody tr').length === 5)

    // Lock with a reason and a duration: the user's sessions end and logins are refused.
    await go(page, `#/users/${victim.id}`, victim.username)
    await page.getByLabel('Reason').fill('Suspicious activity reported')
    await page.getByLabel('Duration in minutes').fill('30')
    await page.getByRole('button', { name: 'Lock account' }).click()
    await page.locator('#unlock').waitFor()
    expect(await page.locator('#user-details').textContent()).toContain('locked')
    await shot(page, 'admin-user')
    expect(await unlabelled(page)).toEqual([])
    await go(victimPage, '#/sessions', /Log in|Sessions/)
    await victimPage.getByText('Your session has ended').waitFor()
    await victimPage.getByLabel('Username').fill(victim.username)
    await victimPage.getByLabel('Password').fill(victim.password)
    await victimPage.getByRole('button', { name: 'Log in', exact: true }).click()
    await victimPage
      .getByRole('alert')
      .filter({ hasText: /locked/i })
      .waitFor()
    expect((await apiLogin(victim)).status).toBe(423)

    await page.locator('#unlock').click()
    await page.getByRole('button', { name: 'Lock account' }).waitFor()
    expect((await apiLogin(victim)).status).toBe(200)

    await page.getByLabel('New role').selectOption('vendor')
    await page.getByRole('button', { name: 'Change role' }).click()
    await page.locator('#user-details dd', { hasText: /^vendor$/ }).waitFor()

    await page.locator('#deactivate').click()
    await page.locator('#activate').waitFor()
    expect((await apiLogin(victim)).status).toBe(403)
    await page.locator('#activate').click()
    await page.locator('#deactivate').waitFor()

    // Delete needs the username typed.
    const remove = page.getByRole('button', { name: 'Delete user' })
    await page.locator('#delete-confirm').fill('not the name')
    expect(await remove.isDisabled()).toBe(true)
    await page.locator('#delete-confirm').fill(victim.username)
    await remove.click()
    await heading(page, 'Users').waitFor()
    expect((await apiLogin(victim)).status).toBe(401)
    const listed = await request('GET', '/admin/users?limit=1000', { token: adminToken })
    expect(listed.body.map((u: { id: number }) => u.id)).not.toContain(victim.id)
    deletedId = victim.id
    expect(problems).toEqual([])
  })

  it('auditor: a history timeline verified event by event, checkpoints downloaded and verified, a tampered event flagged', async () => {
    const auditor = newUser('auditor')
    const auditorId = (await register(request, auditor)).id
    const promoted = await request('PUT', '/admin/user/role', {
      json: { user_id: auditorId, role: 'auditor' },
      token: adminToken,
    })
    expect(promoted.status).toBe(200)
    const subject = newUser('subject')
    const subjectId = (await register(request, subject)).id
    const session = (await apiLogin(subject)).body.access_token
    await request('PUT', '/auth/profile', { json: { full_name: 'Subject Person' }, token: session })

    const page = await newPage()
    await logIn(page, auditor)
    await go(page, '#/audit', 'Audit')
    await page.getByRole('button', { name: 'Verify the log' }).click()
    await page.locator('#log-verify-result .message.ok').waitFor()
    const downloading = page.waitForEvent('download')
    await page.getByRole('button', { name: 'Download checkpoint' }).click()
    const checkpointFile = await (await downloading).path()
    expect(readFileSync(checkpointFile, 'utf8')).toMatch(/^eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+\n$/)
    await page.locator('#checkpoint-file').setInputFiles(checkpointFile)
    await page.getByRole('button', { name: 'Verify checkpoint' }).click()
    await page.locator('#checkpoint-verify-result .message.ok').waitFor()
    await shot(page, 'audit')
    expect(await unlabelled(page)).toEqual([])

    // A deleted account's history: personal fields erased, every event verified.
    await go(page, `#/audit/users/${deletedId}`, `History of user ${deletedId}`)
    expect(await page.locator('#history .erased').count()).toBeGreaterThan(0)
    await page.getByRole('button', { name: 'Verify' }).click()
    await page.locator('#verify-summary .message.ok').waitFor()
    const events = await page.locator('#history > li').count()
    expect(await page.locator('#history .badge-ok', { hasText: 'chain intact' }).count()).toBe(events)
    expect(await page.locator('#history .badge-ok', { hasText: 'in signed tree head' }).count()).toBe(events)
    await shot(page, 'audit-history')

    // Someone with write access to the store rewrites the subject's registration.
    await server.stop()
    rewriteStoredEvent(
      server.dataDir,
      `user-${subjectId}`,
      'AccountRegistered',
      '"role":"user"',
      '"role":"admin"',
      false,
    )
    server = await startConsoleServer(server.dataDir)
    request = api(server.url)
    const after = await newPage()
    await logIn(after, auditor)
    await go(after, `#/audit/users/${subjectId}`, `History of user ${subjectId}`)
    await after.getByRole('button', { name: 'Verify' }).click()
    await after.locator('#verify-summary .message.error').waitFor()
    const tampered = after.locator(`#history li[data-stream="user-${subjectId}"][data-revision="0"]`)
    expect(await tampered.getAttribute('class')).toContain('broken')
    expect(await tampered.textContent()).toContain('tampered')
    expect(await after.locator('#verify-summary').textContent()).toContain(`user-${subjectId} at revision 0`)
    await shot(after, 'audit-tampered')
    expect(problems).toEqual([])
  })
})
