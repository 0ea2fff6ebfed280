import path from 'node:path'
import {
  InvalidOptionError,
  SupervisorError,
  parseInteger,
  pick,
  rejectUnknown,
  type Env,
  type Logger,
} from '@naaccord/ipc-shared'
import { resolveLogger } from '@naaccord/ipc-shared/logger'
import { resolveServerOptions, type ServerSettingSources } from '../options.js'

/** Environment variables of the supervisor (besides the socket ones it shares with serve()). */
export const SUPERVISOR_ENV = Object.freeze({
  readyTimeoutMs: 'NAACCORD_READY_TIMEOUT_MS',
  stopTimeoutMs: 'NAACCORD_STOP_TIMEOUT_MS',
  restartDelayMs: 'NAACCORD_RESTART_DELAY_MS',
  restartDelayMaxMs: 'NAACCORD_RESTART_DELAY_MAX_MS',
  pidFile: 'NAACCORD_PID_FILE',
})

export interface SupervisorOptions {
  /** The app to start: program and arguments, e.g. ['node', 'services.js']. Required. */
  command: readonly string[]
  /** Unix socket path. Env NAACCORD_SOCKET_PATH. Default `/var/run/naaccord/service.sock`. */
  socketPath?: string
  /** Mode of the socket file. Env NAACCORD_SOCKET_MODE. Default 0o600 (0o660 with socketGroup). */
  socketMode?: number | string
  /** Group (name or gid) that owns the socket. Env NAACCORD_SOCKET_GROUP. */
  socketGroup?: string | number
  /** Mode of the socket's folder when created. Env NAACCORD_SOCKET_DIR_MODE. Default 0o700 (0o750 with socketGroup). */
  dirMode?: number | string
  /** How long a new app process may take to report ready. Env NAACCORD_READY_TIMEOUT_MS. Default 30 000. */
  readyTimeoutMs?: number | string
  /** How long an app process may drain after SIGTERM before SIGKILL. Env NAACCORD_STOP_TIMEOUT_MS. Default 15 000 (longer than serve()'s shutdownTimeoutMs). */
  stopTimeoutMs?: number | string
  /** First delay before restarting a crashed app; doubles per crash in a row. Env NAACCORD_RESTART_DELAY_MS. Default 100. */
  restartDelayMs?: number | string
  /** Longest delay between restarts. Env NAACCORD_RESTART_DELAY_MAX_MS. Default 5 000. */
  restartDelayMaxMs?: number | string
  /** Where the supervisor writes its pid for `naaccord-ipc reload`. Env NAACCORD_PID_FILE. Default `<socketPath>.pid`. */
  pidFile?: string
  /** A pino logger, or false. Default JSON to stdout (NAACCORD_LOG_LEVEL). */
  logger?: Logger | false
}

/** Every default of the supervisor; `resolveSupervisorOptions` is the only reader. */
export const SUPERVISOR_DEFAULTS = Object.freeze({
  readyTimeoutMs: 30_000,
  stopTimeoutMs: 15_000,
  restartDelayMs: 100,
  restartDelayMaxMs: 5_000,
  /** An app that ran this long since it was ready resets the crash count (and so the delay). */
  stableAfterMs: 10_000,
})

export interface ResolvedSupervisorOptions {
  readonly command: readonly string[]
  readonly socketPath: string
  readonly socketMode: number
  readonly socketGid: number | undefined
  readonly dirMode: number
  readonly readyTimeoutMs: number
  readonly stopTimeoutMs: number
  readonly restartDelayMs: number
  readonly restartDelayMaxMs: number
  readonly pidFile: string
  readonly logger: Logger
  /** Where the socket settings came from (option, environment variable, default), for the start-up security report. */
  readonly sources: Pick<ServerSettingSources, 'socketPath' | 'socketMode' | 'socketGroup' | 'dirMode'>
}

const KNOWN = [
  'command',
  'socketPath',
  'socketMode',
  'socketGroup',
  'dirMode',
  'readyTimeoutMs',
  'stopTimeoutMs',
  'restartDelayMs',
  'restartDelayMaxMs',
  'pidFile',
  'logger',
] as const

/**
 * Normalise the supervisor's options once: explicit option, then environment, then
 * `SUPERVISOR_DEFAULTS`; the socket options go through serve()'s own resolver, so both read
 * them the same way.
 *
 * @example
 * const opts = resolveSupervisorOptions({ command: ['node', 'services.js'], socketPath: '/run/naaccord/service.sock' })
 */
export function resolveSupervisorOptions(options: SupervisorOptions, env: Env = process.env): ResolvedSupervisorOptions {
  rejectUnknown('options', options, KNOWN)
  if (!Array.isArray(options.command) || options.command.length === 0 || options.command.some((a) => typeof a !== 'string' || a === '')) {
    throw new SupervisorError('no app command: give the program to run after "--", e.g. naaccord-ipc run -- node services.js')
  }
  const socket = resolveServerOptions(
    { socketPath: options.socketPath, socketMode: options.socketMode, socketGroup: options.socketGroup, dirMode: options.dirMode, logger: false },
    env,
  )
  const int = (name: keyof typeof SUPERVISOR_ENV & keyof typeof SUPERVISOR_DEFAULTS, min: number) =>
    parseInteger(name, pick(options[name], env, SUPERVISOR_ENV[name]) ?? SUPERVISOR_DEFAULTS[name], min)
  const restartDelayMs = int('restartDelayMs', 1)
  const restartDelayMaxMs = int('restartDelayMaxMs', 1)
  if (restartDelayMaxMs < restartDelayMs) {
    throw new InvalidOptionError('restartDelayMaxMs', `must be at least restartDelayMs (${restartDelayMs}), got ${restartDelayMaxMs}`)
  }
  const pidFileRaw = pick(options.pidFile, env, SUPERVISOR_ENV.pidFile)
  return Object.freeze({
    command: Object.freeze([...options.command]),
    socketPath: socket.socketPath,
    socketMode: socket.socketMode,
    socketGid: socket.socketGid,
    dirMode: socket.dirMode,
    readyTimeoutMs: int('readyTimeoutMs', 1),
    stopTimeoutMs: int('stopTimeoutMs', 1),
    restartDelayMs,
    restartDelayMaxMs,
    pidFile: pidFileRaw === undefined ? `${socket.socketPath}.pid` : path.resolve(String(pidFileRaw)),
    logger: resolveLogger(options.logger, 'ipc-supervisor'),
    sources: Object.freeze({ socketPath: socket.sources.socketPath, socketMode: socket.sources.socketMode, socketGroup: socket.sources.socketGroup, dirMode: socket.sources.dirMode }),
  })
}
