/** Configuration from the environment, with defaults that work on a laptop (API.md). */
import { resolve } from 'node:path'

export type Config = {
  port: number
  host: string
  dataDir: string
  eventStoreUrl: string | null
  /** PostgreSQL for the data keys when the events are elsewhere (EventStoreDB). */
  dataKeysUrl: string | null
  adminBootstrapToken: string | null
  smtpUrl: string | null
  mailFrom: string
  accessTokenTtlSeconds: number
  refreshTokenTtlSeconds: number
  jwtIssuer: string
  jwtAudience: string
  rateLimitPerMinute: number
  trustProxy: boolean
  logLevel: 'debug' | 'info' | 'warn' | 'error'
  /** `FULL` also survives power loss; `NORMAL` survives a crash of the process. */
  sqliteSynchronous: 'NORMAL' | 'FULL'
  masterKey: string | null
  /** Base64 of 32 bytes: the HMAC key of uniqueness claims; every instance of a store needs the same. */
  uniquenessSecret: Uint8Array | null
  signingKeyPem: string | null
  verifyPublicKeysPem: string | null
  publicUrl: string
  /** Minutes between signed checkpoints written to DATA_DIR/checkpoints; 0 turns them off. */
  checkpointIntervalMinutes: number
  /** When set, `/metrics` needs it as a bearer token. */
  metricsToken: string | null
  /** A refresh token rotated at most this long ago is not a reuse (two tabs refreshing at once). */
  refreshReuseGraceSeconds: number
  /** Absolute session lifetime from the login, whatever the refreshes. */
  sessionMaxAgeSeconds: number
  /** How long a request with X-Consistency-Position waits for the read models before a 503. */
  consistencyWaitMs: number
  /** WebAuthn relying party id (a domain) and the origins passkey ceremonies may come from. */
  rpId: string
  rpOrigins: string[]
  /** How long a mailed email verification token works. */
  emailVerificationTtlSeconds: number
  /** Login needs a verified address, and a change of address takes effect when confirmed. */
  requireVerifiedEmail: boolean
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min)
    throw new ConfigError(`${name} must be an integer ≥ ${min}, got "${raw}"`)
  return value
}

function oneOf<T extends string>(
  env: NodeJS.ProcessEnv,
  name: string,
  allowed: readonly T[],
  fallback: T,
): T {
  const raw = (env[name] ?? '').trim()
  if (raw === '') return fallback
  const match = allowed.find((a) => a.toLowerCase() === raw.toLowerCase())
  if (!match) throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`)
  return match
}

function secret32(env: NodeJS.ProcessEnv, name: string): Uint8Array | null {
  const raw = env[name]?.trim()
  if (!raw) return null
  const bytes = Buffer.from(raw, 'base64')
  if (bytes.length !== 32 || bytes.toString('base64').replace(/=+$/, '') !== raw.replace(/=+$/, ''))
    throw new ConfigError(`${name} must be the base64 of 32 bytes (e.g. openssl rand -base64 32)`)
  return new Uint8Array(bytes)
}

/**
 * `RP_ID` and `RP_ORIGINS`, by default the host and the origin of `PUBLIC_URL` (`localhost` for a
 * loopback address). Browsers accept an RP id only as a domain (`localhost` included), not an IP
 * address, and need https except on localhost.
 */
function relyingParty(env: NodeJS.ProcessEnv, publicUrl: string): { rpId: string; rpOrigins: string[] } {
  let fallback: URL
  try {
    fallback = new URL(publicUrl)
  } catch {
    if (env.PUBLIC_URL?.trim())
      throw new ConfigError(`PUBLIC_URL must be an absolute URL, got "${publicUrl}"`)
    // Derived from a HOST that makes no URL (an unbracketed IPv6 address): passkeys on localhost.
    fallback = new URL('http://localhost')
  }
  // A loopback or unspecified address (the default PUBLIC_URL is http://127.0.0.1:8000) cannot be
  // an RP id: passkeys work on the same machine through the name localhost.
  if (/^(127\.\d+\.\d+\.\d+|0\.0\.0\.0|\[::1?\])$/.test(fallback.hostname)) fallback.hostname = 'localhost'
  const rpId = (env.RP_ID?.trim() || fallback.hostname).toLowerCase()
  if (
    !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(rpId) &&
    !/^\[.*\]$/.test(rpId)
  )
    throw new ConfigError(`RP_ID must be a domain name (no scheme, port or path), got "${env.RP_ID}"`)
  const rawOrigins = env.RP_ORIGINS?.trim()
  const rpOrigins = rawOrigins
    ? rawOrigins
        .split(',')
        .map((o) => o.trim())
        .filter((o) => o !== '')
    : [fallback.origin]
  for (const origin of rpOrigins) {
    let parsed: URL | null = null
    try {
      parsed = new URL(origin)
    } catch {}
    if (!parsed || parsed.origin !== origin)
      throw new ConfigError(
        `RP_ORIGINS must be comma-separated origins like https://example.com (scheme, host, optional port; no path), got "${origin}"`,
      )
  }
  if (rpOrigins.length === 0) throw new ConfigError('RP_ORIGINS must name at least one origin')
  return { rpId, rpOrigins }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const eventStoreUrl = env.EVENT_STORE_URL?.trim() || null
  if (
    eventStoreUrl &&
    !/^(esdb|kurrentdb|esdb\+discover|kurrentdb\+discover|postgres|postgresql):\/\//.test(eventStoreUrl)
  ) {
    throw new ConfigError(
      'EVENT_STORE_URL must start with esdb://, kurrentdb://, postgres:// or postgresql://',
    )
  }
  const dataKeysUrl = env.DATA_KEYS_URL?.trim() || null
  if (dataKeysUrl && !/^postgres(ql)?:\/\//.test(dataKeysUrl))
    throw new ConfigError('DATA_KEYS_URL must start with postgres:// or postgresql://')
  const port = integer(env, 'PORT', 8000, 0)
  const host = env.HOST?.trim() || '127.0.0.1'
  const publicUrl = env.PUBLIC_URL?.trim() || `http://${host}:${port}`
  return {
    port,
    host,
    dataKeysUrl,
    dataDir: resolve(env.DATA_DIR?.trim() || './data'),
    eventStoreUrl,
    adminBootstrapToken: env.ADMIN_BOOTSTRAP_TOKEN || null,
    smtpUrl: env.SMTP_URL?.trim() || null,
    mailFrom: env.MAIL_FROM?.trim() || 'Auth Service <no-reply@localhost>',
    accessTokenTtlSeconds: integer(env, 'ACCESS_TOKEN_TTL_SECONDS', 900, 1),
    refreshTokenTtlSeconds: integer(env, 'REFRESH_TOKEN_TTL_SECONDS', 2_592_000, 1),
    jwtIssuer: env.JWT_ISSUER?.trim() || 'auth-service',
    jwtAudience: env.JWT_AUDIENCE?.trim() || 'auth-service',
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 60, 0),
    trustProxy: oneOf(env, 'TRUST_PROXY', ['0', '1'], '0') === '1',
    logLevel: oneOf(env, 'LOG_LEVEL', ['debug', 'info', 'warn', 'error'] as const, 'info'),
    sqliteSynchronous: oneOf(env, 'SQLITE_SYNCHRONOUS', ['NORMAL', 'FULL'] as const, 'NORMAL'),
    masterKey: env.MASTER_KEY || null,
    uniquenessSecret: secret32(env, 'UNIQUENESS_SECRET'),
    signingKeyPem: env.JWT_PRIVATE_KEY_PEM || null,
    verifyPublicKeysPem: env.JWT_VERIFY_PUBLIC_KEYS_PEM || null,
    publicUrl,
    checkpointIntervalMinutes: integer(env, 'CHECKPOINT_INTERVAL_MINUTES', 60, 0),
    metricsToken: env.METRICS_TOKEN || null,
    refreshReuseGraceSeconds: integer(env, 'REFRESH_REUSE_GRACE_SECONDS', 10, 0),
    sessionMaxAgeSeconds: integer(env, 'SESSION_MAX_AGE_SECONDS', 2_592_000, 1),
    consistencyWaitMs: integer(env, 'CONSISTENCY_WAIT_MS', 5000, 0),
    ...relyingParty(env, publicUrl),
    emailVerificationTtlSeconds: integer(env, 'EMAIL_VERIFICATION_TTL_SECONDS', 86_400, 1),
    requireVerifiedEmail: oneOf(env, 'REQUIRE_VERIFIED_EMAIL', ['0', '1'], '0') === '1',
  }
}
