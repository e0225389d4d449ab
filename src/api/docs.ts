/** `/docs`: Swagger UI from the swagger-ui-dist package (no CDN); Authorize uses the password flow at /token. */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { HttpResponse } from './http.ts'

const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Auth Service — API docs</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>`

const INIT = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  persistAuthorization: true,
  deepLinking: true,
})`

export function createDocs() {
  const dir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'))
  const cache = new Map<string, Uint8Array>()
  const headers = (type: string) => ({ 'content-type': type, 'cache-control': 'public, max-age=3600' })

  const ok = (body: string | Uint8Array, type: string): HttpResponse => ({
    status: 200,
    headers: headers(type),
    body,
  })

  return async function serveDocs(pathname: string): Promise<HttpResponse | null> {
    if (pathname === '/docs' || pathname === '/docs/') return ok(PAGE, 'text/html; charset=utf-8')
    if (pathname === '/docs/init.js') return ok(INIT, 'text/javascript; charset=utf-8')
    const name = pathname.slice('/docs/'.length)
    const type = ASSETS[name]
    if (!pathname.startsWith('/docs/') || !type) return null
    let body = cache.get(name)
    if (!body) {
      body = new Uint8Array(await readFile(join(dir, name)))
      cache.set(name, body)
    }
    return ok(body, type)
  }
}
