/**
 * Serves a web-standard `(Request) => Response` handler on node:http. Bodies are read with a
 * size limit before the Request is built, so an oversized upload never reaches the handler.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

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

/**
 * The URL to route by, from the request target alone. The Host header takes no part: joined in
 * front of the path, `Host: x/admin/users#` would route a request for /healthz to /admin/users.
 * An absolute-form target (`GET http://host/path`) counts by its path and query.
 */
function requestUrl(target: string): string {
  if (target.startsWith('/')) return `http://localhost${target}`
  if (!URL.canParse(target)) return 'http://localhost/'
  const { pathname, search } = new URL(target)
  return `http://localhost${pathname}${search}`
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
      const url = requestUrl(req.url ?? '/')
      const request = new Request(URL.canParse(url) ? url : 'http://localhost/', {
        method,
        headers: toHeaders(req),
        body: body && body.length > 0 ? (body as Uint8Array<ArrayBuffer>) : null,
      })
      const response = await handler(request, { remoteAddress: req.socket.remoteAddress ?? 'unknown' })
      // Shutting down (server.close() was called): the client must not reuse this connection, and
      // the server must not wait for it to go idle before it can exit.
      if (!server.listening) res.setHeader('connection', 'close')
      await send(res, response)
    } catch (error) {
      // The client went away in the middle of its body: there is no one to answer.
      if ((error as NodeJS.ErrnoException).code === 'ECONNRESET') return void res.destroy()
      console.error('unhandled error serving a request:', error)
      if (!res.headersSent) plain(res, 500, 'Internal server error')
      else res.destroy()
    }
  })
  server.on('clientError', answerClientError)
  return server
}

/**
 * Requests node's parser refuses (a head over the size limit, malformed syntax) get the
 * contract's `{"detail": ...}` too, instead of node's default reply without a body.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  // As node does by default: answer only if no response to this connection is being written.
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy()
    return
  }
  const [status, reason, detail] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'Request line or headers too large']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'Request timeout']
        : [400, 'Bad Request', 'Malformed HTTP request']
  const body = JSON.stringify({ detail })
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  )
}
