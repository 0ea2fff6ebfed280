import { pino, type Logger, type LoggerOptions } from 'pino'
import { ENV } from './constants.js'

export type { Logger } from 'pino'

// This module is the package's "./logger" entry, not part of the main one: pino is an optional
// peer dependency, installed by the server and client packages, and the certs CLI (which only
// uses the main entry) runs without it.

/** Headers that must never reach a log line. */
export const REDACTED_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']

export interface LoggerFactoryOptions {
  /** Component name in every line (e.g. "ipc-server"). */
  name: string
  /** pino level; default from NAACCORD_LOG_LEVEL, else "info". */
  level?: string
  /** Pretty-print for a human (examples on a terminal). Needs pino-pretty installed. */
  pretty?: boolean
  /** Where to write; default stdout (fd 1). */
  destination?: string | number
}

/**
 * The JSON logger used by server and client. Users can hand their own pino logger instead
 * (`logger` option), or `false` to silence ours.
 *
 * @example
 * const log = createLogger({ name: 'ipc-server' })
 */
export function createLogger(options: LoggerFactoryOptions): Logger {
  const level = options.level ?? process.env[ENV.logLevel] ?? 'info'
  const base: LoggerOptions = {
    name: options.name,
    level,
    redact: { paths: REDACTED_HEADERS.map((h) => `req.headers["${h}"]`), censor: '[redacted]' },
  }
  if (options.pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } } })
  }
  return pino(base, pino.destination({ dest: options.destination ?? 1, sync: false }))
}

/** A logger that writes nothing. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}

/** Resolve the `logger` option shared by server and client: a pino logger, false, or undefined (ours). */
export function resolveLogger(value: Logger | false | undefined, name: string): Logger {
  if (value === false) return silentLogger()
  if (value === undefined) return createLogger({ name })
  return value.child({ component: name })
}
