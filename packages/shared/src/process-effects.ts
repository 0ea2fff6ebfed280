// Everything naaccord-ipc does to the process as a whole, rather than to the sockets and servers it
// was asked to make: signal handlers, exit hooks, edits of process.env, the supervisor's IPC
// channel. One function per effect, each listed in PROCESS_EFFECTS with its default and the name
// that turns it off. No other module of the packages installs a process listener, edits
// process.env or touches process.channel (the `naaccord-ipc` command, a program that owns its
// process, excepted).
import type { Logger } from 'pino'
import { parseBoolean } from './option-parsers.js'

/** The name of each process-wide effect: also the name of the switch that turns it off. */
export type ProcessEffectName = 'handleSignals' | 'flushLogsOnExit' | 'clearActivationEnv' | 'notifySupervisorReady'

/** One process-wide effect: what it does to the process, whether it is on by default and why, and how to turn it off. */
export interface ProcessEffect {
  readonly name: ProcessEffectName
  /** What it does to the process. */
  readonly what: string
  /** On unless turned off. */
  readonly default: boolean
  /** Why it is on by default. */
  readonly why: string
  /** How to turn it off, by its name. */
  readonly optOut: string
}

/** The environment variable that turns `flushLogsOnExit` off for the whole process (`false`, `0`, `no`, `off`). */
export const FLUSH_LOGS_ON_EXIT_ENV = 'NAACCORD_FLUSH_LOGS_ON_EXIT'

/**
 * Every process-wide effect of the packages, for the docs and a test that checks each one happens
 * by default and not once turned off by name (test/process-effects.test.ts).
 *
 * @example
 * for (const e of PROCESS_EFFECTS) console.log(`${e.name}: ${e.what} (off: ${e.optOut})`)
 */
export const PROCESS_EFFECTS: readonly ProcessEffect[] = Object.freeze([
  {
    name: 'handleSignals',
    what: 'serve() installs one SIGTERM and one SIGINT listener per process; on the first signal every server that asked closes (stop accepting, give socket and lock back, drain), then the listeners are removed and the signal is raised again, unless the application listens for it itself. Never calls process.exit.',
    default: true,
    why: 'systemd (systemctl stop) and `naaccord-ipc run` (reload, stop) stop a service with SIGTERM; without a listener Node ends at once, cutting requests in flight. Fastify core installs no signal handler (close-with-grace is a separate package the app picks): this library does, because a service started by those managers should drain by default, and it steps aside when the app has a handler of its own.',
    optOut: 'serve(app, { handleSignals: false }); then call ipc.close() on the signals of your choice',
  },
  {
    name: 'flushLogsOnExit',
    what: "The first logger of ours (createLogger, the default `logger` of serve(), createClient() and supervise()) adds one process 'exit' listener and one 'uncaughtExceptionMonitor' listener, which write out synchronously what our log buffers still hold. Both only observe: exit code and crash behaviour are Node's. (pino's own destination adds one 'exit' listener more, through on-exit-leak-free, to end its writer: that one is pino's and stays.)",
    default: true,
    why: 'our logger buffers up to 100 ms of lines (LOG_BUFFER); without the listeners a process.exit() or an uncaught exception loses them, the very lines that say why the process ended.',
    optOut: `${FLUSH_LOGS_ON_EXIT_ENV}=false in the environment (process-wide, read when a logger of ours is created); or pass a logger of your own (\`logger\` option)`,
  },
  {
    name: 'clearActivationEnv',
    what: 'When serve() first looks for a socket handed over by socket activation, it removes LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from process.env.',
    default: true,
    why: 'the convention of sd_listen_fds(3) with unset_environment=1: the variables describe descriptors handed to this process only. LISTEN_PID already makes another process ignore them; cleared, they also mislead no process started through a wrapper that sets LISTEN_PID=$$ (as `naaccord-ipc run` does), which would believe descriptors from fd 3 were handed to it.',
    optOut: 'serve(app, { clearActivationEnv: false }): the variables stay for the application to read',
  },
  {
    name: 'notifySupervisorReady',
    what: "Under `naaccord-ipc run` (NAACCORD_SUPERVISOR_READY=ipc), once every listener accepts serve() sends one ready message over the supervisor's Node IPC channel, then disconnects the channel and removes NAACCORD_SUPERVISOR_READY from process.env. Outside the supervisor it does nothing.",
    default: true,
    why: 'the supervisor waits for the message before it stops the old app on reload; the channel serves nothing else and, left open, would keep the process alive after its work is done; the variable removed, a process the app starts does not report for it.',
    optOut: 'serve(app, { notifySupervisorReady: false }); then call notifySupervisorReady() (@naaccord/ipc-server/supervisor) once the app is ready (after warm-up, or after its last serve())',
  },
] as const)

// --- handleSignals -------------------------------------------------------------------------------

/** A server the process-wide signal handler closes. */
export interface SignalTarget {
  close(): Promise<void>
  readonly logger: Pick<Logger, 'info' | 'error'>
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const
type HandledSignal = (typeof SIGNALS)[number]

const signalTargets = new Set<SignalTarget>()
let shuttingDown = false

function removeSignalHandlers(): void {
  for (const s of SIGNALS) process.off(s, onSignal)
}

/** Once every server has closed: hand the signal back to its default action, unless the application listens for it. */
function afterAllClosed(signal: HandledSignal): void {
  shuttingDown = false
  if (signalTargets.size > 0) return // a server started meanwhile keeps the handlers (and the process)
  removeSignalHandlers()
  // The signal's default action ends the process, as if we had never caught it, unless the
  // application listens for it itself: then ending the process is the application's call.
  if (process.listenerCount(signal) === 0) {
    // The signal's death skips 'exit' and ends writes still in the thread pool: first let every
    // logger of ours (a server without handleSignals, the application's own loggers made with
    // createLogger) finish what it handed over, bounded, then write out the rest synchronously.
    void drainLogs().then(() => {
      if (signalTargets.size > 0 || process.listenerCount(signal) > 0) return // a server or the app took over meanwhile
      flushLogsSync()
      process.kill(process.pid, signal)
    })
  }
}

function onSignal(signal: HandledSignal): void {
  // Handlers stay installed until every server has closed: a second signal (Ctrl-C reaches the
  // whole process group, then a supervisor sends SIGTERM) must not kill the process before the
  // sockets and locks are given back.
  if (shuttingDown) {
    for (const t of signalTargets) t.logger.info({ signal }, 'already shutting down')
    return
  }
  shuttingDown = true
  const closing = [...signalTargets].map(async (t) => {
    t.logger.info({ signal }, 'shutting down')
    try {
      await t.close()
    } catch (err) {
      t.logger.error({ err }, 'shutdown failed')
    }
  })
  void Promise.all(closing).then(() => afterAllClosed(signal))
}

/**
 * The `handleSignals` effect: close `target` on SIGTERM/SIGINT. One handler per process for every
 * `serve()` that asked for it: on the first signal every registered server closes in parallel
 * (stop accepting, give the socket back, drain); once all have closed, the handlers are removed
 * and the signal is raised again, so its default action ends the process only if the application
 * has no handler of its own. Nothing here calls process.exit. Returns the function that
 * unregisters `target` (close() calls it); the handlers go with the last target.
 *
 * Off: `serve(app, { handleSignals: false })`.
 *
 * @example
 * const unregister = closeOnSignals(ipc)
 */
export function closeOnSignals(target: SignalTarget): () => void {
  if (signalTargets.size === 0 && !shuttingDown) for (const s of SIGNALS) process.on(s, onSignal)
  signalTargets.add(target)
  return () => {
    signalTargets.delete(target)
    if (signalTargets.size === 0 && !shuttingDown) removeSignalHandlers()
  }
}

// --- flushLogsOnExit -----------------------------------------------------------------------------

let logFlush: (() => void) | undefined
let logDrain: (() => Promise<void>) | undefined
let exitHooksInstalled = false

/** Write out, synchronously, what the loggers of ours still buffer (nothing before the first one exists). */
export function flushLogsSync(): void {
  logFlush?.()
}

/**
 * Hand over what the loggers of ours buffer and wait, a bounded time, until their writes in
 * flight are done. A synchronous flush alone cannot: a write already handed to the thread pool
 * stays there, and a process ended by a signal right after loses it (measured: 50 of 51 lines
 * lost in 1 of 6 runs, SIGKILL right after the flush).
 */
function drainLogs(): Promise<void> {
  return logDrain?.() ?? Promise.resolve()
}

/** Whether the environment turns `flushLogsOnExit` off. */
function flushOnExitWanted(env: NodeJS.ProcessEnv): boolean {
  const value = env[FLUSH_LOGS_ON_EXIT_ENV]
  return value === undefined || value === '' || parseBoolean(FLUSH_LOGS_ON_EXIT_ENV, value)
}

/**
 * The `flushLogsOnExit` effect, called by our buffered log destination each time one is made:
 * remembers `flush` and `drain` (what the signal handler runs before it re-raises a signal: the
 * asynchronous `drain` first, then `flush`), and, once
 * per process, adds `flush` as a process 'exit' listener (after process.exit() or the end of the
 * event loop) and an 'uncaughtExceptionMonitor' listener (sees an uncaught exception without
 * changing what Node does with it). Both only observe.
 *
 * Off: NAACCORD_FLUSH_LOGS_ON_EXIT=false in the environment; then a process.exit() or a crash
 * loses what the buffer held (at most LOG_BUFFER.flushIntervalMs of lines).
 *
 * @throws {InvalidOptionError} IPC_INVALID_OPTION: NAACCORD_FLUSH_LOGS_ON_EXIT is not a boolean.
 * @example
 * installLogExitFlush(flushAllSync)
 */
export function installLogExitFlush(flush: () => void, env: NodeJS.ProcessEnv = process.env, drain?: () => Promise<void>): void {
  logFlush = flush
  if (drain) logDrain = drain
  if (exitHooksInstalled || !flushOnExitWanted(env)) return
  exitHooksInstalled = true
  process.on('exit', flush)
  process.on('uncaughtExceptionMonitor', flush)
}

// --- clearActivationEnv --------------------------------------------------------------------------

/** The variables of socket activation, sd_listen_fds(3). */
export const ACTIVATION_ENV = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const

/**
 * The `clearActivationEnv` effect: remove LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from
 * process.env once they have been read (sd_listen_fds(3) with unset_environment = 1), so that no
 * process started from this one, through a wrapper that sets LISTEN_PID=$$, takes descriptors
 * that are ours.
 *
 * Off: `serve(app, { clearActivationEnv: false })`.
 *
 * @example
 * const fds = parseListenFds(process.env)
 * clearActivationEnv()
 */
export function clearActivationEnv(): void {
  for (const name of ACTIVATION_ENV) delete process.env[name]
}

// --- notifySupervisorReady -----------------------------------------------------------------------

/**
 * Readiness between `naaccord-ipc run` and the app it starts: the supervisor starts the app with
 * a Node IPC channel and NAACCORD_SUPERVISOR_READY=ipc; serve() calls `notifySupervisorReady()`
 * once every listener accepts, which sends one message and closes the channel. Chosen over a
 * NOTIFY_SOCKET datagram because Node has both ends built in and nothing else can write to the
 * channel (it is a private socketpair); under systemd, READY=1 goes to NOTIFY_SOCKET instead.
 */
export const READY_ENV = 'NAACCORD_SUPERVISOR_READY'

/** The message the app sends once it serves. */
export interface ReadyMessage {
  type: 'naaccord-ipc:ready'
  pid: number
}

/**
 * The `notifySupervisorReady` effect: tell the supervisor this process serves, once; a no-op when
 * not started by it. Removes NAACCORD_SUPERVISOR_READY from process.env (a process the app starts
 * does not report for it), sends the ready message, then disconnects the IPC channel (it serves
 * nothing else, and an open channel keeps the process alive).
 *
 * Off in serve(): `serve(app, { notifySupervisorReady: false })`; the app then calls this itself.
 *
 * @example
 * const ipc = await serve(app, { notifySupervisorReady: false })
 * await warmCaches()
 * notifySupervisorReady()
 */
export function notifySupervisorReady(): void {
  if (process.env[READY_ENV] !== 'ipc') return
  delete process.env[READY_ENV]
  if (typeof process.send !== 'function' || !process.connected) return
  const message: ReadyMessage = { type: 'naaccord-ipc:ready', pid: process.pid }
  process.send(message, undefined, {}, () => {
    if (process.connected) process.disconnect()
  })
}
