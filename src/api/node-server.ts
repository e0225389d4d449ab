/**
 * Serves the service's handler on node:http with as little in between as it can: requests
 * become `HttpRequest`s straight from node's parsed head (no web `Request`, no header object),
 * and bodies are read with a size limit first, so an oversized upload never reaches a handler.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { HttpRequest, HttpResponse } from './http.ts'

export const MAX_BODY_BYTES = 64 * 1024

export type Handler = (request: HttpRequest) => Promise<HttpResponse>

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

/**
 * The path and query to route by, from the request target alone. The Host header takes no part:
 * joined in front of the path, `Host: x/admin/users#` would route a request for /healthz to
 * /admin/users. An absolute-form target (`GET http://host/path`) counts by its path and query.
 */
function routingTarget(target: string): string {
  if (target.startsWith('/')) return target
  if (!URL.canParse(target)) return '/'
  const { pathname, search } = new URL(target)
  return `${pathname}${search}`
}

function toHttpRequest(req: IncomingMessage, body: Uint8Array | null): HttpRequest {
  return {
    method: req.method ?? 'GET',
    target: routingTarget(req.url ?? '/'),
    header: (name) => headerValue(req, name),
    *headerPairs() {
      const raw = req.rawHeaders
      for (let i = 0; i < raw.length; i += 2) yield [raw[i], raw[i + 1]]
    },
    body: body && body.length > 0 ? body : null,
    remoteAddress: req.socket.remoteAddress ?? 'unknown',
  }
}

/**
 * A header by lower-case name, read from the raw list: the common case, one occurrence, needs
 * no header object. A repeated header is left to node's rules (some drop repeats, most join).
 */
function headerValue(req: IncomingMessage, name: string): string | null {
  const raw = req.rawHeaders
  let found: string | null = null
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length !== name.length || raw[i].toLowerCase() !== name) continue
    if (found !== null) {
      const value = req.headers[name]
      return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value
    }
    found = raw[i + 1]
  }
  return found
}

function send(res: ServerResponse, response: HttpResponse): void {
  // A Buffer body goes out with the head in one writev; a string body took node's slower
  // string-write path (37% of the server's CPU on GET /protected in a profile).
  const body = typeof response.body === 'string' ? Buffer.from(response.body) : (response.body ?? EMPTY)
  // A flat [name, value, …] list is node's cheapest way in: no intermediate header object.
  const head: string[] = []
  for (const name in response.headers) head.push(name, response.headers[name])
  head.push('content-length', String(body.length))
  res.writeHead(response.status, head)
  res.end(body)
}

const EMPTY = new Uint8Array(0)

/**
 * Answers go out together once the event loop has run every callback of the current poll
 * (setImmediate), not one at a time as each handler finishes. Under concurrent load the
 * requests that arrived in one poll are answered in one burst, so each peer is woken once for
 * its answer and the loop runs reads and writes in long stretches: in bench/http.ts this took
 * the server's CPU per GET /protected from 85–96 to 41–55 µs. A lone request waits only for
 * the rest of its own loop turn.
 */
function createResponseQueue(server: Server): (res: ServerResponse, response: HttpResponse) => void {
  let pending: [ServerResponse, HttpResponse][] = []
  function flush(): void {
    const batch = pending
    pending = []
    // Shutting down (server.close() was called): the client must not reuse this connection, and
    // the server must not wait for it to go idle before it can exit.
    const closing = !server.listening
    for (const [res, response] of batch) {
      try {
        if (closing) res.setHeader('connection', 'close')
        send(res, response)
      } catch (error) {
        console.error('unhandled error writing a response:', error)
        if (!res.headersSent) plain(res, 500, 'Internal server error')
        else res.destroy()
      }
    }
  }
  return (res, response) => {
    if (pending.push([res, response]) === 1) setImmediate(flush)
  }
}

export function createNodeServer(handler: Handler): Server {
  const server = createServer({ keepAliveTimeout: 5_000, requestTimeout: 30_000 }, async (req, res) => {
    try {
      const hasBody = req.method !== 'GET' && req.method !== 'HEAD'
      const body = hasBody ? await readBody(req) : null
      if (body === 'too_large') {
        res.setHeader('connection', 'close')
        return plain(res, 413, `Request body larger than ${MAX_BODY_BYTES} bytes`)
      }
      answer(res, await handler(toHttpRequest(req, body)))
    } catch (error) {
      // The client went away in the middle of its body: there is no one to answer.
      if ((error as NodeJS.ErrnoException).code === 'ECONNRESET') return void res.destroy()
      console.error('unhandled error serving a request:', error)
      if (!res.headersSent) plain(res, 500, 'Internal server error')
      else res.destroy()
    }
  })
  const answer = createResponseQueue(server)
  server.on('clientError', answerClientError)
  return server
}

function plain(res: ServerResponse, status: number, detail: string): void {
  const body = JSON.stringify({ detail })
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
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
