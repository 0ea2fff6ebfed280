import { startApp, type AppProcess } from './app-process.js'
import { holdSocket, type HeldSocket } from './held-socket.js'
import { resolveSupervisorOptions, SUPERVISOR_DEFAULTS, type ResolvedSupervisorOptions, type SupervisorOptions } from './options.js'
import { removePidFile, writePidFile, type WrittenPidFile } from './pid-file.js'
import { logSecurityReport, securityContext, supervisorSecurityReport } from '../security-report.js'

export interface Supervisor {
  /** The options in force. */
  readonly options: ResolvedSupervisorOptions
  /** The app process that currently serves (undefined between a crash and its restart). */
  readonly current: AppProcess | undefined
  /** How many times a crashed app was restarted. */
  readonly restarts: number
  /**
   * Start a new app process, wait for its ready message, then stop the old one gracefully
   * (SIGTERM; it drains in the background). Both accept on the same socket meanwhile. Resolves true when the new
   * one serves; false when it failed to start (the old one keeps serving). Reloads run one at a
   * time, in order.
   */
  reload(): Promise<boolean>
  /** Stop: remove the socket and lock, then SIGTERM every app process and wait. Idempotent. */
  stop(): Promise<void>
  /** Resolves when the supervisor has stopped. */
  readonly stopped: Promise<void>
}

/**
 * Hold the listening socket for the life of this process and run the app with it as fd 3, as
 * systemd socket activation would: restarts and reloads never close the socket, so callers'
 * connections wait in the kernel's backlog instead of being refused. `naaccord-ipc run` is this
 * plus signal handling (SIGHUP reloads, SIGTERM/SIGINT stop).
 *
 * @example
 * const sup = await supervise({ command: ['node', 'services.js'], socketPath: '/run/naaccord/service.sock' })
 * process.on('SIGHUP', () => void sup.reload())
 */
export async function supervise(options: SupervisorOptions): Promise<Supervisor> {
  const opts = resolveSupervisorOptions(options)
  const log = opts.logger
  logSecurityReport(log, supervisorSecurityReport(opts, securityContext()))
  const held: HeldSocket = await holdSocket(opts.socketPath, opts.socketMode, opts.dirMode, opts.socketGid, log)
  let pidFile: WrittenPidFile
  try {
    pidFile = writePidFile(opts.pidFile, held.fsPath)
  } catch (err) {
    await held.release()
    throw err
  }
  log.info({ socketPath: opts.socketPath, pidFile: opts.pidFile, command: opts.command }, 'supervisor holds the socket')

  let current: AppProcess | undefined
  let crashesInARow = 0
  let restarts = 0
  let restartTimer: NodeJS.Timeout | undefined
  let stopping = false
  let queue: Promise<unknown> = Promise.resolve()
  const apps = new Set<AppProcess>()
  let resolveStopped!: () => void
  const stopped = new Promise<void>((r) => (resolveStopped = r))

  const launch = (): AppProcess => {
    const app = startApp(opts.command, held.fd, opts, opts.readyTimeoutMs, log)
    apps.add(app)
    void app.exited.then(({ code, signal }) => {
      apps.delete(app)
      if (app.stopping || stopping) {
        log.info({ appPid: app.pid, code, signal }, 'app stopped')
        return
      }
      log.error({ appPid: app.pid, code, signal }, 'app exited unexpectedly')
      if (current === app) {
        current = undefined
        scheduleRestart(app)
      }
    })
    return app
  }

  const scheduleRestart = (crashed: AppProcess) => {
    if (stopping || restartTimer !== undefined) return
    const ranStably = crashed.readyAt !== undefined && Date.now() - crashed.readyAt >= SUPERVISOR_DEFAULTS.stableAfterMs
    crashesInARow = ranStably ? 1 : crashesInARow + 1
    const delay = Math.min(opts.restartDelayMaxMs, opts.restartDelayMs * 2 ** (crashesInARow - 1))
    log.warn({ delayMs: delay, crashesInARow }, 'restarting the app; new connections wait in the socket backlog meanwhile')
    restartTimer = setTimeout(() => {
      restartTimer = undefined
      queue = queue.then(async () => {
        if (stopping || current !== undefined) return
        const app = launch()
        restarts++
        current = app
        if (await app.ready) log.info({ appPid: app.pid }, 'app restarted and ready')
        else if (current === app && !stopping) {
          // Not ready in time: stop it; its exit schedules the next try with a longer delay.
          app.stopping = true
          current = undefined
          await app.stop(opts.stopTimeoutMs)
          scheduleRestart(app)
        }
      })
    }, delay)
  }

  const reloadOnce = async (): Promise<boolean> => {
    if (stopping) return false
    const old = current
    const next = launch()
    log.info({ appPid: next.pid, oldPid: old?.pid }, 'reload: new app starting')
    if (!(await next.ready) || stopping) {
      log.error({ appPid: next.pid, oldPid: old?.pid }, 'reload failed: the new app did not become ready; the old one keeps serving')
      await next.stop(opts.stopTimeoutMs)
      if (current === undefined && !stopping) scheduleRestart(next)
      return false
    }
    current = next
    if (restartTimer !== undefined) {
      clearTimeout(restartTimer)
      restartTimer = undefined
    }
    crashesInARow = 0
    // The old app drains in the background (bounded by stopTimeoutMs, then SIGKILL): the reload
    // is done once the new one serves, however long the old one's keep-alive clients take.
    if (old !== undefined && old !== next) void old.stop(opts.stopTimeoutMs)
    log.info({ appPid: next.pid, oldPid: old?.pid }, 'reloaded')
    return true
  }

  const first = launch()
  current = first
  const firstReady = await first.ready
  if (!firstReady && !stopping) {
    if (first.child.exitCode === null && first.child.signalCode === null) {
      log.warn({ appPid: first.pid }, 'the app has not reported ready; it keeps running and serves once it accepts')
    }
  } else if (firstReady) {
    log.info({ appPid: first.pid }, 'app ready')
  }

  let stopPromise: Promise<void> | undefined
  const supervisor: Supervisor = {
    options: opts,
    get current() {
      return current
    },
    get restarts() {
      return restarts
    },
    stopped,
    reload() {
      const run = queue.then(reloadOnce)
      queue = run.catch(() => false)
      return run
    },
    stop() {
      stopPromise ??= (async () => {
        stopping = true
        if (restartTimer !== undefined) clearTimeout(restartTimer)
        // Socket and lock first, so a successor can start at once; the apps keep their own
        // copies of the socket and drain what they already accepted.
        await held.release()
        removePidFile(pidFile)
        log.info({ appPids: [...apps].map((a) => a.pid) }, 'supervisor stopping: socket removed, stopping the app')
        await Promise.all([...apps].map((a) => a.stop(opts.stopTimeoutMs)))
        log.info('supervisor stopped')
        resolveStopped()
      })()
      return stopPromise
    },
  }
  return supervisor
}
