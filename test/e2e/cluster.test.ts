/**
 * The short cluster proof (issue 12; the long one is `npm run cluster`): 3 real service processes
 * on one PostgreSQL database under random load for a few seconds, one SIGKILLed and restarted
 * mid-run, then every cluster-wide check of harness/cluster.ts. The propagation delays of a
 * revocation, a lock, a deactivation and a deletion are measured and printed; each must stay
 * within the bound (5 s), as every other check must pass.
 */
import { describe, expect, it } from 'vitest'
import { DELAY_KINDS, formatClusterFindings, runClusterProof } from '../../harness/cluster.ts'

describe('three instances on one PostgreSQL database', () => {
  it('keep every promise under load, through a SIGKILL and restart of one of them', async () => {
    const seed = Math.floor(Math.random() * 2 ** 31)
    const findings = await runClusterProof({
      instances: 3,
      seconds: 5,
      seed,
      workers: 4,
      delayTrials: 4,
      twoFactorTrials: 2,
      sampledUsers: 10,
    })
    console.log(formatClusterFindings(findings))
    expect(findings.load.killedInstance).toBeGreaterThanOrEqual(0)
    expect(findings.load.registrations).toBeGreaterThan(0)
    for (const kind of DELAY_KINDS) expect(findings.delays[kind].length, kind).toBeGreaterThan(0)
    expect(findings.rebuild.events).toBeGreaterThan(0)
    for (const check of findings.checks) expect(check.ok, `${check.name}: ${check.detail}`).toBe(true)
    expect(findings.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'registrations on instance 0',
        'tokens work on every instance',
        'revoked session refused everywhere',
        'locked account refused everywhere',
        'deactivated account refused everywhere',
        'deleted account refused everywhere',
        '2FA challenge works once across instances',
        'TOTP code works once across instances (sent at once)',
        'TOTP code used on one instance refused on the others',
        '50 parallel wrong passwords: 5 × 401 then 423',
        'erased personal data on every instance',
        'two admins removing each other leave an admin',
        'audit verify full=true on every instance',
        'read models of instance 0 equal a rebuild',
        'read models of instance 1 equal a rebuild',
        'read models of instance 2 equal a rebuild',
      ]),
    )
  }, 180_000)
})
