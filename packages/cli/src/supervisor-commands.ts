import { DEFAULT_SOCKET_PATH, ENV, InvalidOptionError } from '@naaccord/ipc-shared'
import { resolveSupervisorOptions, signalSupervisor, supervise, SUPERVISOR_DEFAULTS, SUPERVISOR_ENV, type Supervisor } from '@naaccord/ipc-server/supervisor'
import type { CliIo } from './cli-io.js'
import { optionsHelp, parseErrorMessage, parseFlags, str, type FlagTable, type FlagValues } from './flags.js'

/** Where the run and reload commands write (the CLI's io). */
export type SupervisorCliIo = CliIo

const SOCKET_FLAG = { name: 'socket', type: 'string', value: 'PATH', env: ENV.socketPath, default: DEFAULT_SOCKET_PATH, description: 'socket path' } as const
const PID_FILE_FLAG = { name: 'pid-file', type: 'string', value: 'PATH', env: SUPERVISOR_ENV.pidFile, default: '<socket>.pid', description: 'pid file for "naaccord-ipc reload"' } as const

/** The flags of `naaccord-ipc run`; the supervisor applies the environment and the defaults. */
export const RUN_FLAGS: FlagTable = [
  SOCKET_FLAG,
  { name: 'socket-mode', type: 'string', value: 'MODE', env: ENV.socketMode, default: '0600, 0660 with a group', description: 'socket file mode' },
  { name: 'socket-group', type: 'string', value: 'GROUP', env: ENV.socketGroup, description: 'socket group, name or gid' },
  { name: 'dir-mode', type: 'string', value: 'MODE', env: ENV.dirMode, description: 'mode of the socket folder when created' },
  { name: 'ready-timeout', type: 'string', value: 'MS', env: SUPERVISOR_ENV.readyTimeoutMs, default: SUPERVISOR_DEFAULTS.readyTimeoutMs, description: 'longest wait for a new app to serve' },
  { name: 'stop-timeout', type: 'string', value: 'MS', env: SUPERVISOR_ENV.stopTimeoutMs, default: SUPERVISOR_DEFAULTS.stopTimeoutMs, description: 'drain time after SIGTERM before SIGKILL' },
  { name: 'restart-delay', type: 'string', value: 'MS', env: SUPERVISOR_ENV.restartDelayMs, default: SUPERVISOR_DEFAULTS.restartDelayMs, description: 'first delay before restarting a crashed app, doubling' },
  { name: 'restart-delay-max', type: 'string', value: 'MS', env: SUPERVISOR_ENV.restartDelayMaxMs, default: SUPERVISOR_DEFAULTS.restartDelayMaxMs, description: 'longest delay between restarts' },
  PID_FILE_FLAG,
]

/** The flags of `naaccord-ipc reload`. */
export const RELOAD_FLAGS: FlagTable = [SOCKET_FLAG, PID_FILE_FLAG]

export const RUN_USAGE = `Usage: naaccord-ipc run [options] -- <program> [args...]

Hold the services socket and run the app with it as fd 3 (LISTEN_FDS=1, as systemd socket
activation does). SIGHUP (or "naaccord-ipc reload") starts a new app process, waits until it
serves, then stops the old one gracefully: no connection is refused, no request cut. A crashed
app is restarted with backoff. SIGTERM/SIGINT stop the app, then remove the socket and lock.

Options:
${optionsHelp(RUN_FLAGS)}

Example:
  naaccord-ipc run --socket /run/naaccord/service.sock -- node services.js
  naaccord-ipc reload --socket /run/naaccord/service.sock     # or: kill -HUP <supervisor pid>
`

export const RELOAD_USAGE = `Usage: naaccord-ipc reload [--socket PATH] [--pid-file PATH]

Ask the supervisor ("naaccord-ipc run") for a graceful reload: SIGHUP to the pid in its pid file
(default <socket>.pid), only once that pid is proven to be the supervisor of the socket. The pid
file must be owned by this user or root, in folders only they can change (else IPC_UNSAFE_PATH),
and the kernel must say that its pid holds the socket's lock (else IPC_SUPERVISOR); nothing is
signalled otherwise. Run it as the user that runs the supervisor, or as root.

Options:
${optionsHelp(RELOAD_FLAGS)}
`

function parse(command: string, table: FlagTable, args: readonly string[]): { values: FlagValues; positionals: string[] } {
  try {
    return parseFlags(table, args, true)
  } catch (err) {
    throw new InvalidOptionError(command, parseErrorMessage(err))
  }
}

/**
 * `naaccord-ipc run ...` and `naaccord-ipc reload ...`: resolves to the exit code. `run` returns
 * once the supervisor has stopped (SIGTERM/SIGINT). Usage mistakes throw `IPC_INVALID_OPTION`,
 * other refusals their own IpcError.
 *
 * @example
 * process.exitCode = await supervisorCli('run', ['--socket', '/run/naaccord/service.sock', '--', 'node', 'services.js'], io)
 */
export async function supervisorCli(command: 'run' | 'reload', argv: readonly string[], io: SupervisorCliIo): Promise<number> {
  return command === 'reload' ? await runReload(argv, io) : await runRun(argv, io)
}

async function runReload(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse('reload', RELOAD_FLAGS, argv)
  if (values.help === true) {
    io.stdout(RELOAD_USAGE)
    return 0
  }
  if (positionals.length > 0) throw new InvalidOptionError('reload', `unexpected argument "${positionals[0]}"`)
  const socket = str(values.socket)
  const resolved = resolveSupervisorOptions({ command: ['-'], socketPath: socket, pidFile: str(values['pid-file']), logger: false })
  const pid = await signalSupervisor({ pidFile: resolved.pidFile, socketPath: resolved.socketPath, socketNamed: socket !== undefined }, 'SIGHUP')
  io.stdout(`naaccord-ipc: asked the supervisor (pid ${pid}) to reload\n`)
  return 0
}

async function runRun(argv: readonly string[], io: CliIo): Promise<number> {
  const dash = argv.indexOf('--')
  const { values, positionals } = parse('run', RUN_FLAGS, dash === -1 ? argv : argv.slice(0, dash))
  if (values.help === true) {
    io.stdout(RUN_USAGE)
    return 0
  }
  if (positionals.length > 0) throw new InvalidOptionError('run', `unexpected argument "${positionals[0]}"; put the app after "--": naaccord-ipc run -- node services.js`)
  const signals = new SignalRelay(io)
  try {
    const supervisor = await supervise({
      command: dash === -1 ? [] : argv.slice(dash + 1),
      socketPath: str(values.socket),
      socketMode: str(values['socket-mode']),
      socketGroup: str(values['socket-group']),
      dirMode: str(values['dir-mode']),
      readyTimeoutMs: str(values['ready-timeout']),
      stopTimeoutMs: str(values['stop-timeout']),
      restartDelayMs: str(values['restart-delay']),
      restartDelayMaxMs: str(values['restart-delay-max']),
      pidFile: str(values['pid-file']),
    })
    signals.started(supervisor)
    await supervisor.stopped
  } finally {
    signals.remove()
  }
  return 0
}

/**
 * SIGHUP reloads, SIGTERM/SIGINT stop. The handlers are in place before the first app starts: a
 * signal during the start (up to --ready-timeout) must not kill the supervisor by the default
 * action and orphan its app with the socket, lock and pid file left behind. A stop asked meanwhile
 * runs once the start is over; a reload asked meanwhile is needless (the app starting is the
 * newest) and only logged.
 */
class SignalRelay {
  #supervisor: Supervisor | undefined
  #stopAsked: NodeJS.Signals | undefined
  readonly #onHup = () => {
    if (this.#supervisor) void this.#supervisor.reload()
    else this.io.stderr('naaccord-ipc run: reload asked while the first app is starting; nothing to replace yet\n')
  }
  readonly #onStop = (signal: NodeJS.Signals) => {
    if (!this.#supervisor) {
      this.#stopAsked = signal
      return
    }
    this.#supervisor.options.logger.info({ signal }, 'stop requested')
    void this.#supervisor.stop()
  }

  constructor(private readonly io: CliIo) {
    process.on('SIGHUP', this.#onHup)
    process.on('SIGTERM', this.#onStop)
    process.on('SIGINT', this.#onStop)
  }

  /** The supervisor has started: a stop asked during the start is passed on now. */
  started(s: Supervisor): void {
    this.#supervisor = s
    if (this.#stopAsked) this.#onStop(this.#stopAsked)
  }

  remove(): void {
    process.off('SIGHUP', this.#onHup)
    process.off('SIGTERM', this.#onStop)
    process.off('SIGINT', this.#onStop)
  }
}
