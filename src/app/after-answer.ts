/**
 * Work that must not delay, or show in the timing of, the answer it belongs to: recording a
 * failed login, handling a password-reset request. The event store's calls do their I/O
 * synchronously behind promises, so merely not awaiting them is not enough: they would still
 * run, as microtasks, before the server writes the answer at the end of the event-loop turn
 * (a `setImmediate`). A timer fires only after that.
 */
import type { Logger } from '../logger.ts'

export function createAfterAnswer(log: Logger) {
  const pending = new Set<Promise<void>>()
  return {
    /** Schedules `work`; a failure is logged under `what` with `fields`, never thrown. */
    run(what: string, work: () => Promise<unknown>, fields: Record<string, unknown> = {}): void {
      const done: Promise<void> = new Promise((resolve) => setTimeout(resolve, 0))
        .then(work)
        .then(
          () => undefined,
          (error: unknown) => log.error(what, { ...fields, error: (error as Error).message }),
        )
        .finally(() => pending.delete(done))
      pending.add(done)
    },
    /** Resolves once everything scheduled so far has finished (tests, shutdown). */
    async settled(): Promise<void> {
      while (pending.size > 0) await Promise.allSettled([...pending])
    },
  }
}

export type AfterAnswer = ReturnType<typeof createAfterAnswer>
