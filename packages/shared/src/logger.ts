import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino'
import { ENV } from './constants.js'

export type { Logger } from 'pino'

/** Headers that must never reach a log line. */
export const REDACTED_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']

/**
 * How our own logger buffers: lines are collected in memory and written once `minLength` bytes
 * are waiting, and at the latest every `flushIntervalMs` (an unref'd timer, so it never keeps a
 * process alive). One write(2) per few dozen lines instead of one per line; a SIGKILL (or a
 * crash that skips 'exit') loses at most the last `flushIntervalMs` of lines. Everything that
 * ends a process normally flushes synchronously first: server close(), SIGTERM/SIGINT through
 * serve(), process.exit() and an uncaught exception.
 */
export const LOG_BUFFER = Object.freeze({ minLength: 4096, flushIntervalMs: 100 })

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

// Our buffered destinations still open, flushed by one uncaughtExceptionMonitor listener (a
// monitor observes the error without changing what Node does with it: the process still dies).
const open = new Set<FlushableStream>()
let monitorInstalled = false

function flushOpenDestinations(): void {
  for (const stream of open) flushStream(stream)
}

function flushStream(stream: FlushableStream | undefined): void {
  if (!stream || stream.destroyed || typeof stream.flushSync !== 'function') return
  try {
    stream.flushSync()
  } catch {
    // Not open yet (nothing was written then) or already closed: nothing to flush.
  }
}

/**
 * The JSON logger used by server and client. Users can hand their own pino logger instead
 * (`logger` option), or `false` to silence ours. Output is buffered (see LOG_BUFFER).
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
  // pino registers its own flushSync on process 'exit' for an asynchronous destination.
  const destination = pino.destination({
    dest: options.destination ?? 1,
    sync: false,
    minLength: LOG_BUFFER.minLength,
    periodicFlush: LOG_BUFFER.flushIntervalMs,
  })
  open.add(destination)
  destination.on('close', () => open.delete(destination))
  if (!monitorInstalled) {
    monitorInstalled = true
    process.on('uncaughtExceptionMonitor', flushOpenDestinations)
  }
  return pino(base, destination)
}

/**
 * Write out whatever `logger` still buffers, synchronously, when its destination can do that
 * (ours, any pino.destination / sonic-boom); otherwise a no-op. Never throws. serve() calls it
 * at the end of close(), so every request line is on disk before close() resolves.
 *
 * @example
 * await ipc.close() // already flushed
 * flushLogger(myLogger) // before a process.exit() of your own
 */
export function flushLogger(logger: Logger): void {
  const stream = (logger as unknown as Record<symbol, DestinationStream | undefined>)[pino.symbols.streamSym]
  flushStream(stream as FlushableStream | undefined)
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
