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
  const child = spawn('/bin/sh', ['-c', SET_LISTEN_PID, 'naaccord-app', ...command], {
    stdio: ['inherit', 'inherit', 'inherit', fd, 'ipc'],
    env,
  })
  const pid = child.pid ?? -1
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    child.once('error', (err) => {
      log.error({ err, command }, 'cannot start the app')
      resolve({ code: 127, signal: null })
    })
  })
  const app: AppProcess = {
    pid,
    child,
    readyAt: undefined,
    exited,
    stopping: false,
    ready: new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        log.error({ appPid: pid, readyTimeoutMs }, 'the app did not report ready in time (is it calling serve() from @naaccord/ipc-server?)')
        resolve(false)
      }, readyTimeoutMs)
      child.on('message', (m) => {
        if (!isReadyMessage(m)) return
        clearTimeout(timer)
        app.readyAt = Date.now()
        resolve(true)
      })
      void exited.then(() => {
        clearTimeout(timer)
        resolve(false)
      })
    }),
    async stop(timeoutMs) {
      app.stopping = true
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => {
        log.warn({ appPid: pid, stopTimeoutMs: timeoutMs }, 'the app did not exit after SIGTERM in time; SIGKILL')
        child.kill('SIGKILL')
      }, timeoutMs)
      await exited
      clearTimeout(timer)
    },
  }
  // The channel is only for the ready message; it must not keep the supervisor alive.
  child.channel?.unref()
  return app
}
