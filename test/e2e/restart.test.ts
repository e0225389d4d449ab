import { afterAll, describe, expect, it } from 'vitest'
import { api, claimsOf, login, newUser, register } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

const servers: TestServer[] = []
afterAll(async () => {
  for (const server of servers.slice(0, -1)) await server.stop()
  await servers.at(-1)?.close()
})

describe('restart with the same DATA_DIR', () => {
  it('keeps accounts, sessions, refresh tokens and signing keys', async () => {
    const first = await startServer()
    servers.push(first)
    const oldApi = api(first.url)
    const user = { ...newUser('durable'), full_name: 'Dura Ble' }
    const created = await register(oldApi, user)
    const initial = await login(oldApi, user, { 'user-agent': 'RestartTest/1.0' })
    const rotated = await oldApi('POST', '/auth/token-refresh', {
      json: { refresh_token: initial.refresh_token },
    })
    expect(rotated.status).toBe(200)
    const latest: { access_token: string; refresh_token: string } = rotated.body
    const otherSession = await login(oldApi, user)
    const revoked = await login(oldApi, user)
    expect(
      (
        await oldApi('DELETE', `/auth/sessions/${claimsOf(revoked.access_token).sid}`, {
          token: otherSession.access_token,
        })
      ).status,
    ).toBe(200)
    const jwksBefore = (await oldApi('GET', '/.well-known/jwks.json')).body
    const sessionsBefore = (await oldApi('GET', '/auth/sessions', { token: latest.access_token })).body

    await first.stop()
    const second = await startServer({}, first.dataDir)
    servers.push(second)
    const newApi = api(second.url)

    // The signing keys survived: same JWKS, and the access token issued before still works.
    expect((await newApi('GET', '/.well-known/jwks.json')).body).toEqual(jwksBefore)
    const hello = await newApi('GET', '/protected', { token: latest.access_token })
    expect(hello.status).toBe(200)
    expect(hello.body).toEqual({ message: `Hello, ${user.username}`, user_id: created.id, role: 'user' })
    // A revoked session stays revoked.
    expect((await newApi('GET', '/protected', { token: revoked.access_token })).status).toBe(401)

    // Sessions are still listed, with what was recorded about them.
    const sessionsAfter = await newApi('GET', '/auth/sessions', { token: latest.access_token })
    expect(sessionsAfter.status).toBe(200)
    expect(sessionsAfter.body).toEqual(sessionsBefore)
    const ids = sessionsAfter.body.map((s: { id: number }) => String(s.id))
    expect(ids).toEqual(
      expect.arrayContaining([claimsOf(latest.access_token).sid, claimsOf(otherSession.access_token).sid]),
    )
    expect(ids).not.toContain(claimsOf(revoked.access_token).sid)
    const current = sessionsAfter.body.find((s: { is_current: boolean }) => s.is_current)
    expect(current.user_agent).toBe('RestartTest/1.0')

    // The latest refresh token still rotates; the rotated-out one is still recognised as reuse.
    const refreshed = await newApi('POST', '/auth/token-refresh', {
      json: { refresh_token: latest.refresh_token },
    })
    expect(refreshed.status).toBe(200)
    expect(claimsOf(refreshed.body.access_token).sid).toBe(claimsOf(latest.access_token).sid)
    expect((await newApi('GET', '/protected', { token: refreshed.body.access_token })).status).toBe(200)

    // The account logs in, and its data and uniqueness survived.
    const again = await login(newApi, user)
    expect(claimsOf(again.access_token).sub).toBe(String(created.id))
    const profile = await newApi('GET', `/auth/verify-user/${user.username}`, { token: again.access_token })
    expect(profile.body).toEqual(created)
    const duplicate = await newApi('POST', '/auth/register', {
      json: { ...newUser('dup'), username: user.username },
    })
    expect(duplicate.status).toBe(409)
    const next = await register(newApi, newUser('next'))
    expect(next.id).toBeGreaterThan(created.id)

    // Reuse detection still works across the restart.
    const reuse = await newApi('POST', '/auth/token-refresh', {
      json: { refresh_token: initial.refresh_token },
    })
    expect(reuse.status).toBe(401)
    expect((await newApi('GET', '/protected', { token: refreshed.body.access_token })).status).toBe(401)
  })
})
