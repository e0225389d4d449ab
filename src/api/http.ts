/**
 * The service's own request/response shapes: what a web `Request`/`Response` carries, minus
 * the streams and header objects that cost more than the token check on the hot path. The Node
 * server fills them straight from node:http; `fromWebRequest`/`toWebResponse` serve any
 * web-standard runtime (Deno, Bun, workers) with the same handler.
 */

export type HttpRequest = {
  method: string
  /** Path and query as in the request line, e.g. `/admin/users?limit=5`. */
  target: string
  /** A header by lower-case name; repeated headers joined with ", ". */
  header(name: string): string | null
  headerPairs(): Iterable<[string, string]>
  body: Uint8Array | null
  remoteAddress: string
}

export type HttpResponse = {
  status: number
  headers: Record<string, string>
  body: string | Uint8Array | null
}

export function jsonResponse(body: unknown, status = 200, headers?: Record<string, string>): HttpResponse {
  return {
    status,
    headers: headers
      ? { 'content-type': 'application/json', ...headers }
      : { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  }
}

export async function fromWebRequest(request: Request, remoteAddress: string): Promise<HttpRequest> {
  const url = new URL(request.url)
  const bytes = request.body ? new Uint8Array(await request.arrayBuffer()) : null
  return {
    method: request.method,
    target: `${url.pathname}${url.search}`,
    header: (name) => request.headers.get(name),
    headerPairs: () => {
      const pairs: [string, string][] = []
      request.headers.forEach((value, name) => {
        pairs.push([name, value])
      })
      return pairs
    },
    body: bytes && bytes.length > 0 ? bytes : null,
    remoteAddress,
  }
}

export function toWebRequest(request: HttpRequest): Request {
  return new Request(`http://localhost${request.target}`, {
    method: request.method,
    headers: [...request.headerPairs()],
    body: request.body as Uint8Array<ArrayBuffer> | null,
  })
}

export async function fromWebResponse(response: Response): Promise<HttpResponse> {
  const headers: Record<string, string> = {}
  response.headers.forEach((value, key) => {
    headers[key] = value
  })
  return {
    status: response.status,
    headers,
    body: response.body ? new Uint8Array(await response.arrayBuffer()) : null,
  }
}

export function toWebResponse(response: HttpResponse): Response {
  return new Response(response.body as string | Uint8Array<ArrayBuffer> | null, {
    status: response.status,
    headers: response.headers,
  })
}
