/**
 * The REST routes that other code names by method and path: the chatbot's replies point callers
 * at them. The routers' OpenAPI meta spreads these same objects (`...ROUTES.sessions`), so a
 * route moved in its router moves in every reply that names it. No imports: the app layer may
 * read this module without depending on the API.
 */
type RouteName = { method: 'GET' | 'POST' | 'PUT' | 'DELETE'; path: `/${string}` }

export const ROUTES = {
  generate2fa: { method: 'GET', path: '/auth/generate-2fa-code' },
  enable2fa: { method: 'POST', path: '/auth/enable-2fa' },
  disable2fa: { method: 'POST', path: '/auth/disable-2fa' },
  test2fa: { method: 'GET', path: '/auth/test-2fa' },
  resetRequest: { method: 'POST', path: '/auth/password-reset-request' },
  reset: { method: 'POST', path: '/auth/password-reset' },
  profile: { method: 'PUT', path: '/auth/profile' },
  verifyEmail: { method: 'POST', path: '/auth/verify-email' },
  resendVerification: { method: 'POST', path: '/auth/verify-email/resend' },
  sessions: { method: 'GET', path: '/auth/sessions' },
  revokeSession: { method: 'DELETE', path: '/auth/sessions/{session_id}' },
  activity: { method: 'GET', path: '/auth/activity' },
  deleteUser: { method: 'DELETE', path: '/admin/user/{user_id}' },
} as const satisfies Record<string, RouteName>

/** `GET /auth/sessions`: how replies and `suggested_endpoints` name a route. */
export const endpoint = (route: RouteName): string => `${route.method} ${route.path}`
