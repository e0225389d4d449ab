/**
 * A minimal keep-alive HTTP/1.1 client for the benchmarks (Content-Length bodies only), on
 * node:net: one request in flight per connection, no parsing beyond the status and the body, so
 * the client's own cost stays small next to the server's.
 */
import { connect, type Socket } from 'node:net'

export const HOST = '127.0.0.1'

export type Reply = { status: number; body: Buffer }

const HEADER_END = Buffer.from('\r\n\r\n')

export class Connection {
  private socket: Socket | null = null
  private buffer: Buffer = Buffer.alloc(0)
  private waiting: { resolve: (reply: Reply) => void; reject: (error: Error) => void } | null = null
  private readonly port: number

  constructor(port: number) {
    this.port = port
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: HOST, port: this.port }, () => {
        socket.off('error', reject)
        resolve()
      })
      socket.setNoDelay(true)
      socket.once('error', reject)
      socket.on('data', (chunk: Buffer) => this.onData(chunk))
      const fail = (error: Error): void => {
        if (this.socket === socket) this.socket = null
        const waiting = this.waiting
        this.waiting = null
        waiting?.reject(error)
      }
      socket.on('error', fail)
      socket.on('close', () => fail(new Error('connection closed')))
      this.socket = socket
      this.buffer = Buffer.alloc(0)
    })
  }

  /** Sends a request built once (see `requestBytes`), for load loops. */
  async request(data: Buffer): Promise<Reply> {
    if (!this.socket) await this.open()
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject }
      this.socket!.write(data)
    })
  }

  send(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
    return this.request(requestBytes(this.port, method, path, headers, body))
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk])
    if (!this.waiting) return
    const end = this.buffer.indexOf(HEADER_END)
    if (end < 0) return
    const head = this.buffer.toString('latin1', 0, end)
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)
    if (!length) {
      this.destroy()
      this.waiting?.reject(new Error(`response without content-length: ${head.split('\r\n')[0]}`))
      this.waiting = null
      return
    }
    const total = end + 4 + Number(length[1])
    if (this.buffer.length < total) return
    const reply = { status: Number(head.slice(9, 12)), body: this.buffer.subarray(end + 4, total) }
    this.buffer = this.buffer.subarray(total)
    const waiting = this.waiting
    this.waiting = null
    waiting.resolve(reply)
  }

  destroy(): void {
    this.socket?.destroy()
    this.socket = null
  }
}

export function requestBytes(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Buffer {
  const lines = [`${method} ${path} HTTP/1.1`, `host: ${HOST}:${port}`]
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
  if (body !== undefined) lines.push(`content-length: ${Buffer.byteLength(body)}`)
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body ?? ''}`)
}
