/** The HTTP surface as one web-standard handler: health, then (later) tRPC, REST and docs. */
import type { Runtime } from '../app/runtime.ts'

const json = (body: unknown, status = 200, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })

export async function createApp(runtime: Runtime) {
  async function handle(request: Request): Promise<Response> {
    const { pathname } = new URL(request.url)
    if (pathname === '/healthz') return json({ status: 'ok' })
    if (pathname === '/readyz') {
      const ready = runtime.runner.failure === null
      return json({ status: ready ? 'ready' : 'not_ready' }, ready ? 200 : 503)
    }
    return json({ detail: 'Not Found' }, 404)
  }
  return { handle, async close(): Promise<void> {} }
}
