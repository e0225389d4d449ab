/**
 * Serves a web-standard `(Request) => Response` handler on node:http. Bodies are read with a
 * size limit before the Request is built, so an oversized upload never reaches the handler.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'

export const MAX_BODY_BYTES = 64 * 1024

export type WebHandler = (request: Request, info: { remoteAddress: string }) => Promise<Response>

async function readBody(req: IncomingMessage): Promise<Uint8Array | 'too_large'> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > MAX_BODY_BYTES) return 'too_large'
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) return 'too_large'
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

function toHeaders(req: IncomingMessage): Headers {
  const headers = new Headers()
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i], raw[i + 1])
  return headers
}

async function send(res: ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string | string[]> = {}
  response.headers.forEach((value, key) => {
    headers[key] = value
  })
  const body = response.body ? Buffer.from(await response.arrayBuffer()) : null
  if (body) headers['content-length'] = String(body.length)
  res.writeHead(response.status, headers)
  res.end(body)
}

function plain(res: ServerResponse, status: number, detail: string): void {
  const body = JSON.stringify({ detail })
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

export function createNodeServer(handler: WebHandler): Server {
  const server = createServer({ keepAliveTimeout: 5_000, requestTimeout: 30_000 }, async (req, res) => {
    try {
      const method = req.method ?? 'GET'
      const hasBody = method !== 'GET' && method !== 'HEAD'
      const body = hasBody ? await readBody(req) : null
      if (body === 'too_large') {
        res.setHeader('connection', 'close')
        return plain(res, 413, `Request body larger than ${MAX_BODY_BYTES} bytes`)
      }
      const url = `http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`
      const request = new Request(URL.canParse(url) ? url : 'http://localhost/', {
        method,
        headers: toHeaders(req),
        body: body && body.length > 0 ? (body as Uint8Array<ArrayBuffer>) : null,
      })
      await send(res, await handler(request, { remoteAddress: req.socket.remoteAddress ?? 'unknown' }))
    } catch (error) {
      console.error('unhandled error serving a request:', error)
      if (!res.headersSent) plain(res, 500, 'Internal server error')
      else res.destroy()
    }
  })
  return server
}
