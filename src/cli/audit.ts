/**
 * The auditors' command line, reading the same store and keys as the service (DATA_DIR or
 * EVENT_STORE_URL):
 *   npm run audit -- history <user_id>
 *   npm run audit -- state <user_id> --as-of <ISO timestamp>
 *   npm run audit -- verify [--checkpoint <file>]
 *   npm run audit -- checkpoint [--out <file>]
 *   npm run audit -- rebuild            (stop the service first: it rewrites the read models)
 * Output is JSON on stdout; exit code 0 when everything checked out, 1 when something did
 * not (a broken chain, a checkpoint that no longer matches), 2 on bad usage.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { projections } from '../../projections/index.ts'
import { createAudit } from '../app/audit.ts'
import { createEventCodec } from '../app/event-codec.ts'
import { openEventStore } from '../app/runtime.ts'
import { loadConfig } from '../config.ts'
import type { EventStore } from '../eventstore/event-store.ts'
import { createProjectionRunner } from '../readstore/projection-runner.ts'
import { ReadStore } from '../readstore/read-store.ts'
import { createTokenService } from '../security/access-tokens.ts'
import { openDataKeyStore } from '../security/data-keys.ts'
import { loadSigningKeys } from '../security/signing-keys.ts'

const USAGE = `usage: npm run audit -- <command>
  history <user_id>                       the user's events (account and sessions), in commit order
  state <user_id> --as-of <timestamp>     the account as it was at that time, folded from its events
  verify [--checkpoint <file>]            check every hash chain, and optionally a signed checkpoint
  checkpoint [--out <file>]               sign a checkpoint of every stream's head
  rebuild                                 drop and replay the read models (stop the service first)`

class UsageError extends Error {}

/** Session ids of a user, found in the events themselves (the CLI does not trust read models). */
async function sessionIdsFromEvents(store: EventStore, userId: number): Promise<number[]> {
  const ids: number[] = []
  let from = 0n
  for (;;) {
    const batch = await store.readAll({ fromPosition: from, limit: 5000 })
    if (batch.length === 0) return ids
    for (const e of batch)
      if (e.type === 'SessionStarted' && e.data.user_id === userId) ids.push(e.data.session_id as number)
    from = batch[batch.length - 1].position
  }
}

function userIdArg(value: string | undefined): number {
  const id = Number(value)
  if (!Number.isSafeInteger(id) || id < 1) throw new UsageError(`expected a user id, got "${value ?? ''}"`)
  return id
}

function parseOptions(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: { 'as-of': { type: 'string' }, checkpoint: { type: 'string' }, out: { type: 'string' } },
  })
}

/** A checkpoint file that cannot be read is bad usage (exit 2), not a checkpoint that failed (exit 1). */
function readCheckpointFile(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch (error) {
    throw new UsageError(`cannot read the checkpoint file ${path}: ${(error as Error).message}`)
  }
}

async function run(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseOptions>
  try {
    parsed = parseOptions(argv)
  } catch (error) {
    // An unknown option or a missing option value is bad usage (exit 2), not a failed check.
    throw new UsageError((error as Error).message)
  }
  const { positionals, values } = parsed
  const [command, arg] = positionals
  if (!command) throw new UsageError('no command given')
  const config = loadConfig()
  const store = await openEventStore(config)
  const dataKeys = openDataKeyStore({ dataDir: config.dataDir, masterKey: config.masterKey ?? undefined })
  const codec = createEventCodec(dataKeys)
  const keys = await loadSigningKeys({
    dataDir: config.dataDir,
    privateKeyPem: config.signingKeyPem ?? undefined,
  })
  const tokens = createTokenService({
    keys,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    accessTtlSeconds: config.accessTokenTtlSeconds,
  })
  const audit = createAudit({
    store,
    codec,
    tokens,
    sessionIdsOf: (userId) => sessionIdsFromEvents(store, userId),
    now: () => new Date(),
  })
  const print = (value: unknown): void => console.log(JSON.stringify(value, null, 2))
  try {
    switch (command) {
      case 'history': {
        const history = await audit.history(userIdArg(arg))
        if (!history) throw new UsageError(`user ${arg} has no history`)
        print(history)
        return 0
      }
      case 'state': {
        const asOf = values['as-of'] ? new Date(values['as-of']) : new Date()
        if (Number.isNaN(asOf.getTime()))
          throw new UsageError(`--as-of is not a timestamp: ${values['as-of']}`)
        const state = await audit.stateAt(userIdArg(arg), asOf)
        if (!state) throw new UsageError(`user ${arg} has no history`)
        const {
          passwordHash: _p,
          totp,
          resetTokens: _r,
          ...rest
        } = state as Record<string, unknown> & {
          totp?: { secret: string | null; recoveryCodes: unknown[] }
        }
        print({
          as_of: asOf.toISOString(),
          ...rest,
          ...(totp
            ? {
                totp_enabled: totp.secret !== null,
                recovery_codes_left: totp.recoveryCodes.filter(Boolean).length,
              }
            : {}),
        })
        return 0
      }
      case 'verify': {
        const chains = await audit.verify()
        let ok = chains.ok
        const result: Record<string, unknown> = { chains }
        if (values.checkpoint) {
          const checked = await audit.verifyCheckpoint(readCheckpointFile(values.checkpoint))
          result.checkpoint = checked ?? { ok: false, error: 'signature does not verify' }
          ok &&= checked?.ok === true
        }
        print({ ok, ...result })
        return ok ? 0 : 1
      }
      case 'checkpoint': {
        const jws = await audit.checkpoint()
        if (values.out) writeFileSync(values.out, `${jws}\n`)
        print({ checkpoint: jws, written_to: values.out ?? null })
        return 0
      }
      case 'rebuild': {
        const readStore = new ReadStore(join(config.dataDir, 'read-models.db'), projections)
        const runner = createProjectionRunner({ store, readStore, codec })
        // As in the service: a replayed deletion destroys the data key, in case the service
        // stopped after appending AccountDeleted but before projecting it.
        runner.onApplied((event) => {
          if (event.type === 'AccountDeleted') dataKeys.destroy(event.stream_id)
        })
        const started = performance.now()
        const applied = await runner.rebuild()
        await runner.stop()
        readStore.close()
        print({ events_applied: applied, seconds: Number(((performance.now() - started) / 1000).toFixed(2)) })
        return 0
      }
      default:
        throw new UsageError(`unknown command "${command}"`)
    }
  } finally {
    await store.close()
    dataKeys.close()
  }
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(`${error.message}\n${USAGE}`)
      process.exit(2)
    }
    console.error(`audit failed: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  },
)
