import type { Logger } from 'pino'

/**
 * A warning that the operator must see whatever the log level: a security setting weaker than
 * the default (a wide socket mode, a trusted proxy uid, the peer check off, TLS verification
 * off). Server and client both say their weakenings through `warnWhateverLevel`.
 */

/** The `code` of the process warning emitted when there is no logger to write to (`logger: false`). */
export const WEAKENED_WARNING_CODE = 'IPC_SECURITY_WEAKENED'

// Loggers that stand for `logger: false`: the user asked for no log lines, so a weakening is said
// as a process warning instead (a pino logger at level "silent" still has a stream, ours stdout).
const noLogs = new WeakSet<object>()

/** Mark `logger` as the stand-in for `logger: false` (resolveLogger does). */
export function markNoLogs<L extends object>(logger: L): L {
  noLogs.add(logger)
  return logger
}

/**
 * Process warnings turned off as a whole (NODE_NO_WARNINGS=1, often set in container images for
 * other reasons, or --no-warnings): a weakening is then written to stderr directly. Turning off
 * this very code (--disable-warning=IPC_SECURITY_WEAKENED) is an opt-out by name and is honoured.
 */
function warningsOffWholesale(): boolean {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)]
  return (
    process.env.NODE_NO_WARNINGS === '1' ||
    (process as { noProcessWarnings?: boolean }).noProcessWarnings === true ||
    flags.includes('--no-warnings') ||
    flags.includes('--disable-warning=SecurityWarning')
  )
}

function emit(fields: object, msg: string): void {
  if (warningsOffWholesale()) {
    process.stderr.write(`(naaccord-ipc) [${WEAKENED_WARNING_CODE}] SecurityWarning: ${msg} ${JSON.stringify(fields)}\n`)
    return
  }
  process.emitWarning(msg, { type: 'SecurityWarning', code: WEAKENED_WARNING_CODE, detail: JSON.stringify(fields) })
}

/**
 * Write `msg` at level warn even when the logger's level is above warn ("error", "fatal",
 * "silent"): through the logger itself when warn is enabled, else through a child logger with
 * its own level "warn" (pino gives each child its own level; the line carries the parent's name
 * and bindings and goes to the same stream). Said as a process warning instead (code
 * `IPC_SECURITY_WEAKENED`, type `SecurityWarning`; `node --disable-warning=IPC_SECURITY_WEAKENED`
 * turns it off) when the logger stands for `logger: false`, or is one whose child cannot be
 * brought to warn. A stream that filters by level itself (a `pino.multistream` entry at
 * level "error") still drops the line: that filter is outside the logger.
 *
 * @example
 * warnWhateverLevel(log, { setting: 'socketMode', value: '0666', source: 'env:NAACCORD_SOCKET_MODE' }, 'security weakened: socketMode 0666 ...')
 */
export function warnWhateverLevel(logger: Logger, fields: object, msg: string): void {
  if (noLogs.has(logger)) {
    emit(fields, msg)
    return
  }
  if (logger.isLevelEnabled('warn')) {
    logger.warn(fields, msg)
    return
  }
  let forced: Logger | undefined
  try {
    forced = logger.child({}, { level: 'warn' })
  } catch {
    // A logger without a "warn" level (useOnlyCustomLevels): said as a process warning below.
  }
  if (forced?.isLevelEnabled('warn')) forced.warn(fields, msg)
  else emit(fields, msg)
}
