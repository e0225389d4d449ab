/** METRICS_TOKEN: when set, GET /metrics needs it as the bearer token; unset, /metrics is public. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Api, api, expectUnauthorized, type Reply } from '../support/e2e.ts'
import { startServer, type TestServer } from '../support/server.ts'

const TOKEN = 'metrics-scraper-secret-0123456789'

const expectPrometheusText = (reply: Reply): void => {
  expect(reply.status).toBe(200)
  expect(reply.headers.get('content-type')).toMatch(/^text\/plain/)
  expect(reply.body).toContain('# TYPE http_requests_total counter')
  expect(reply.body).toMatch(/^auth_projection_lag_events \d+$/m)
}

describe('with METRICS_TOKEN set', () => {
  let server: TestServer
  let request: Api
  beforeAll(async () => {
    server = await startServer({ METRICS_TOKEN: TOKEN })
    request = api(server.url)
  })
  afterAll(async () => {
    await server?.close()
  })

  it('answers 401 with WWW-Authenticate: Bearer without a token', async () => {
    const reply = await request('GET', '/metrics')
    expectUnauthorized(reply, 'Not authenticated')
    expect(reply.body).not.toContain('http_requests_total')
  })

  it('answers 401 to a wrong token, a prefix or extension of the token, or another scheme', async () => {
    for (const authorization of [
      'Bearer wrong',
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.toUpperCase()}`,
      `Basic ${Buffer.from(`metrics:${TOKEN}`).toString('base64')}`,
      TOKEN,
      'Bearer ',
    ]) {
      const reply = await request('GET', '/metrics', { headers: { authorization } })
      expectUnauthorized(reply, 'Not authenticated')
    }
  })

  it('serves Prometheus text to the right token, the scheme in any case', async () => {
    expectPrometheusText(await request('GET', '/metrics', { token: TOKEN }))
    expectPrometheusText(await request('GET', '/metrics', { headers: { authorization: `bearer ${TOKEN}` } }))
  })

  it('still answers 405 to other methods, and leaves the other public routes public', async () => {
    const post = await request('POST', '/metrics', { token: TOKEN })
    expect(post.status).toBe(405)
    expect(post.body).toEqual({ detail: 'Method Not Allowed' })
    expect((await request('GET', '/healthz')).status).toBe(200)
    expect((await request('GET', '/openapi.json')).status).toBe(200)
  })
})

describe('without METRICS_TOKEN', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer()
  })
  afterAll(async () => {
    await server?.close()
  })

  it('serves /metrics without a token, as before', async () => {
    expectPrometheusText(await api(server.url)('GET', '/metrics'))
  })

  it('treats an empty METRICS_TOKEN as unset', async () => {
    const empty = await startServer({ METRICS_TOKEN: '' })
    try {
      expectPrometheusText(await api(empty.url)('GET', '/metrics'))
    } finally {
      await empty.close()
    }
  })
})
