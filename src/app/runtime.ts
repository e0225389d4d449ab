/** Wires the adapters for one running service: event store, keys, read models, app services. */

import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type pg from 'pg'
import { PASSKEY_CHALLENGE_TTL_SECONDS } from '../../domain/passkeys.ts'
import { projections } from '../../projections/index.ts'
import { walkInWorker } from '../audit/verify-off-loop.ts'
import { type Config, ConfigError } from '../config.ts'
import type { EventStore } from '../eventstore/event-store.ts'
import type { PostgresEventStore } from '../eventstore/postgres-event-store.ts'
import { openOwnedDatabase, openSqliteEventStore } from '../eventstore/sqlite-event-store.ts'
import { type Logger, silentLogger } from '../logger.ts'
import { createPasskeyQueries } from '../readstore/passkey-queries.ts'
import { createProjectionRunner } from '../readstore/projection-runner.ts'
import { createQueries } from '../readstore/queries.ts'
import { ReadStore } from '../readstore/read-store.ts'
import { createTokenService } from '../security/access-tokens.ts'
import { type DataKeyStore, openDataKeyStore } from '../security/data-keys.ts'
import { createPasswordHasher, type PasswordHasher } from '../security/passwords.ts'
import { loadOrCreateSecret } from '../security/secrets.ts'
import { loadSigningKeys } from '../security/signing-keys.ts'
import { createChallengeService } from '../security/webauthn-challenges.ts'
import { createAccessGate } from './access-gate.ts'
import { createAccounts } from './accounts.ts'
import { createAdministration } from './administration.ts'
import { createAfterAnswer } from './after-answer.ts'
import { createAudit } from './audit.ts'
import { createAuthentication } from './authentication.ts'
import { createChatbot } from './chatbot.ts'
import { createCommandHandler } from './command-handler.ts'
import { createEmailVerification } from './email-verification.ts'
import { createEventCodec } from './event-codec.ts'
import { createLoginThrottle, type LoginThrottle } from './login-throttle.ts'
import { createMailer } from './mailer.ts'
import { createPasskeys } from './passkeys.ts'
import { createPasswordReset } from './password-reset.ts'
import { createPostgresLoginThrottle } from './postgres-login-throttle.ts'
import { createRosterLock } from './roster-lock.ts'
import { checkSettingFingerprints, storeIdentity } from './settings-fingerprint.ts'
import { accountIdOf, dataKeyOwner } from './streams.ts'
import { createTwoFactor } from './two-factor.ts'
import {
  createPostgresClaimIndex,
  createStreamClaimIndex,
  createTableClaimIndex,
  createUniqueClaims,
} from './unique-claims.ts'

export class DataDirError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'DataDirError'
  }
}

/**
 * Where uniqueness claims live: a table in the embedded store's file (a second connection to
 * it) or in the shared PostgreSQL database, or the claim streams on EventStoreDB. `compact`
 * flushes deleted claims out of SQLite's WAL.
 */
async function openClaimIndex(config: Config, store: EventStore, now: () => Date) {
  if ('pool' in store) {
    return { index: await createPostgresClaimIndex(store.pool as pg.Pool), compact() {}, close() {} }
  }
  if (config.eventStoreUrl) return { index: createStreamClaimIndex(store, now), compact() {}, close() {} }
  const db = openOwnedDatabase(join(config.dataDir, 'events.db'), 'event store')
  db.exec('PRAGMA busy_timeout = 5000')
  return {
    index: createTableClaimIndex(db),
    compact: () => db.exec('PRAGMA wal_checkpoint(TRUNCATE)'),
    close: () => db.close(),
  }
}

export type EventStoreSettings = Pick<Config, 'dataDir' | 'eventStoreUrl' | 'sqliteSynchronous'>

export async function openEventStore(config: EventStoreSettings): Promise<EventStore> {
  if (!config.eventStoreUrl) {
    return openSqliteEventStore(join(config.dataDir, 'events.db'), { synchronous: config.sqliteSynchronous })
  }
  if (/^postgres(ql)?:\/\//i.test(config.eventStoreUrl)) {
    const { openPostgresEventStore } = await import('../eventstore/postgres-event-store.ts')
    return openPostgresEventStore(config.eventStoreUrl)
  }
  const { openEsdbEventStore } = await import('../eventstore/esdb-event-store.ts')
  return openEsdbEventStore(config.eventStoreUrl)
}

/**
 * The data keys: on PostgreSQL, shared by every instance in the event store's database (MASTER_KEY
 * required); otherwise `<dataDir>/keys.db`. On failure the event store is closed.
 */
export async function openDataKeys(
  config: Config,
  store: EventStore,
  log: Logger = silentLogger,
): Promise<DataKeyStore> {
  let ownPool: pg.Pool | null = null
  try {
    // Written again when an instance projects the deletion or starts (see openRuntime).
    const onError = (error: unknown, owner: string) =>
      log.error('data key tombstone not written', { owner, error: (error as Error).message })
    const { openPostgresDataKeyStore } = await import('../security/postgres-data-keys.ts')
    if ('pool' in store) {
      const shared = store as PostgresEventStore
      return await openPostgresDataKeyStore({
        pool: shared.pool,
        url: shared.url,
        masterKey: config.masterKey,
        onError,
      })
    }
    if (!config.dataKeysUrl)
      return openDataKeyStore({ dataDir: config.dataDir, masterKey: config.masterKey ?? undefined })
    // Events elsewhere (EventStoreDB), keys in PostgreSQL: an append-only stream cannot delete one.
    const { openPostgresPool, redactPostgresUrl } = await import('../eventstore/postgres-event-store.ts')
    const pool = openPostgresPool(config.dataKeysUrl)
    ownPool = pool
    const keys = await openPostgresDataKeyStore({
      pool,
      url: redactPostgresUrl(config.dataKeysUrl),
      masterKey: config.masterKey,
      onError,
    })
    return {
      ...keys,
      async close() {
        await keys.close()
        await pool.end()
      },
    }
  } catch (error) {
    await ownPool?.end().catch(() => {})
    await store.close().catch(() => {})
    throw error
  }
}

export async function openRuntime(
  config: Config,
  options: {
    now?: () => Date
    passwords?: PasswordHasher
    log?: Logger
    /** Verify walks longer than this many events run in a worker (tests lower it). */
    verifyOffLoopAbove?: number
  } = {},
) {
  const now = options.now ?? (() => new Date())
  // The token check reads the clock on every request: milliseconds, without a Date each time.
  const nowMs = options.now ? () => now().getTime() : Date.now
  const log = options.log ?? silentLogger
  try {
    mkdirSync(config.dataDir, { recursive: true })
  } catch (error) {
    throw new DataDirError(`DATA_DIR ${config.dataDir} cannot be created: ${(error as Error).message}`, {
      cause: error,
    })
  }
  const store = await openEventStore(config)
  const dataKeys = await openDataKeys(config, store, log)
  if ('pool' in store && !config.signingKeyPem) {
    // A key generated per DATA_DIR would make every instance refuse the others' tokens.
    await dataKeys.close()
    await store.close()
    throw new ConfigError(
      'JWT_PRIVATE_KEY_PEM is required when the event store is PostgreSQL (EVENT_STORE_URL): every ' +
        'instance must sign and verify tokens with the same key (openssl genpkey -algorithm ed25519)',
    )
  }
  const codec = createEventCodec(dataKeys)
  const readStore = new ReadStore(join(config.dataDir, 'read-models.db'), projections)
  readStore.belongTo(await storeIdentity(store))
  const runner = createProjectionRunner({
    store,
    readStore,
    codec,
    onError: (error) => log.error('projections stopped', { error: (error as Error).message }),
  })
  // Erasure: the data key goes as soon as the deletion is projected (also on replays and
  // on instances that only follow the store).
  runner.onApplied((event) => {
    const userId = event.type === 'AccountDeleted' ? accountIdOf(event.stream_id) : null
    if (userId !== null) dataKeys.destroy(dataKeyOwner(userId))
  })
  await runner.start()
  const queries = createQueries(readStore.db)
  // A crash between projecting a deletion and destroying its key must not leave the key behind.
  const erasedOwners = queries.erasedUserIds().map(dataKeyOwner)
  await dataKeys.preload(erasedOwners)
  for (const owner of erasedOwners) {
    if (!dataKeys.isErased(owner)) dataKeys.destroy(owner)
  }
  const commands = createCommandHandler(store, codec, now)
  const uniquenessSecret = config.uniquenessSecret ?? loadOrCreateSecret(config.dataDir, 'uniqueness')
  const signingKeys = await loadSigningKeys({
    dataDir: config.dataDir,
    privateKeyPem: config.signingKeyPem ?? undefined,
    verifyPublicKeysPem: config.verifyPublicKeysPem ?? undefined,
  })
  const acceptedKids = signingKeys.jwks().keys.map((key) => key.kid as string)
  await checkSettingFingerprints(
    store,
    { UNIQUENESS_SECRET: uniquenessSecret },
    now,
    // A shared store: every instance must accept the tokens of the others.
    config.eventStoreUrl ? { current: signingKeys.current.kid, accepted: acceptedKids } : undefined,
  )
  readStore.belongTo(await storeIdentity(store)) // a new store has an identity from here on
  const claimIndex = await openClaimIndex(config, store, now)
  const claims = createUniqueClaims(claimIndex.index, store, uniquenessSecret, now)
  const passwords = options.passwords ?? createPasswordHasher()
  // Instances on one PostgreSQL database share their counters.
  const throttle: LoginThrottle =
    'pool' in store
      ? await createPostgresLoginThrottle(store.pool as pg.Pool, nowMs)
      : createLoginThrottle(nowMs)
  const afterAnswer = createAfterAnswer(log)
  // An admin's unlock lifts the throttle of every client on that account: an admin can always recover.
  runner.onApplied((event) => {
    const userId = event.type === 'AccountUnlocked' ? accountIdOf(event.stream_id) : null
    const user = userId === null ? undefined : queries.userById(userId)
    if (!user) return
    throttle.forgetUsername(user.username).catch((error: unknown) => {
      log.error('lifting the login throttle failed', { error: (error as Error).message })
    })
  })
  const mailer = createMailer({ smtpUrl: config.smtpUrl, from: config.mailFrom, log })
  const emailVerification = createEmailVerification({
    commands,
    runner,
    claims,
    mailer,
    afterAnswer,
    publicUrl: config.publicUrl,
    ttlSeconds: config.emailVerificationTtlSeconds,
    requireVerified: config.requireVerifiedEmail,
    now,
  })
  const accounts = createAccounts({
    store,
    commands,
    runner,
    queries,
    claims,
    passwords,
    throttle,
    emailVerification,
    now,
  })
  const tokens = createTokenService({
    keys: signingKeys,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    accessTtlSeconds: config.accessTokenTtlSeconds,
    now: nowMs,
  })
  const authentication = createAuthentication({
    store,
    commands,
    runner,
    queries,
    passwords,
    tokens,
    refreshTtlSeconds: config.refreshTokenTtlSeconds,
    refreshReuseGraceSeconds: config.refreshReuseGraceSeconds,
    sessionMaxAgeSeconds: config.sessionMaxAgeSeconds,
    throttle,
    afterAnswer,
    requireVerifiedEmail: config.requireVerifiedEmail,
    onUnverifiedEmail: emailVerification.afterRefusedLogin,
    now,
  })
  const gate = createAccessGate(tokens, queries, runner, nowMs)
  const bootstrapToken = config.adminBootstrapToken ?? randomBytes(24).toString('base64url')
  const administration = createAdministration({
    accounts,
    commands,
    queries,
    claims,
    // After an erasure: deleted read-model rows and claims leave the WAL files too.
    compactReadModels: () => {
      readStore.db.exec('PRAGMA wal_checkpoint(TRUNCATE)')
      claimIndex.compact()
    },
    bootstrapToken,
    roster: createRosterLock(store, now),
    catchUp: async () => runner.waitFor(await store.headPosition()),
    now,
  })
  if (!config.adminBootstrapToken && !queries.hasAdmin()) {
    log.warn('no admin yet: create one with POST /admin/register and this one-time X-Bootstrap-Token', {
      bootstrap_token: bootstrapToken,
    })
  }
  const audit = createAudit({
    store,
    codec,
    tokens,
    tree: readStore.tree,
    sessionIdsOf: queries.sessionIdsOf,
    now,
    walkOffLoop: (range) => walkInWorker(config, range),
    offLoopAbove: options.verifyOffLoopAbove,
  })
  const twoFactor = createTwoFactor({ commands, runner, issuer: config.jwtIssuer, now })
  const passkeys = createPasskeys({
    commands,
    runner,
    queries,
    passkeyQueries: createPasskeyQueries(readStore.db),
    authentication,
    challenges: createChallengeService({
      keys: signingKeys,
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
      ttlSeconds: PASSKEY_CHALLENGE_TTL_SECONDS,
      now: nowMs,
    }),
    throttle,
    rpId: config.rpId,
    rpOrigins: config.rpOrigins,
    rpName: config.jwtIssuer,
    bindingSecret: uniquenessSecret,
    requireVerifiedEmail: config.requireVerifiedEmail,
    onUnverifiedEmail: emailVerification.afterRefusedLogin,
    now,
  })
  const passwordReset = createPasswordReset({
    commands,
    runner,
    queries,
    passwords,
    mailer,
    afterAnswer,
    publicUrl: config.publicUrl,
    now,
  })

  return {
    config,
    log,
    store,
    dataKeys,
    codec,
    readStore,
    runner,
    queries,
    commands,
    claims,
    passwords,
    accounts,
    signingKeys,
    tokens,
    authentication,
    afterAnswer,
    gate,
    administration,
    audit,
    mailer,
    emailVerification,
    twoFactor,
    passkeys,
    passwordReset,
    chatbot: createChatbot({
      queries,
      now,
      verifiedEmailRequired: config.requireVerifiedEmail,
      onIntent: (intent) => log.debug('chatbot intent', { intent }),
    }),
    now,
    async close(): Promise<void> {
      // Work that runs after its answer went out: failed logins, reset requests.
      await afterAnswer.settled()
      await runner.stop()
      await mailer.close()
      await passwords.close()
      claimIndex.close()
      // Pending tombstone writes of a shared key store go through the event store's pool.
      await dataKeys.close()
      await store.close()
      readStore.close()
    },
  }
}

export type Runtime = Awaited<ReturnType<typeof openRuntime>>
