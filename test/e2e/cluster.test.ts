/**
 * The short cluster proof (issue 12; the long one is `npm run cluster`): 3 real service processes
 * on one PostgreSQL database under random load for a few seconds, one SIGKILLed and restarted
 * mid-run, then every cluster-wide check of test/support/cluster.ts. The propagation delays of a
 * revocation and a lock are measured and printed, not asserted.
 */
import { describe, expect, it } from 'vitest'
import { formatClusterFindings, runClusterProof } from '../support/cluster.ts'

describe('three instances on one PostgreSQL database', () => {
  it('keep every promise under load, through a SIGKILL and restart of one of them', async () => {
    const seed = Math.floor(Math.random() * 2 ** 31)
    const findings = await runClusterProof({ instances: 3, seconds: 5, seed, workers: 4, delayTrials: 5 })
    console.log(formatClusterFindings(findings))
    expect(findings.load.killedInstance).toBeGreaterThanOrEqual(0)
    expect(findings.load.registrations).toBeGreaterThan(0)
    expect(findings.delays.revoke.length).toBeGreaterThan(0)
    expect(findings.delays.lock.length).toBeGreaterThan(0)
    for (const check of findings.checks) expect(check.ok, `${check.name}: ${check.detail}`).toBe(true)
    expect(findings.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'registrations on instance 0',
        'tokens work on every instance',
        'revoked session refused everywhere',
        'locked account refused everywhere',
        '50 parallel wrong passwords: 5 × 401 then 423',
        'erased personal data on every instance',
        'two admins removing each other leave an admin',
        'audit verify full=true on every instance',
      ]),
    )
  }, 180_000)
})
