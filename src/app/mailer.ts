/**
 * Outgoing mail through nodemailer to SMTP_URL, or to the log when none is configured. A
 * failed delivery is logged and retried with backoff; the caller never waits for it or sees it.
 */
import nodemailer from 'nodemailer'
import type { Logger } from '../logger.ts'

export type Mail = { to: string; subject: string; text: string }

const RETRY_DELAYS_MS = [1_000, 5_000, 30_000, 120_000, 600_000]

export function createMailer(options: { smtpUrl: string | null; from: string; log: Logger }) {
  const { smtpUrl, from, log } = options
  const transport = smtpUrl ? nodemailer.createTransport(smtpUrl) : null
  const pending = new Set<Promise<void>>()
  const timers = new Set<NodeJS.Timeout>()
  let closed = false

  async function attempt(mail: Mail, tries: number): Promise<void> {
    if (!transport) {
      log.info('mail (no SMTP_URL configured, written to the log)', {
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
      })
      return
    }
    try {
      await transport.sendMail({ from, ...mail })
      log.info('mail sent', { subject: mail.subject })
    } catch (error) {
      const delay = RETRY_DELAYS_MS[tries]
      if (delay === undefined || closed) {
        log.error('mail delivery failed for good', {
          subject: mail.subject,
          attempts: tries + 1,
          error: (error as Error).message,
        })
        return
      }
      log.warn('mail delivery failed, will retry', {
        subject: mail.subject,
        attempt: tries + 1,
        retry_in_ms: delay,
        error: (error as Error).message,
      })
      const timer = setTimeout(() => {
        timers.delete(timer)
        track(attempt(mail, tries + 1))
      }, delay)
      timers.add(timer)
    }
  }

  function track(delivery: Promise<void>): void {
    pending.add(delivery)
    delivery.finally(() => pending.delete(delivery))
  }

  return {
    send(mail: Mail): void {
      track(attempt(mail, 0))
    },
    /** Waits for deliveries in flight; retries still scheduled are dropped with an error log. */
    async close(): Promise<void> {
      closed = true
      await Promise.allSettled(pending)
      for (const timer of timers) clearTimeout(timer)
      if (timers.size > 0) log.error('mail retries dropped at shutdown', { count: timers.size })
      transport?.close()
    },
  }
}

export type Mailer = ReturnType<typeof createMailer>
