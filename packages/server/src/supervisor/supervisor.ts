import { startApp, type AppProcess } from './app-process.js'
import { holdSocket, type HeldSocket } from './held-socket.js'
import { resolveSupervisorOptions, SUPERVISOR_DEFAULTS, type ResolvedSupervisorOptions, type SupervisorOptions } from './options.js'
import { removePidFile, writePidFile, type WrittenPidFile } from './pid-file.js'
import type { Logger } from '@naaccord/ipc-shared'
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

/** The delay before restart number `crashesInARow` (1, 2, ...): doubling from restartDelayMs, at most restartDelayMaxMs. */
function restartDelay(opts: ResolvedSupervisorOptions, crashesInARow: number): number {
  return Math.min(opts.restartDelayMaxMs, opts.restartDelayMs * 2 ** (crashesInARow - 1))
}

/**
 * The supervisor's state and its steps: which app serves, the restart back-off, the queue that
 * runs restarts and reloads one at a time, and every app process still alive.
 */
class Supervision {
  current: AppProcess | undefined
  restarts = 0
  stopping = false
  readonly apps = new Set<AppProcess>()
  #crashesInARow = 0
  #restartTimer: NodeJS.Timeout | undefined
  #queue: Promise<unknown> = Promise.resolve()
  readonly #log: Logger

  constructor(
    readonly opts: ResolvedSupervisorOptions,
    readonly held: HeldSocket,
  ) {
    this.#log = opts.logger
  }

  /** Start one app process on the held socket and watch its exit. */
  launch(): AppProcess {
    const app = startApp(this.opts.command, this.held.fd, this.opts, this.opts.readyTimeoutMs, this.#log)
    this.apps.add(app)
    void app.exited.then(({ code, signal }) => this.#exited(app, code, signal))
    return app
  }

  /** Run `step` after every restart and reload queued before it. */
  enqueue<T>(step: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(step)
    this.#queue = run.catch(() => false)
    return run
  }

  #exited(app: AppProcess, code: number | null, signal: NodeJS.Signals | null): void {
    this.apps.delete(app)
    if (app.stopping || this.stopping) {
      this.#log.info({ appPid: app.pid, code, signal }, 'app stopped')
      return
    }
    this.#log.error({ appPid: app.pid, code, signal }, 'app exited unexpectedly')
    if (this.current === app) {
      this.current = undefined
      this.scheduleRestart(app)
    }
  }

  /** After a crash (or a start that never became ready): restart after the back-off delay. */
  scheduleRestart(crashed: AppProcess): void {
    if (this.stopping || this.#restartTimer !== undefined) return
    const ranStably = crashed.readyAt !== undefined && Date.now() - crashed.readyAt >= SUPERVISOR_DEFAULTS.stableAfterMs
    this.#crashesInARow = ranStably ? 1 : this.#crashesInARow + 1
    const delay = restartDelay(this.opts, this.#crashesInARow)
    this.#log.warn({ delayMs: delay, crashesInARow: this.#crashesInARow }, 'restarting the app; new connections wait in the socket backlog meanwhile')
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined
      void this.enqueue(() => this.#restart())
    }, delay)
  }

  async #restart(): Promise<void> {
    if (this.stopping || this.current !== undefined) return
    const app = this.launch()
    this.restarts++
    this.current = app
    if (await app.ready) this.#log.info({ appPid: app.pid }, 'app restarted and ready')
    else if (this.current === app && !this.stopping) {
      // Not ready in time: stop it; its exit schedules the next try with a longer delay.
      app.stopping = true
      this.current = undefined
      await app.stop(this.opts.stopTimeoutMs)
      this.scheduleRestart(app)
    }
  }

  /** One reload: a new app; once it is ready it serves and the old one drains; if not, the old one keeps serving. */
  async reloadOnce(): Promise<boolean> {
    if (this.stopping) return false
    const old = this.current
    const next = this.launch()
    this.#log.info({ appPid: next.pid, oldPid: old?.pid }, 'reload: new app starting')
    if (!(await next.ready) || this.stopping) {
      this.#log.error({ appPid: next.pid, oldPid: old?.pid }, 'reload failed: the new app did not become ready; the old one keeps serving')
      await next.stop(this.opts.stopTimeoutMs)
      if (this.current === undefined && !this.stopping) this.scheduleRestart(next)
      return false
    }
    this.current = next
    this.#cancelRestart()
    this.#crashesInARow = 0
    // The old app drains in the background (bounded by stopTimeoutMs, then SIGKILL): the reload
    // is done once the new one serves, however long the old one's keep-alive clients take.
    if (old !== undefined && old !== next) void old.stop(this.opts.stopTimeoutMs)
    this.#log.info({ appPid: next.pid, oldPid: old?.pid }, 'reloaded')
    return true
  }

  /** The first app: wait for its ready message (one that never comes leaves it running, with a warning). */
  async startFirst(): Promise<void> {
    const first = this.launch()
    this.current = first
    const ready = await first.ready
    if (ready) this.#log.info({ appPid: first.pid }, 'app ready')
    else if (!this.stopping && first.child.exitCode === null && first.child.signalCode === null) {
      this.#log.warn({ appPid: first.pid }, 'the app has not reported ready; it keeps running and serves once it accepts')
    }
  }

  /** Socket and lock first, so a successor can start at once; the apps keep their own copies of the socket and drain what they already accepted. */
  async stop(pidFile: WrittenPidFile): Promise<void> {
    this.stopping = true
    this.#cancelRestart()
    await this.held.release()
    removePidFile(pidFile)
    this.#log.info({ appPids: [...this.apps].map((a) => a.pid) }, 'supervisor stopping: socket removed, stopping the app')
    await Promise.all([...this.apps].map((a) => a.stop(this.opts.stopTimeoutMs)))
    this.#log.info('supervisor stopped')
  }

  #cancelRestart(): void {
    if (this.#restartTimer === undefined) return
    clearTimeout(this.#restartTimer)
    this.#restartTimer = undefined
  }
}

/** Write the pid file for `naaccord-ipc reload`; on failure the socket is given back before the error is thrown. */
async function writePidFileOrRelease(opts: ResolvedSupervisorOptions, held: HeldSocket): Promise<WrittenPidFile> {
  try {
    return writePidFile(opts.pidFile, held.fsPath)
  } catch (err) {
    await held.release()
    throw err
  }
}

/** The public face of a supervision: reloads queued in order, stop once. */
function supervisorOf(run: Supervision, pidFile: WrittenPidFile): Supervisor {
  let resolveStopped!: () => void
  const stopped = new Promise<void>((r) => (resolveStopped = r))
  let stopPromise: Promise<void> | undefined
  return {
    options: run.opts,
    get current() {
      return run.current
    },
    get restarts() {
      return run.restarts
    },
    stopped,
    reload: () => run.enqueue(() => run.reloadOnce()),
    stop() {
      stopPromise ??= run.stop(pidFile).then(resolveStopped)
      return stopPromise
    },
  }
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
  const pidFile = await writePidFileOrRelease(opts, held)
  log.info({ socketPath: opts.socketPath, pidFile: opts.pidFile, command: opts.command }, 'supervisor holds the socket')
  const run = new Supervision(opts, held)
  await run.startFirst()
  return supervisorOf(run, pidFile)
}
