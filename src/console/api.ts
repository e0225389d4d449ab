/**
 * The console's side of the session: the access token lives in this module's memory only; the
 * refresh token is an HttpOnly cookie that only `/console/api/refresh` receives, so no script
 * here (or injected here) can read it. Every API call carries the access token; a 401 triggers
 * one refresh through the cookie (one at a time, however many calls failed) and one retry.
 */

import { usePasskey } from './webauthn.ts'

export type Role = 'user' | 'vendor' | 'admin' | 'auditor'

export type User = {
  id: number
  username: string
  email: string
  full_name: string | null
  role: Role
  is_active: boolean
  is_locked: boolean
  is_2fa_enabled: boolean
  email_verified: boolean
  pending_email: string | null
  created_at: string
}

export type Passkey = { id: number; name: string; created_at: string; last_used_at: string | null }

export type Claims = { sub: string; sid: string; role: Role; amr: string[]; exp: number }

export type Session = {
  id: number
  created_at: string
  last_used_at: string
  expires_at: string
  ip_address: string | null
  user_agent: string | null
  is_current: boolean
}

/** The console routes require this header: a cross-origin page cannot send it without a preflight. */
const CSRF = { 'x-console-csrf': '1' }

export class ApiError extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.name = 'ApiError'
    this.status = status
  }
}

let accessToken: string | null = null
let refreshing: Promise<boolean> | null = null
const sessionLostListeners: (() => void)[] = []

/** Called when the session ended under the page (revoked elsewhere, expired, locked). */
export function onSessionLost(listener: () => void): void {
  sessionLostListeners.push(listener)
}

export function claims(): Claims | null {
  if (!accessToken) return null
  try {
    const payload = accessToken.split('.')[1].replaceAll('-', '+').replaceAll('_', '/')
    return JSON.parse(atob(payload)) as Claims
  } catch {
    return null
  }
}

/** A readable sentence from the API's `{"detail"}`, a string or FastAPI's validation list. */
function describe(status: number, body: unknown): string {
  const detail = (body as { detail?: unknown } | null)?.detail
  if (typeof detail === 'string') return detail
  if (Array.isArray(detail)) {
    return detail
      .map((issue: { loc?: unknown[]; msg?: string }) => {
        const field = (issue.loc ?? []).slice(1).join('.')
        return field ? `${field.replaceAll('_', ' ')}: ${issue.msg}` : (issue.msg ?? 'invalid')
      })
      .join('; ')
  }
  if (status === 429) return 'Too many attempts; wait a minute and try again.'
  return `The service answered ${status}`
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text()
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

async function consoleRoute(
  method: string,
  path: string,
  json?: unknown,
  bearer?: string,
): Promise<Response> {
  const headers: Record<string, string> = { ...CSRF }
  if (json !== undefined) headers['content-type'] = 'application/json'
  if (bearer) headers.authorization = `Bearer ${bearer}`
  return fetch(path, {
    method,
    headers,
    body: json === undefined ? undefined : JSON.stringify(json),
    credentials: 'same-origin',
    cache: 'no-store',
  })
}

export type LoginOutcome = { kind: 'done' } | { kind: 'second_factor'; challenge: string }

export async function login(username: string, password: string): Promise<LoginOutcome> {
  const response = await consoleRoute('POST', '/console/api/login', { username, password })
  const body = (await readBody(response)) as { access_token?: string; requires_2fa?: boolean }
  if (!response.ok || !body.access_token) throw new ApiError(response.status, describe(response.status, body))
  if (body.requires_2fa) return { kind: 'second_factor', challenge: body.access_token }
  accessToken = body.access_token
  return { kind: 'done' }
}

export async function verifySecondFactor(challenge: string, code: string): Promise<void> {
  const response = await consoleRoute('POST', '/console/api/verify-2fa', { code }, challenge)
  const body = (await readBody(response)) as { access_token?: string }
  if (!response.ok || !body.access_token) throw new ApiError(response.status, describe(response.status, body))
  accessToken = body.access_token
}

/** Logs in with a passkey (of this username, or any discoverable one when it is empty). */
export async function passkeyLogin(username: string): Promise<void> {
  const optionsResponse = await fetch('/auth/passkeys/login/options', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(username ? { username } : {}),
    credentials: 'omit',
    cache: 'no-store',
  })
  const options = await readBody(optionsResponse)
  if (!optionsResponse.ok)
    throw new ApiError(optionsResponse.status, describe(optionsResponse.status, options))
  const assertion = await usePasskey(options as Record<string, unknown>)
  const response = await consoleRoute('POST', '/console/api/passkey-login', { response: assertion })
  const body = (await readBody(response)) as { access_token?: string }
  if (!response.ok || !body.access_token) throw new ApiError(response.status, describe(response.status, body))
  accessToken = body.access_token
}

/** A new access token from the refresh cookie; false when there is no (live) console session. */
export function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      const response = await consoleRoute('POST', '/console/api/refresh')
      if (!response.ok) {
        accessToken = null
        return false
      }
      accessToken = ((await response.json()) as { access_token: string }).access_token
      return true
    } catch {
      return false
    } finally {
      refreshing = null
    }
  })()
  return refreshing
}

/** Revokes this session on the server and drops the cookie; the page forgets its token. */
export async function logout(): Promise<void> {
  const token = accessToken
  accessToken = null
  await consoleRoute('DELETE', '/console/api/refresh', undefined, token ?? undefined).catch(() => undefined)
}

/** Forgets the session locally (it was already revoked on the server). */
export function forget(): void {
  accessToken = null
}

export type CallOptions = { json?: unknown; query?: Record<string, string | number | undefined | null> }

/** An API call with the access token; one refresh and retry on 401, then the session is lost. */
export async function api<T>(method: string, path: string, options: CallOptions = {}): Promise<T> {
  const { body } = await apiResponse(method, path, options)
  return body as T
}

export async function apiResponse(
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<{ body: unknown; headers: Headers }> {
  let target = path
  if (options.query) {
    const query = new URLSearchParams()
    for (const [key, value] of Object.entries(options.query))
      if (value !== undefined && value !== null && value !== '') query.set(key, String(value))
    if ([...query].length > 0) target += `?${query}`
  }
  const send = () => {
    const headers: Record<string, string> = {}
    if (accessToken) headers.authorization = `Bearer ${accessToken}`
    if (options.json !== undefined) headers['content-type'] = 'application/json'
    return fetch(target, {
      method,
      headers,
      body: options.json === undefined ? undefined : JSON.stringify(options.json),
      credentials: 'omit',
      cache: 'no-store',
    })
  }
  let response = await send()
  if (response.status === 401) {
    // An expired access token, or a dead session: only a failed refresh tells the second. A 401
    // after a successful refresh is the call's own answer (a wrong current password).
    if (!(await refresh())) {
      accessToken = null
      for (const listener of sessionLostListeners) listener()
      throw new ApiError(401, 'Your session has ended. Log in again.')
    }
    response = await send()
  }
  const body = await readBody(response)
  if (!response.ok) throw new ApiError(response.status, describe(response.status, body))
  return { body, headers: response.headers }
}

/** The account behind the session: `/protected` names it, `/auth/verify-user` describes it. */
export async function whoAmI(): Promise<User> {
  const hello = await api<{ message: string; user_id: number }>('GET', '/protected')
  const username = hello.message.replace(/^Hello, /, '')
  return api<User>('GET', `/auth/verify-user/${encodeURIComponent(username)}`)
}

/** One user by id, for admins and auditors: the keyset page that starts right before it. */
export async function userById(id: number): Promise<User | null> {
  const page = await api<User[]>('GET', '/admin/users', { query: { after_id: id - 1, limit: 1 } })
  return page[0]?.id === id ? page[0] : null
}
