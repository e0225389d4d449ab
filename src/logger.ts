/** Structured JSON logs on stdout. Callers pass only what is safe to log: never secrets or tokens. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

export type Logger = Record<LogLevel, (message: string, fields?: Record<string, unknown>) => void>

export function createLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
): Logger {
  const at =
    (l: LogLevel) =>
    (message: string, fields: Record<string, unknown> = {}): void => {
      if (ORDER[l] < ORDER[level]) return
      write(JSON.stringify({ time: new Date().toISOString(), level: l, message, ...fields }))
    }
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }
