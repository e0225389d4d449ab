/**
 * Crash safety, short version (the long one is `npm run crash`): the real service is killed with
 * SIGKILL 5 times under load from 2 client processes and restarted on the same DATA_DIR each time;
 * then every acknowledged write must still be there. See harness/trial.ts.
 */
import { describe, expect, it } from 'vitest'
import { type CrashFindings, formatFindings } from '../../harness/report.ts'
import { runCrashTrial } from '../../harness/trial.ts'

const seed = Number(process.env.CRASH_SEED) || Math.floor(Math.random() * 2 ** 31)

describe('crash safety under SIGKILL', () => {
  let findings: CrashFindings

  it('survives 5 kills under mixed load from 2 client processes', async () => {
    findings = await runCrashTrial({ kills: 5, durationMs: 12_000, clients: 2, workersPerClient: 3, seed })
    // The whole report on failure, with the seed to replay it (CRASH_SEED=<seed>).
    const report = formatFindings(findings)
    const { failures } = findings

    // The run did what it claims: every kill happened and the load covered every kind of write.
    expect(findings.kills, report).toBe(5)
    expect(findings.restartReadyMs, report).toHaveLength(5)
    expect(findings.requests.answered, report).toBeGreaterThan(50)
    expect(findings.acks.registrations, report).toBeGreaterThan(5)
    expect(findings.acks.logins, report).toBeGreaterThan(5)
    expect(findings.acks.refreshes, report).toBeGreaterThan(0)
    expect(findings.acks.revocations, report).toBeGreaterThan(0)
    expect(findings.acks.locks, report).toBeGreaterThan(0)
    expect(findings.checked.users, report).toBe(findings.acks.registrations)
    expect(findings.checked.liveSessions + findings.checked.revokedSessions, report).toBeGreaterThan(0)
    expect(findings.checked.readModelRows, report).toBeGreaterThan(0)

    // The server came back after every kill and answered /readyz.
    expect(failures.startup, report).toEqual([])
    // No request was answered with anything but what the flow expects (no 5xx, no stray 4xx).
    expect(failures.unexpectedResponses, report).toEqual([])
    // Every acknowledged registration exists: listed by GET /admin/users under its username.
    expect(failures.missingUsers, report).toEqual([])
    // Its lock state is the last acknowledged lock/unlock, and login agrees (200, or 423 when locked).
    expect(failures.lockState, report).toEqual([])
    expect(failures.logins, report).toEqual([])
    // Every acknowledged revocation (own, by lock, by reuse detection) holds: token and refresh refused.
    expect(failures.revokedSessionsWork, report).toEqual([])
    // The last acknowledged refresh token of every live session still rotates.
    expect(failures.liveSessionsBroken, report).toEqual([])
    // No user id, session id or username was handed out twice.
    expect(failures.duplicateIds, report).toEqual([])
    // The live read models (users, sessions, activity, …) equal a rebuild from the events.
    expect(failures.readModels, report).toEqual([])
    // Every stream's hash chain verifies (`audit verify` exits 0).
    expect(failures.hashChains, report).toEqual([])
    // And the survivor still shuts down cleanly on SIGTERM (exit 0).
    expect(failures.shutdown, report).toEqual([])
    // No server life logged an error (a stopped projection, an unhandled error serving a request).
    expect(failures.serverErrors, report).toEqual([])
    expect(findings.problems, report).toEqual([])
  }, 150_000)
})
