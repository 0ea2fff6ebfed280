import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { ENV, modeText, type Logger } from '@naaccord/ipc-shared'
import { READY_ENV, isReadyMessage } from './child-ready.js'

export interface AppProcess {
  readonly pid: number
  readonly child: ChildProcess
  /** Resolves true once the app reported ready, false if it exited or timed out first. */
  readonly ready: Promise<boolean>
  /** When it reported ready (ms since epoch), once it has. */
  readyAt: number | undefined
  /** Resolves when the process has exited (code or signal). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Whether the supervisor asked it to stop (a later exit is expected, not a crash). */
  stopping: boolean
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves once it has exited. */
  stop(timeoutMs: number): Promise<void>
}

// sd_listen_fds(3) wants LISTEN_PID to be the app's own pid, which is only known after fork:
// the shell sets it to its own pid ($$), then exec keeps that pid for the app.
const SET_LISTEN_PID = 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"'

/** The held socket as the app must find it: where, and the mode and group it was made with. */
export interface AppSocket {
  readonly socketPath: string
  readonly socketMode: number
  readonly socketGid: number | undefined
}

type Exit = { code: number | null; signal: NodeJS.Signals | null }

/**
 * The app's environment: ours, plus the activation variables (LISTEN_PID is set by the shell, see
 * SET_LISTEN_PID), the socket as the supervisor made it, and the ready channel's marker.
 */
function appEnv(socket: AppSocket): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LISTEN_FDS: '1',
    LISTEN_FDNAMES: path.basename(socket.socketPath),
    [ENV.socketPath]: socket.socketPath,
    [ENV.socketMode]: modeText(socket.socketMode),
    [READY_ENV]: 'ipc',
  }
  delete env.LISTEN_PID
  if (socket.socketGid === undefined) delete env[ENV.socketGroup]
  else env[ENV.socketGroup] = String(socket.socketGid)
  return env
}

/** Resolves once the child has exited; a child that could not be started counts as exit code 127. */
function exitOf(child: ChildProcess, command: readonly string[], log: Logger): Promise<Exit> {
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    child.once('error', (err) => {
      log.error({ err, command }, 'cannot start the app')
      resolve({ code: 127, signal: null })
    })
  })
}

/** Resolves true on the app's ready message (`onReady` runs first), false on its exit or after `readyTimeoutMs`. */
function readyOf(child: ChildProcess, exited: Promise<Exit>, readyTimeoutMs: number, log: Logger, onReady: () => void): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      log.error({ appPid: child.pid ?? -1, readyTimeoutMs }, 'the app did not report ready in time (is it calling serve() from @naaccord/ipc-server?)')
      resolve(false)
    }, readyTimeoutMs)
    child.on('message', (m) => {
      if (!isReadyMessage(m)) return
      clearTimeout(timer)
      onReady()
      resolve(true)
    })
    void exited.then(() => {
      clearTimeout(timer)
      resolve(false)
    })
  })
}

/** SIGTERM, then SIGKILL after `timeoutMs`; resolves once the child has exited. */
async function stopChild(child: ChildProcess, exited: Promise<Exit>, timeoutMs: number, log: Logger): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const timer = setTimeout(() => {
    log.warn({ appPid: child.pid ?? -1, stopTimeoutMs: timeoutMs }, 'the app did not exit after SIGTERM in time; SIGKILL')
    child.kill('SIGKILL')
  }, timeoutMs)
  await exited
  clearTimeout(timer)
}

/**
 * Start the app with the held socket as fd 3, exactly as systemd socket activation does
 * (LISTEN_FDS=1, LISTEN_PID=<its pid>, LISTEN_FDNAMES=<socket file name>), and a Node IPC
 * channel for its ready message (see child-ready.ts). stdin/stdout/stderr are the supervisor's.
 * The socket's path, mode and group go in NAACCORD_SOCKET_PATH / _MODE / _GROUP, so that the app's
 * serve() expects the socket as the supervisor made it (it refuses one wider than its socketMode).
 *
 * @example
 * const app = startApp(['node', 'services.js'], held.fd, { socketPath, socketMode: 0o600, socketGid: undefined }, 30_000, log)
 * if (await app.ready) console.log('serving', app.pid)
 */
export function startApp(command: readonly string[], fd: number, socket: AppSocket, readyTimeoutMs: number, log: Logger): AppProcess {
  const child = spawn('/bin/sh', ['-c', SET_LISTEN_PID, 'naaccord-app', ...command], {
    stdio: ['inherit', 'inherit', 'inherit', fd, 'ipc'],
    env: appEnv(socket),
  })
  const exited = exitOf(child, command, log)
  // Called on the ready message, never before `app` exists.
  const ready = readyOf(child, exited, readyTimeoutMs, log, () => {
    app.readyAt = Date.now()
  })
  const app: AppProcess = {
    pid: child.pid ?? -1,
    child,
    readyAt: undefined,
    exited,
    stopping: false,
    ready,
    async stop(timeoutMs) {
      app.stopping = true
      await stopChild(child, exited, timeoutMs, log)
    },
  }
  // The channel is only for the ready message; it must not keep the supervisor alive.
  child.channel?.unref()
  return app
}
