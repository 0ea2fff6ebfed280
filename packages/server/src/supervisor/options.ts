import path from 'node:path'
import {
  InvalidOptionError,
  SupervisorError,
  anyValue,
  defaultsOf,
  envOf,
  integer,
  option,
  optional,
  parseInteger,
  parseString,
  pickOptions,
  rejectUnknown,
  resolveOptions,
  type Env,
  type Logger,
  type OptionContext,
  type OptionsInput,
  type OptionsResolved,
} from '@naaccord/ipc-shared'
import { resolveLogger } from '@naaccord/ipc-shared/logger'
import { SERVER_OPTIONS, resolveServerOptions, type ServerSettingSources } from '../options.js'

function parseCommand(_name: string, value: unknown): readonly string[] {
  if (!Array.isArray(value) || value.length === 0 || value.some((a) => typeof a !== 'string' || a === '')) {
    throw new SupervisorError('no app command: give the program to run after "--", e.g. naaccord-ipc run -- node services.js')
  }
  return Object.freeze([...(value as string[])])
}

function parseRestartDelayMax(name: string, value: unknown, { resolved }: OptionContext): number {
  const max = parseInteger(name, value, 1)
  if (max < (resolved.restartDelayMs as number)) {
    throw new InvalidOptionError(name, `must be at least restartDelayMs (${resolved.restartDelayMs as number}), got ${max}`)
  }
  return max
}

/** The supervisor's own options, declared once (the socket options are serve()'s, below). */
const OWN_OPTIONS = {
  /** The app to start: program and arguments, e.g. ['node', 'services.js']. */
  command: option<readonly string[]>()({ required: true, parse: parseCommand }),
  /** Longest wait for a new app's ready message. */
  readyTimeoutMs: option<number | string>()({ env: 'NAACCORD_READY_TIMEOUT_MS', default: 30_000, parse: integer(1) }),
  /** Drain time after SIGTERM before SIGKILL (longer than `shutdownTimeoutMs`). */
  stopTimeoutMs: option<number | string>()({ env: 'NAACCORD_STOP_TIMEOUT_MS', default: 15_000, parse: integer(1) }),
  /** First delay before restarting a crashed app; doubles per crash in a row. */
  restartDelayMs: option<number | string>()({ env: 'NAACCORD_RESTART_DELAY_MS', default: 100, parse: integer(1) }),
  /** Longest delay between restarts. */
  restartDelayMaxMs: option<number | string>()({ env: 'NAACCORD_RESTART_DELAY_MAX_MS', default: 5_000, parse: parseRestartDelayMax }),
  /** Where `reload` finds the supervisor; in a folder only this uid or root can change (a shared `1777` folder is refused). */
  pidFile: option<string>()({ env: 'NAACCORD_PID_FILE', parse: optional((name: string, v: unknown) => path.resolve(parseString(name, v))), docs: { default: '`<socketPath>.pid`' } }),
  /** A pino logger, or `false`. */
  logger: option<Logger | false>()({ parse: anyValue<Logger | false | undefined>, docs: { default: 'pino JSON to stdout' } }),
}

/**
 * Every option of `supervise()`, declared once. The socket options are serve()'s own entries
 * (same variables, defaults and checks), resolved by serve()'s resolver so both read them alike.
 */
export const SUPERVISOR_OPTIONS = { ...OWN_OPTIONS, ...pickOptions(SERVER_OPTIONS, ['socketPath', 'socketGroup', 'socketMode', 'dirMode']) }

export type SupervisorOptions = OptionsInput<typeof SUPERVISOR_OPTIONS>

/** Environment variables of the supervisor (besides the socket ones it shares with serve()). */
export const SUPERVISOR_ENV = Object.freeze(
  envOf(OWN_OPTIONS) as { readonly readyTimeoutMs: string; readonly stopTimeoutMs: string; readonly restartDelayMs: string; readonly restartDelayMaxMs: string; readonly pidFile: string },
)

/** Every default of the supervisor, from `SUPERVISOR_OPTIONS`. */
export const SUPERVISOR_DEFAULTS = Object.freeze({
  ...(defaultsOf(OWN_OPTIONS) as { readonly readyTimeoutMs: number; readonly stopTimeoutMs: number; readonly restartDelayMs: number; readonly restartDelayMaxMs: number }),
  /** An app that ran this long since it was ready resets the crash count (and so the delay). */
  stableAfterMs: 10_000,
})

export interface ResolvedSupervisorOptions extends Omit<OptionsResolved<typeof OWN_OPTIONS>, 'pidFile' | 'logger'> {
  readonly socketPath: string
  readonly socketMode: number
  readonly socketGid: number | undefined
  readonly dirMode: number
  readonly pidFile: string
  readonly logger: Logger
  /** Where the socket settings came from (option, environment variable, default), for the start-up security report. */
  readonly sources: Pick<ServerSettingSources, 'socketPath' | 'socketMode' | 'socketGroup' | 'dirMode'>
}

/**
 * Normalise the supervisor's options once, from `SUPERVISOR_OPTIONS`: explicit option, then
 * environment, then default; the socket options go through serve()'s own resolver, so both read
 * them the same way.
 *
 * @example
 * const opts = resolveSupervisorOptions({ command: ['node', 'services.js'], socketPath: '/run/naaccord/service.sock' })
 */
export function resolveSupervisorOptions(options: SupervisorOptions, env: Env = process.env): ResolvedSupervisorOptions {
  rejectUnknown('options', options, Object.keys(SUPERVISOR_OPTIONS))
  const { socketPath, socketMode, socketGroup, dirMode, ...own } = options
  const { values } = resolveOptions(OWN_OPTIONS, own, { scope: 'options', env })
  const socket = resolveServerOptions({ socketPath, socketMode, socketGroup, dirMode, logger: false }, env)
  const { sources } = socket
  return Object.freeze({
    ...values,
    socketPath: socket.socketPath,
    socketMode: socket.socketMode,
    socketGid: socket.socketGid,
    dirMode: socket.dirMode,
    pidFile: values.pidFile ?? `${socket.socketPath}.pid`,
    logger: resolveLogger(values.logger, 'ipc-supervisor'),
    sources: Object.freeze({ socketPath: sources.socketPath, socketMode: sources.socketMode, socketGroup: sources.socketGroup, dirMode: sources.dirMode }),
  })
}
