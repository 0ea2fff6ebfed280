import { parseArgs } from 'node:util'
import { InvalidOptionError } from '@naaccord/ipc-shared'
import { resolveSupervisorOptions, SUPERVISOR_DEFAULTS, SUPERVISOR_ENV } from './options.js'
import { signalSupervisor } from './pid-file.js'
import { supervise } from './supervisor.js'

/** Where the CLI writes (the certs CLI passes its own). */
export interface SupervisorCliIo {
  stdout(text: string): void
  stderr(text: string): void
}

const RUN_OPTIONS = {
  socket: { type: 'string' },
  'socket-mode': { type: 'string' },
  'socket-group': { type: 'string' },
  'dir-mode': { type: 'string' },
  'ready-timeout': { type: 'string' },
  'stop-timeout': { type: 'string' },
  'restart-delay': { type: 'string' },
  'restart-delay-max': { type: 'string' },
  'pid-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

const RELOAD_OPTIONS = {
  socket: { type: 'string' },
  'pid-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

export const RUN_USAGE = `Usage: naaccord-ipc run [options] -- <program> [args...]

Hold the services socket and run the app with it as fd 3 (LISTEN_FDS=1, as systemd socket
activation does). SIGHUP (or "naaccord-ipc reload") starts a new app process, waits until it
serves, then stops the old one gracefully: no connection is refused, no request cut. A crashed
app is restarted with backoff. SIGTERM/SIGINT stop the app, then remove the socket and lock.

Options:
  --socket PATH             socket path (env NAACCORD_SOCKET_PATH; default /var/run/naaccord/service.sock)
  --socket-mode MODE        socket file mode (env NAACCORD_SOCKET_MODE; default 0600, 0660 with a group)
  --socket-group GROUP      socket group, name or gid (env NAACCORD_SOCKET_GROUP)
  --dir-mode MODE           mode of the socket folder when created (env NAACCORD_SOCKET_DIR_MODE)
  --ready-timeout MS        longest wait for a new app to serve (env ${SUPERVISOR_ENV.readyTimeoutMs}; default ${SUPERVISOR_DEFAULTS.readyTimeoutMs})
  --stop-timeout MS         drain time after SIGTERM before SIGKILL (env ${SUPERVISOR_ENV.stopTimeoutMs}; default ${SUPERVISOR_DEFAULTS.stopTimeoutMs})
  --restart-delay MS        first delay before restarting a crashed app, doubling (env ${SUPERVISOR_ENV.restartDelayMs}; default ${SUPERVISOR_DEFAULTS.restartDelayMs})
  --restart-delay-max MS    longest delay between restarts (env ${SUPERVISOR_ENV.restartDelayMaxMs}; default ${SUPERVISOR_DEFAULTS.restartDelayMaxMs})
  --pid-file PATH           pid file for "naaccord-ipc reload" (env ${SUPERVISOR_ENV.pidFile}; default <socket>.pid)
  -h, --help                show this help

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
`

function parse<T extends typeof RUN_OPTIONS | typeof RELOAD_OPTIONS>(name: string, args: readonly string[], options: T) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true })
  } catch (err) {
    throw new InvalidOptionError(name, (err as Error).message.replace(/\. To specify a positional argument.*$/s, ''))
  }
}

/**
 * `naaccord-ipc run ...` and `naaccord-ipc reload ...`: resolves to the exit code. `run` returns
 * once the supervisor has stopped (SIGTERM/SIGINT). Usage mistakes throw `IPC_INVALID_OPTION`,
 * other refusals their own IpcError.
 *
 * @example
 * process.exitCode = await supervisorCli('run', ['--socket', '/run/naaccord/service.sock', '--', 'node', 'services.js'])
 */
export async function supervisorCli(command: 'run' | 'reload', argv: readonly string[], io: SupervisorCliIo): Promise<number> {
  if (command === 'reload') {
    const { values, positionals } = parse('reload', argv, RELOAD_OPTIONS)
    if (values.help) {
      io.stdout(RELOAD_USAGE)
      return 0
    }
    if (positionals.length > 0) throw new InvalidOptionError('reload', `unexpected argument "${positionals[0]}"`)
    const resolved = resolveSupervisorOptions({ command: ['-'], socketPath: values.socket, pidFile: values['pid-file'], logger: false })
    const pid = await signalSupervisor({ pidFile: resolved.pidFile, socketPath: resolved.socketPath, socketNamed: values.socket !== undefined }, 'SIGHUP')
    io.stdout(`naaccord-ipc: asked the supervisor (pid ${pid}) to reload\n`)
    return 0
  }
  const dash = argv.indexOf('--')
  const own = dash === -1 ? argv : argv.slice(0, dash)
  const app = dash === -1 ? [] : argv.slice(dash + 1)
  const { values, positionals } = parse('run', own, RUN_OPTIONS)
  if (values.help) {
    io.stdout(RUN_USAGE)
    return 0
  }
  if (positionals.length > 0) throw new InvalidOptionError('run', `unexpected argument "${positionals[0]}"; put the app after "--": naaccord-ipc run -- node services.js`)
  // The handlers are in place before the first app starts: a signal during the start (up to
  // --ready-timeout) must not kill the supervisor by the default action and orphan its app with
  // the socket, lock and pid file left behind. A stop asked meanwhile runs once the start is over;
  // a reload asked meanwhile is needless (the app starting is the newest) and only logged.
  let sup: Awaited<ReturnType<typeof supervise>> | undefined
  let stopAsked: NodeJS.Signals | undefined
  const onHup = () => {
    if (sup) void sup.reload()
    else io.stderr('naaccord-ipc run: reload asked while the first app is starting; nothing to replace yet\n')
  }
  const onStop = (signal: NodeJS.Signals) => {
    if (!sup) {
      stopAsked = signal
      return
    }
    sup.options.logger.info({ signal }, 'stop requested')
    void sup.stop()
  }
  process.on('SIGHUP', onHup)
  process.on('SIGTERM', onStop)
  process.on('SIGINT', onStop)
  try {
    sup = await supervise({
      command: app,
      socketPath: values.socket,
      socketMode: values['socket-mode'],
      socketGroup: values['socket-group'],
      dirMode: values['dir-mode'],
      readyTimeoutMs: values['ready-timeout'],
      stopTimeoutMs: values['stop-timeout'],
      restartDelayMs: values['restart-delay'],
      restartDelayMaxMs: values['restart-delay-max'],
      pidFile: values['pid-file'],
    })
    if (stopAsked) onStop(stopAsked)
    await sup.stopped
  } finally {
    process.off('SIGHUP', onHup)
    process.off('SIGTERM', onStop)
    process.off('SIGINT', onStop)
  }
  return 0
}
