/** A real SMTP server (the `smtp-server` package) on 127.0.0.1 that keeps every mail it receives. */
import { createServer } from 'node:net'
import { SMTPServer } from 'smtp-server'

export type CapturedMail = {
  /** Envelope sender (MAIL FROM) and recipients (RCPT TO). */
  envelopeFrom: string | null
  envelopeTo: string[]
  /** Header names in lower case, folded lines joined. */
  headers: Record<string, string>
  /** The body with any quoted-printable or base64 transfer encoding undone. */
  text: string
}

export type SmtpSink = {
  port: number
  mails: CapturedMail[]
  /** Resolves once at least `count` mails arrived; rejects after `timeoutMs`. */
  waitForMails(count: number, timeoutMs?: number): Promise<CapturedMail[]>
  close(): Promise<void>
}

/** A port on 127.0.0.1 that was free a moment ago (nothing listens on it now). */
export async function freePort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const address = probe.address()
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  if (!address || typeof address === 'string') throw new Error('no port')
  return address.port
}

function parseMail(raw: string): { headers: Record<string, string>; text: string } {
  const split = raw.search(/\r?\n\r?\n/)
  const head = split < 0 ? raw : raw.slice(0, split)
  const body = split < 0 ? '' : raw.slice(split).replace(/^\r?\n\r?\n/, '')
  const headers: Record<string, string> = {}
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':')
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const encoding = (headers['content-transfer-encoding'] ?? '').toLowerCase()
  let text = body
  if (encoding === 'quoted-printable') {
    const bytes = body
      .replace(/=\r?\n/g, '')
      .replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
    text = Buffer.from(bytes, 'latin1').toString('utf8')
  } else if (encoding === 'base64') {
    text = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8')
  }
  return { headers, text: text.replace(/\r\n/g, '\n') }
}

export async function startSmtp(port = 0): Promise<SmtpSink> {
  const mails: CapturedMail[] = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('end', () => {
        const { headers, text } = parseMail(Buffer.concat(chunks).toString('utf8'))
        const from = session.envelope.mailFrom
        mails.push({
          envelopeFrom: from ? from.address : null,
          envelopeTo: session.envelope.rcptTo.map((r) => r.address),
          headers,
          text,
        })
        callback()
      })
    },
  })
  const listening = server.listen(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => {
    listening.once('listening', () => resolve())
    listening.once('error', reject)
  })
  const address = listening.address()
  if (!address || typeof address === 'string') throw new Error('SMTP server has no port')
  return {
    port: address.port,
    mails,
    async waitForMails(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs
      while (mails.length < count) {
        if (Date.now() > deadline) {
          throw new Error(`expected ${count} mail(s) within ${timeoutMs} ms, got ${mails.length}`)
        }
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      return mails
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
