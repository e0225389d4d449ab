/**
 * The auditors' command line, reading the same store, read models (the Merkle tree lives beside
 * them) and keys as the service (DATA_DIR or EVENT_STORE_URL); see USAGE below. It may run
 * beside the service: it only reads, but for the record of the last verified tree head.
 * Output is JSON on stdout; exit code 0 when everything checked out, 1 when something did
 * not (a broken chain, a log that differs from its tree, a tree head it does not extend), 2 on
 * bad usage.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { projections } from '../../projections/index.ts'
import { type Output, main as verifyProofMain } from '../../scripts/verify-proof.ts'
import { type Audit, createAudit } from '../app/audit.ts'
import { createEventCodec } from '../app/event-codec.ts'
import { openDataKeys, openEventStore } from '../app/runtime.ts'
import { loadConfig } from '../config.ts'
import { createProjectionRunner } from '../readstore/projection-runner.ts'
import { createQueries } from '../readstore/queries.ts'
import { ReadStore } from '../readstore/read-store.ts'
import { createTokenService } from '../security/access-tokens.ts'
import { loadSigningKeys } from '../security/signing-keys.ts'

const USAGE = `usage: npm run audit -- <command>
  history <user_id> [--proof]             the user's events (account and sessions), in commit order;
                                          --proof: each with its inclusion proof, and the signed tree head
  state <user_id> --as-of <timestamp>     the account as it was at that time, folded from its events
  verify [--full] [--checkpoint <file>]   check the log against its hash chains and Merkle tree (since the
                                          last verified tree head, or all with --full), and optionally
                                          that it extends a signed tree head (or a first-release checkpoint)
  checkpoint [--out <file>]               sign a tree head (size, root hash, time)
  proof inclusion (--stream <s> --revision <r> | --position <p>) [--tree-size <n>]
  proof consistency --first <n> --second <m>
  verify-proof --jwks <file|url> --head <file> [--inclusion <file>] [--consistency <file> --old-head <file>]
                                          check proofs with the public keys alone (scripts/verify-proof.ts)
  rebuild                                 drop and replay the read models (stop the service first)`

class UsageError extends Error {}

function userIdArg(value: string | undefined): number {
  const id = Number(value)
  if (!Number.isSafeInteger(id) || id < 1) throw new UsageError(`expected a user id, got "${value ?? ''}"`)
  return id
}

function parseOptions(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'as-of': { type: 'string' },
      checkpoint: { type: 'string' },
      out: { type: 'string' },
      full: { type: 'boolean' },
      proof: { type: 'boolean' },
      stream: { type: 'string' },
      revision: { type: 'string' },
      position: { type: 'string' },
      'tree-size': { type: 'string' },
      first: { type: 'string' },
      second: { type: 'string' },
    },
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

/** The settings it reads (DATA_DIR, EVENT_STORE_URL, …) and where it writes. */
export type AuditIo = Output & { env: NodeJS.ProcessEnv }

/** Runs one command; resolves to its exit code: 0 all checked out, 1 something did not, 2 bad usage. */
export async function runAudit(
  argv: string[],
  io: AuditIo = { env: process.env, out: (line) => console.log(line), err: (text) => console.error(text) },
): Promise<number> {
  try {
    return await run(argv, io)
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`${error.message}\n${USAGE}`)
      return 2
    }
    io.err(`audit failed: ${error instanceof Error ? error.message : String(error)}`)
    return 1
  }
}

async function run(argv: string[], io: AuditIo): Promise<number> {
  // Needs nothing of ours but the public keys: the auditors' own check, with its own options.
  if (argv[0] === 'verify-proof') return verifyProofMain(argv.slice(1), io)
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
  const config = loadConfig(io.env)
  const store = await openEventStore(config)
  const dataKeys = await openDataKeys(config, store)
  const codec = createEventCodec(dataKeys)
  const keys = await loadSigningKeys({
    dataDir: config.dataDir,
    privateKeyPem: config.signingKeyPem ?? undefined,
    verifyPublicKeysPem: config.verifyPublicKeysPem ?? undefined,
  })
  const tokens = createTokenService({
    keys,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    accessTtlSeconds: config.accessTokenTtlSeconds,
  })
  const readStore = new ReadStore(join(config.dataDir, 'read-models.db'), projections)
  const audit = createAudit({
    store,
    codec,
    tokens,
    tree: readStore.tree,
    sessionIdsOf: createQueries(readStore.db).sessionIdsOf,
    now: () => new Date(),
  })
  const print = (value: unknown): void => io.out(JSON.stringify(value, null, 2))
  try {
    switch (command) {
      case 'history': {
        const history = await audit.history(userIdArg(arg), { proof: values.proof })
        if (!history) throw new UsageError(`user ${arg} has no history`)
        print(values.proof ? { tree_head: history.head, events: history.events } : history.events)
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
          emailVerification,
          ...rest
        } = state as Record<string, unknown> & {
          totp?: { secret: string | null; recoveryCodes: unknown[] }
          emailVerification?: { hash: string; expiresAt: string; pendingEmail: string | null } | null
        }
        print({
          as_of: asOf.toISOString(),
          ...rest,
          // The outstanding verification without its token's hash, as the reset tokens stay out.
          ...(emailVerification
            ? {
                email_verification: {
                  expires_at: emailVerification.expiresAt,
                  pending_email: emailVerification.pendingEmail,
                },
              }
            : {}),
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
        const chains = await audit.verify({ full: values.full })
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
      case 'proof': {
        if (arg !== 'inclusion' && arg !== 'consistency')
          throw new UsageError('proof needs "inclusion" or "consistency"')
        const proof =
          arg === 'inclusion' ? await inclusionArgs(audit, values) : consistencyArgs(audit, values)
        if (!proof) throw new UsageError('no such event or tree size in the tree')
        print(proof)
        return 0
      }
      case 'rebuild': {
        const runner = createProjectionRunner({ store, readStore, codec })
        // As in the service: a replayed deletion destroys the data key, in case the service
        // stopped after appending AccountDeleted but before projecting it.
        runner.onApplied((event) => {
          if (event.type === 'AccountDeleted') dataKeys.destroy(event.stream_id)
        })
        const started = performance.now()
        const applied = await runner.rebuild()
        await runner.stop()
        print({ events_applied: applied, seconds: Number(((performance.now() - started) / 1000).toFixed(2)) })
        return 0
      }
      default:
        throw new UsageError(`unknown command "${command}"`)
    }
  } finally {
    readStore.close()
    await dataKeys.close()
    await store.close()
  }
}

function count(name: string, value: string | undefined): number {
  const n = Number(value)
  if (value === undefined || !/^[0-9]+$/.test(value) || !Number.isSafeInteger(n))
    throw new UsageError(`--${name} needs a non-negative integer, got "${value ?? ''}"`)
  return n
}

function inclusionArgs(audit: Audit, values: ReturnType<typeof parseOptions>['values']) {
  const treeSize = values['tree-size'] === undefined ? undefined : count('tree-size', values['tree-size'])
  if (values.position !== undefined)
    return audit.inclusion({ position: BigInt(count('position', values.position)) }, treeSize)
  if (values.stream === undefined)
    throw new UsageError('proof inclusion needs --stream and --revision, or --position')
  return audit.inclusion({ stream: values.stream, revision: count('revision', values.revision) }, treeSize)
}

function consistencyArgs(audit: Audit, values: ReturnType<typeof parseOptions>['values']) {
  return audit.consistency(count('first', values.first), count('second', values.second))
}

if (import.meta.main) process.exit(await runAudit(process.argv.slice(2)))
