// Bounded polling, shared by tests and the bench (no vitest here).
import { setTimeout as sleep } from 'node:timers/promises'

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number
  /** Poll interval (default 25 ms). */
  everyMs?: number
  /** Checked on every poll: a reason ends the wait at once (e.g. the child it waits for exited). */
  failed?: () => string | undefined
}

/**
 * Poll `check` until it is true, bounded in time; throws `<what>: not within <n> ms` (or
 * `<what>: <reason>` when `failed` gives one).
 *
 * @example
 * await waitUntil('sshd listening', () => log.includes('Server listening'), { failed: () => (sshd.exitCode !== null ? 'sshd exited' : undefined) })
 */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, options: WaitOptions = {}): Promise<void> {
  const { timeoutMs = 10_000, everyMs = 25, failed } = options
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    const why = failed?.()
    if (why !== undefined) throw new Error(`${what}: ${why}`)
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(everyMs)
  }
}
