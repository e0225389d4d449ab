/**
 * The long crash-safety run: kills the real service with SIGKILL many times under load from
 * client processes, restarting it on the same DATA_DIR, then proves nothing acknowledged was lost
 * (see harness/trial.ts). Exit code 0 when every proof passed, 1 otherwise.
 *   npx node scripts/crash.ts [--kills 30] [--seconds 180] [--clients 3] [--workers 3] [--seed N] [--keep]
 */
import { parseArgs } from 'node:util'
import { formatFindings } from '../harness/report.ts'
import { runCrashTrial } from '../harness/trial.ts'

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '30' },
    seconds: { type: 'string', default: '180' },
    clients: { type: 'string', default: '3' },
    workers: { type: 'string', default: '3' },
    seed: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
})

const positive = (name: string, raw: string): number => {
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} must be a positive integer, got "${raw}"`)
    process.exit(2)
  }
  return value
}

const kills = positive('kills', values.kills)
const seconds = positive('seconds', values.seconds)
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : positive('seed', values.seed)
console.log(`crash run: ${kills} kills over ${seconds} s, ${values.clients} client processes, seed ${seed}`)
const findings = await runCrashTrial({
  kills,
  durationMs: seconds * 1000,
  clients: positive('clients', values.clients),
  workersPerClient: positive('workers', values.workers),
  seed,
  keepDir: values.keep,
  log: (line) => console.log(`  ${new Date().toISOString().slice(11, 19)} ${line}`),
})
console.log(formatFindings(findings))
console.log(
  findings.problems.length === 0 ? 'RESULT: PASS' : `RESULT: FAIL (${findings.problems.length} problems)`,
)
process.exit(findings.problems.length === 0 ? 0 : 1)
