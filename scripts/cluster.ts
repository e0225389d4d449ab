/**
 * The cluster proof (issue 12): N instances of the real service on one PostgreSQL database under
 * random load, one of them killed with SIGKILL and restarted mid-run, then the cluster-wide checks
 * of harness/cluster.ts. Prints a table; exit code 0 only when every check passed.
 *   npm run cluster -- [--instances 3] [--seconds 60] [--workers 6] [--trials 30] [--2fa-trials 5]
 *                      [--sampled-users 50] [--bound-ms 5000] [--seed N]
 * --trials: propagation trials per kind (revoke, lock, deactivate, delete); --2fa-trials: trials
 * of each single-use 2FA check; --sampled-users: users whose sessions and activity each instance
 * must serve as a rebuild does; --bound-ms: how long another instance may take to refuse.
 */
import { parseArgs } from 'node:util'
import { formatClusterFindings, runClusterProof } from '../harness/cluster.ts'

const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '60' },
    workers: { type: 'string', default: '6' },
    trials: { type: 'string', default: '30' },
    '2fa-trials': { type: 'string', default: '5' },
    'sampled-users': { type: 'string', default: '50' },
    'bound-ms': { type: 'string', default: '5000' },
    seed: { type: 'string' },
  },
})

const positive = (name: string, raw: string, min = 1): number => {
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min) {
    console.error(`--${name} must be an integer of at least ${min}, got "${raw}"`)
    process.exit(2)
  }
  return value
}

const instances = positive('instances', values.instances, 2)
const seconds = positive('seconds', values.seconds)
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : positive('seed', values.seed)
console.log(`cluster run: ${instances} instances, ${seconds} s of load, seed ${seed}`)
const findings = await runClusterProof({
  instances,
  seconds,
  seed,
  workers: positive('workers', values.workers),
  delayTrials: positive('trials', values.trials),
  twoFactorTrials: positive('2fa-trials', values['2fa-trials']),
  sampledUsers: positive('sampled-users', values['sampled-users']),
  propagationBoundMs: positive('bound-ms', values['bound-ms']),
  stopPostgres: true,
  log: (line) => console.log(`  ${new Date().toISOString().slice(11, 19)} ${line}`),
})
console.log(formatClusterFindings(findings))
const failed = findings.checks.filter((c) => !c.ok).length
console.log(failed === 0 ? 'RESULT: PASS' : `RESULT: FAIL (${failed} checks)`)
process.exit(failed === 0 ? 0 : 1)
