/** What a crash trial found, and its text for the command line. */

export type CrashFindings = {
  seed: number
  dir: string
  kills: number
  /** Extra kills during startup: one of the very first start, and some of restarted servers. */
  startupKills: number
  restartReadyMs: number[]
  acks: {
    registrations: number
    logins: number
    refreshes: number
    revocations: number
    reuseRevocations: number
    locks: number
    unlocks: number
    uncertain: number
  }
  /** Client requests answered (any status), refused while the server was down, and lost to a kill. */
  requests: { answered: number; refused: number; lostAnswers: number }
  checked: { users: number; liveSessions: number; revokedSessions: number; readModelRows: number }
  /** Per proof, what failed; every list empty means the trial passed. */
  failures: {
    startup: string[]
    unexpectedResponses: string[]
    missingUsers: string[]
    lockState: string[]
    logins: string[]
    revokedSessionsWork: string[]
    liveSessionsBroken: string[]
    duplicateIds: string[]
    readModels: string[]
    hashChains: string[]
    shutdown: string[]
    /** Errors the server logged in any of its lives (a projection that stopped, an unhandled error). */
    serverErrors: string[]
  }
  /** All failures, one line each. */
  problems: string[]
  seconds: number
  /** Where the time went: load with kills, checks over HTTP, stop + rebuild + compare + verify. */
  phases: { loadSeconds: number; checkSeconds: number; rebuildSeconds: number }
}

/** One line per figure, for the command line. */
export function formatFindings(f: CrashFindings): string {
  const lines = [
    `seed ${f.seed}: ${f.kills} kills under load (+${f.startupKills} during startup) in ${f.seconds} s ` +
      `(load ${f.phases.loadSeconds} s, checks ${f.phases.checkSeconds} s, stop/rebuild/verify ${f.phases.rebuildSeconds} s)`,
    `restarts ready after (ms): ${f.restartReadyMs.join(', ')}`,
    `client requests answered ${f.requests.answered}, refused while down ${f.requests.refused}, ` +
      `answers lost to kills ${f.requests.lostAnswers}`,
    `acknowledged: ${Object.entries(f.acks)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    `checked: ${f.checked.users} users (listed, lock state, login), ${f.checked.liveSessions} live sessions rotate, ` +
      `${f.checked.revokedSessions} revoked sessions refused, ${f.checked.readModelRows} read-model rows equal a rebuild`,
  ]
  for (const [proof, list] of Object.entries(f.failures))
    lines.push(`${list.length === 0 ? 'PASS' : 'FAIL'} ${proof}${list.length ? `: ${list.length}` : ''}`)
  for (const p of f.problems.slice(0, 40)) lines.push(`  ${p}`)
  if (f.problems.length > 0) lines.push(`trial directory kept: ${f.dir}`)
  return lines.join('\n')
}
