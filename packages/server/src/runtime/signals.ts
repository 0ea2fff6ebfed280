import type { Logger } from '@naaccord/ipc-shared'
import { flushAllSync } from '@naaccord/ipc-shared/logger'

/** A server the process-wide signal handler closes. */
export interface SignalTarget {
  close(): Promise<void>
  readonly logger: Logger
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const
type HandledSignal = (typeof SIGNALS)[number]

const targets = new Set<SignalTarget>()
let shuttingDown = false

function removeHandlers(): void {
  for (const s of SIGNALS) process.off(s, onSignal)
}

function onSignal(signal: HandledSignal): void {
  // Handlers stay installed until every server has closed: a second signal (Ctrl-C reaches the
  // whole process group, then a supervisor sends SIGTERM) must not kill the process before the
  // sockets and locks are given back.
  if (shuttingDown) {
    for (const t of targets) t.logger.info({ signal }, 'already shutting down')
    return
  }
  shuttingDown = true
  const closing = [...targets].map(async (t) => {
    t.logger.info({ signal }, 'shutting down')
    try {
      await t.close()
    } catch (err) {
      t.logger.error({ err }, 'shutdown failed')
    }
  })
  void Promise.all(closing).then(() => {
    shuttingDown = false
    if (targets.size > 0) return // a server started meanwhile keeps the handlers (and the process)
    removeHandlers()
    // The signal's default action ends the process, as if we had never caught it, unless the
    // application listens for it itself: then ending the process is the application's call.
    if (process.listenerCount(signal) === 0) {
      // The signal's death skips 'exit': write out first what every other logger still holds
      // (a server without handleSignals, the application's own loggers).
      flushAllSync()
      process.kill(process.pid, signal)
    }
  })
}

/**
 * Close `target` on SIGTERM/SIGINT. One handler per process for every `serve()` that asked for
 * it: on the first signal every registered server closes in parallel (stop accepting, give the
 * socket back, drain); once all have closed, the handlers are removed and the signal is raised
 * again, so its default action ends the process only if the application has no handler of its
 * own. Nothing here calls process.exit. Returns the function that unregisters `target` (close()
 * calls it).
 *
 * @example
 * const unregister = closeOnSignals(ipc)
 */
export function closeOnSignals(target: SignalTarget): () => void {
  if (targets.size === 0 && !shuttingDown) for (const s of SIGNALS) process.on(s, onSignal)
  targets.add(target)
  return () => {
    targets.delete(target)
    if (targets.size === 0 && !shuttingDown) removeHandlers()
  }
}
