import { InvalidOptionError } from './errors.js'
import { pino, type Logger, type LoggerOptions } from 'pino'
import { ENV } from './constants.js'
import { markNoLogs } from './forced-warning.js'
import { bufferedDestination, type BufferedDestination } from './log-destination.js'

export type { Logger } from 'pino'
export { LOG_BUFFER, bufferedDestination, flushAllSync, type BufferedDestination } from './log-destination.js'
export { WEAKENED_WARNING_CODE, warnWhateverLevel } from './forced-warning.js'

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

interface FlushableStream {
  flushSync?: () => void
  destroyed?: boolean
}

function flushStream(stream: FlushableStream | undefined): void {
  if (!stream || stream.destroyed || typeof stream.flushSync !== 'function') return
  try {
    stream.flushSync()
  } catch {
    // Not open yet (nothing was written then) or already closed: nothing to flush.
  }
}

// One buffered destination per file or descriptor, shared by every logger that writes there: a
// process that creates many clients (each with our logger) holds one buffer and one timer per
// destination, not one per logger, and lines from all of them stay in order.
const destinations = new Map<string | number, BufferedDestination>()

function sharedDestination(dest: string | number): BufferedDestination {
  let d = destinations.get(dest)
  if (d === undefined || d.destroyed) {
    d = bufferedDestination(dest)
    destinations.set(dest, d)
  }
  return d
}

/**
 * The JSON logger used by server and client. Users can hand their own pino logger instead
 * (`logger` option), or `false` to silence ours. Output is buffered (see LOG_BUFFER and
 * bufferedDestination).
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
  return pino(base, sharedDestination(options.destination ?? 1))
}

/**
 * Write out whatever `logger` still buffers: waits (at most `timeoutMs`) for a write in flight
 * when the destination can say so (ours), then writes the rest synchronously when the
 * destination can (ours, any pino.destination / sonic-boom); otherwise does nothing. Never
 * rejects. serve() awaits it at the end of close(), so every request line is written before
 * close() resolves.
 *
 * @example
 * await ipc.close() // already flushed
 * await flushLogger(myLogger) // before a process.exit() of your own
 */
export async function flushLogger(logger: Logger, timeoutMs = 1000): Promise<void> {
  const stream = (logger as unknown as Record<symbol, (FlushableStream & { flush?: (cb: () => void) => void }) | undefined>)[pino.symbols.streamSym]
  if (stream && !stream.destroyed && typeof stream.flush === 'function') {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs)
      timer.unref()
      try {
        stream.flush!(() => {
          clearTimeout(timer)
          resolve()
        })
      } catch {
        clearTimeout(timer)
        resolve()
      }
    })
  }
  flushStream(stream)
}

/** A logger that writes nothing. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}

/** Resolve the `logger` option shared by server and client: a pino logger, false, or undefined (ours). */
export function resolveLogger(value: Logger | false | undefined, name: string): Logger {
  // Marked: a security weakening is then said as a process warning (warnWhateverLevel).
  if (value === false) return markNoLogs(silentLogger())
  if (value === undefined) return createLogger({ name })
  if (value === null || typeof value !== 'object' || typeof (value as { child?: unknown }).child !== 'function') {
    throw new InvalidOptionError('logger', `must be a pino logger or false, got ${value === null ? 'null' : typeof value}`)
  }
  return value.child({ component: name })
}
