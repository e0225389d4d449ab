/**
 * Crash-safety trial: runs the real service as a child process (`node src/main.ts`, server.ts) on
 * its own DATA_DIR, drives mixed load at it from separate client processes (client.ts), kills it
 * with SIGKILL at random moments and restarts it on the same DATA_DIR, then proves that nothing
 * acknowledged was lost (oracle.ts).
 *
 *   runCrashTrial({ kills, durationMs, clients, seed })  → CrashFindings (`problems` empty = passed;
 *   formatFindings of report.ts prints them)
 *
 * Used by scripts/crash.ts and test/e2e/crash.test.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Ack, ADMIN, CLIENT_SCRIPT, type ClientOptions, httpCall, isAnswer, prng } from './client.ts'
import { compareReadModels, expectedState, runAuditCli } from './oracle.ts'
import type { CrashFindings } from './report.ts'
import { BOOTSTRAP_TOKEN, freePort, ROOT, spawnServer, stopServer, waitReady } from './server.ts'

export type CrashTrialOptions = {
  kills: number
  durationMs: number
  clients: number
  seed: number
  /** Concurrent request loops per client process (default 3). */
  workersPerClient?: number
  /** Keep the trial directory (DATA_DIR, logs, acks) even when everything passed. */
  keepDir?: boolean
  log?: (line: string) => void
}

async function inParallel<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await fn(items[next++])
    }),
  )
}

export async function runCrashTrial(options: CrashTrialOptions): Promise<CrashFindings> {
  const started = performance.now()
  const log = options.log ?? (() => {})
  const random = prng(options.seed)
  const dir = mkdtempSync(join(tmpdir(), 'auth-crash-'))
  const dataDir = join(dir, 'data')
  const logFile = join(dir, 'server.log')
  const port = await freePort()
  const failures: CrashFindings['failures'] = {
    startup: [],
    unexpectedResponses: [],
    missingUsers: [],
    lockState: [],
    logins: [],
    revokedSessionsWork: [],
    liveSessionsBroken: [],
    duplicateIds: [],
    readModels: [],
    hashChains: [],
    shutdown: [],
    serverErrors: [],
  }
  const restartReadyMs: number[] = []
  let kills = 0
  let startupKills = 0
  let server = spawnServer({ dataDir, port, logFile })
  const clients: { child: ChildProcess; out: string; exited: Promise<number | null> }[] = []
  const checked = { users: 0, liveSessions: 0, revokedSessions: 0, readModelRows: 0 }
  let lines: Ack[] = []
  const phases = { loadSeconds: 0, checkSeconds: 0, rebuildSeconds: 0 }
  let mark = performance.now()
  const lap = (): number => {
    const now = performance.now()
    const seconds = Math.round((now - mark) / 100) / 10
    mark = now
    return seconds
  }

  const finish = (): CrashFindings => {
    const count = (op: Ack['op']): number => lines.filter((l) => l.op === op).length
    const done = lines.filter((l): l is Extract<Ack, { op: 'done' }> => l.op === 'done')
    const problems = Object.entries(failures).flatMap(([proof, list]) => list.map((p) => `${proof}: ${p}`))
    if (problems.length === 0 && !options.keepDir) rmSync(dir, { recursive: true, force: true })
    return {
      seed: options.seed,
      dir,
      kills,
      startupKills,
      restartReadyMs: restartReadyMs.map(Math.round),
      acks: {
        registrations: count('register'),
        logins: count('login'),
        refreshes: count('refresh'),
        revocations: count('revoke'),
        reuseRevocations: count('reuse_revoked'),
        locks: count('lock'),
        unlocks: count('unlock'),
        uncertain: count('uncertain'),
      },
      requests: {
        answered: done.reduce((n, d) => n + d.answered, 0),
        refused: done.reduce((n, d) => n + d.refused, 0),
        lostAnswers: done.reduce((n, d) => n + d.lost_answers, 0),
      },
      checked,
      failures,
      problems,
      seconds: Math.round((performance.now() - started) / 100) / 10,
      phases,
    }
  }

  try {
    // The very first start (keys, secrets and databases being created) is killed at a random moment too.
    await sleep(Math.round(random() * 1500))
    server.child.kill('SIGKILL')
    await server.exited
    startupKills++
    server = spawnServer({ dataDir, port, logFile })
    await waitReady(server, 90_000)
    const boot = await fetch(`${server.url}/admin/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-bootstrap-token': BOOTSTRAP_TOKEN },
      body: JSON.stringify(ADMIN),
    })
    if (boot.status !== 200)
      throw new Error(`bootstrapping the admin failed: ${boot.status} ${await boot.text()}`)

    // Load from separate processes.
    for (let i = 0; i < options.clients; i++) {
      const out = join(dir, `acks-${i}.jsonl`)
      const clientOptions: ClientOptions = {
        url: server.url,
        out,
        tag: `c${i}`,
        seed: options.seed * 1000 + i,
        workers: options.workersPerClient ?? 3,
        maxMs: options.durationMs + 180_000,
      }
      const child = spawn(process.execPath, [CLIENT_SCRIPT, '--client', JSON.stringify(clientOptions)], {
        cwd: ROOT,
        stdio: ['pipe', 'ignore', 'pipe'],
      })
      let stderr = ''
      child.stderr?.on('data', (c: Buffer) => {
        stderr = (stderr + c.toString('utf8')).slice(-4000)
      })
      const exited = new Promise<number | null>((done) =>
        child.once('exit', (code) => {
          if (code !== 0) failures.unexpectedResponses.push(`client ${i} exited with ${code}: ${stderr}`)
          done(code)
        }),
      )
      clients.push({ child, out, exited })
    }

    // Kills at random moments: on average one per slot, the last slot left for load after the last restart.
    const slot = options.durationMs / (options.kills + 1)
    for (let k = 0; k < options.kills; k++) {
      await sleep(Math.round(slot * (0.3 + 1.4 * random())))
      server.child.kill('SIGKILL')
      await server.exited
      kills++
      log(`kill ${kills}/${options.kills}`)
      server = spawnServer({ dataDir, port, logFile })
      // Now and then the next kill lands while the restarted server is still catching up.
      if (random() < 0.25) {
        await sleep(Math.round(random() * 250))
        if (server.child.exitCode === null) {
          server.child.kill('SIGKILL')
          await server.exited
          startupKills++
          server = spawnServer({ dataDir, port, logFile })
        }
      }
      try {
        restartReadyMs.push(await waitReady(server, 90_000))
      } catch (error) {
        failures.startup.push(`restart after kill ${kills}: ${(error as Error).message}`)
        throw error
      }
    }
    await sleep(Math.round(slot))

    // Stop the load; every client finishes the request it is in.
    for (const client of clients) client.child.stdin?.end('stop\n')
    const clientsDone = await Promise.race([
      Promise.all(clients.map((c) => c.exited)).then(() => true),
      sleep(120_000).then(() => false),
    ])
    if (!clientsDone) failures.unexpectedResponses.push('clients did not stop within 120 s')
    lines = clients.flatMap((c) =>
      existsSync(c.out)
        ? readFileSync(c.out, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Ack)
        : [],
    )
    for (const line of lines) {
      if (line.op === 'unexpected')
        failures.unexpectedResponses.push(
          `${line.kind} answered ${line.status}: ${JSON.stringify(line.body)}`,
        )
    }

    phases.loadSeconds = lap()

    // The proofs, against the server that survived every kill.
    const { users, sessions, duplicates } = expectedState(lines)
    failures.duplicateIds.push(...duplicates)
    const url = server.url
    const admin = await httpCall(url, 'POST', '/admin/login', { json: ADMIN })
    if (!isAnswer(admin) || admin.status !== 200)
      throw new Error(`admin login failed: ${JSON.stringify(admin)}`)
    const adminToken = admin.body.access_token as string
    const listed = new Map<number, { username: string; is_locked: boolean }>()
    for (let skip = 0; ; skip += 1000) {
      const page = await httpCall(url, 'GET', `/admin/users?skip=${skip}&limit=1000`, { token: adminToken })
      if (!isAnswer(page) || page.status !== 200)
        throw new Error(`GET /admin/users failed: ${JSON.stringify(page)}`)
      for (const u of page.body as { id: number; username: string; is_locked: boolean }[]) {
        if (listed.has(u.id)) failures.duplicateIds.push(`user id ${u.id} listed twice`)
        listed.set(u.id, u)
      }
      if (page.body.length < 1000) break
    }
    const usernames = new Map<string, number>()
    for (const [id, u] of listed) {
      const key = u.username.toLowerCase()
      if (usernames.has(key))
        failures.duplicateIds.push(`username ${u.username} held by ${usernames.get(key)} and ${id}`)
      usernames.set(key, id)
    }

    await inParallel([...users.values()], 4, async (user) => {
      checked.users++
      const row = listed.get(user.id)
      if (!row || row.username !== user.username) {
        failures.missingUsers.push(
          `user ${user.id} (${user.username}) acknowledged, listed as ${JSON.stringify(row)}`,
        )
        return
      }
      if (!user.uncertain && row.is_locked !== user.locked)
        failures.lockState.push(`user ${user.id}: is_locked ${row.is_locked}, acknowledged ${user.locked}`)
      const reply = await httpCall(url, 'POST', '/auth/login', {
        form: { username: user.username, password: user.password },
      })
      const expected = user.uncertain ? [200, 423] : [user.locked ? 423 : 200]
      if (!isAnswer(reply) || !expected.includes(reply.status))
        failures.logins.push(
          `user ${user.id}: login answered ${JSON.stringify(reply)}, expected ${expected.join(' or ')}`,
        )
    })

    await inParallel(
      [...sessions.values()].filter((s) => !s.uncertain),
      8,
      async (session) => {
        if (session.revoked) {
          checked.revokedSessions++
          const denied = await httpCall(url, 'GET', '/protected', { token: session.access })
          if (!isAnswer(denied) || denied.status !== 401)
            failures.revokedSessionsWork.push(
              `session ${session.id}: access token answered ${JSON.stringify(denied)}`,
            )
          const reply = await httpCall(url, 'POST', '/auth/token-refresh', {
            json: { refresh_token: session.refresh },
          })
          if (!isAnswer(reply) || reply.status !== 401)
            failures.revokedSessionsWork.push(
              `session ${session.id}: refresh answered ${JSON.stringify(reply)}`,
            )
        } else {
          checked.liveSessions++
          const reply = await httpCall(url, 'POST', '/auth/token-refresh', {
            json: { refresh_token: session.refresh },
          })
          if (!isAnswer(reply) || reply.status !== 200) {
            failures.liveSessionsBroken.push(
              `session ${session.id}: refresh answered ${JSON.stringify(reply)}`,
            )
            return
          }
          const hello = await httpCall(url, 'GET', '/protected', { token: reply.body.access_token })
          if (!isAnswer(hello) || hello.status !== 200 || hello.body.user_id !== session.userId)
            failures.liveSessionsBroken.push(
              `session ${session.id}: new access token answered ${JSON.stringify(hello)}`,
            )
        }
      },
    )

    phases.checkSeconds = lap()

    // A graceful stop, then the read models against a rebuild from the events.
    const exit = await stopServer(server, 'SIGTERM')
    if (exit.code !== 0 || exit.timedOut)
      failures.shutdown.push(
        `SIGTERM after the trial: ${JSON.stringify(exit)}\n${server.output().slice(-2000)}`,
      )
    const copy = join(dir, 'rebuilt')
    cpSync(dataDir, copy, { recursive: true })
    const rebuild = await runAuditCli(copy, ['rebuild'])
    if (rebuild.code !== 0)
      failures.readModels.push(`audit rebuild exited ${rebuild.code}: ${rebuild.stderr}`)
    else {
      const { differences, rows } = compareReadModels(
        join(dataDir, 'read-models.db'),
        join(copy, 'read-models.db'),
      )
      checked.readModelRows = rows
      failures.readModels.push(...differences)
    }
    const verify = await runAuditCli(dataDir, ['verify'])
    let verdict: { ok?: boolean; chains?: { events_checked?: number } } = {}
    try {
      verdict = JSON.parse(verify.stdout)
    } catch {}
    if (verify.code !== 0 || verdict.ok !== true)
      failures.hashChains.push(
        `audit verify exited ${verify.code}: ${verify.stdout.slice(0, 2000)} ${verify.stderr}`,
      )
    phases.rebuildSeconds = lap()
    for (const line of readFileSync(logFile, 'utf8').split('\n')) {
      if (line.includes('"level":"error"') || /unhandled|uncaught/i.test(line))
        failures.serverErrors.push(line.slice(0, 500))
    }
    return finish()
  } catch (error) {
    failures.startup.push(`trial aborted: ${(error as Error).stack ?? String(error)}`)
    return finish()
  } finally {
    for (const c of clients) if (c.child.exitCode === null) c.child.kill('SIGKILL')
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL')
  }
}
