import { sdNotify } from '@naaccord/ipc-peercred'
import type { Logger } from '@naaccord/ipc-shared'
import type { ListenerHealth } from '../http/health.js'

/** What serve() tells systemd (sd_notify(3)) over the life of a server. */
export interface SystemdNotifier {
  /** Sends STATUS=<text>, shown by `systemctl status`. */
  status(text: string): void
  /** Sends STOPPING=1 with a status line, and stops the watchdog pings. Idempotent. */
  stopping(): void
}

const NOOP: SystemdNotifier = { status() {}, stopping() {} }

/** "serving on unix /run/x.sock (TLS), tcp 0.0.0.0:8443 (TLS)" */
function describeListeners(listeners: readonly ListenerHealth[]): string {
  return `serving on ${listeners.map((l) => `${l.transport} ${l.address}${l.tls ? ' (TLS)' : ''}`).join(', ')}`
}

/**
 * The watchdog period asked by systemd (WatchdogSec= sets WATCHDOG_USEC), in ms, or undefined when
 * there is none or it is meant for another process (WATCHDOG_PID names a pid that is not ours).
 */
function watchdogIntervalMs(env: NodeJS.ProcessEnv): number | undefined {
  const usec = Number(env.WATCHDOG_USEC)
  if (!Number.isSafeInteger(usec) || usec <= 0) return undefined
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== '' && env.WATCHDOG_PID !== String(process.pid)) return undefined
  // sd_watchdog_enabled(3): ping at half the period.
  return Math.max(1, Math.floor(usec / 2 / 1000))
}

/**
 * Called once serve() is listening: when systemd started us with NOTIFY_SOCKET (Type=notify), sends
 * READY=1 and a STATUS line, then WATCHDOG=1 every WATCHDOG_USEC/2 while the event loop runs (an
 * unref'd timer: it never keeps the process alive). Without NOTIFY_SOCKET it does nothing. A failed
 * send is logged as a warning (once until a send works again), never thrown: systemd's view of
 * readiness must not take the service down.
 *
 * @example
 * const systemd = notifySystemd(log, listeners) // READY=1, STATUS=serving on unix /run/x.sock
 * // at shutdown:
 * systemd.stopping() // STOPPING=1
 */
export function notifySystemd(log: Logger, listeners: readonly ListenerHealth[], env: NodeJS.ProcessEnv = process.env): SystemdNotifier {
  const socket = env.NOTIFY_SOCKET
  if (socket === undefined || socket === '') return NOOP
  let failing = false
  const send = (state: string) => {
    try {
      sdNotify(state, socket)
      failing = false
    } catch (err) {
      if (!failing) log.warn({ err, notifySocket: socket, state: state.split('\n', 1)[0] }, 'sd_notify failed; systemd may not see this state')
      failing = true
    }
  }
  send(`READY=1\nSTATUS=${describeListeners(listeners)}`)
  const interval = watchdogIntervalMs(env)
  const watchdog = interval === undefined ? undefined : setInterval(() => send('WATCHDOG=1'), interval).unref()
  log.debug({ notifySocket: socket, watchdogMs: interval }, 'told systemd we are ready')
  let stopped = false
  return {
    status(text) {
      if (!stopped) send(`STATUS=${text}`)
    },
    stopping() {
      if (stopped) return
      stopped = true
      clearInterval(watchdog)
      send('STOPPING=1\nSTATUS=shutting down: draining connections')
    },
  }
}
