import { ClientClosedError, IpcError } from '@naaccord/ipc-shared'
import { IDEMPOTENT, isRetryable, nextRetryDelay, type RetryBudget } from './retry.js'

/**
 * Per-request overrides, carried on the dispatch options as `ipc`: what `client.get(path, {
 * retries, retryWindowMs })` sets, and what `undici.request(url, { dispatcher, ipc: {...} })`
 * may set. Validated by `resolveCallOptions` in options.ts.
 */
export interface IpcDispatchOverrides {
  retries?: number
  retryWindowMs?: number
}

/**
 * The retry policy of one client: which failed attempts are tried again and after how long
 * (`isRetryable`, `nextRetryDelay`), within the client's budget or a request's overrides, and
 * what the final error says once it gives up. Holds no state of a request: one per client, its
 * methods take what they need.
 *
 * @example
 * const policy = new RetryPolicy({ retries: 20, retryWindowMs: 5000, retryDelayMs: 50, maxRetryDelayMs: 1000 })
 * policy.delayAfter(err, 'GET', true, 0, startedAt, policy.budgetFor(undefined)) // 25..50, or undefined
 */
export class RetryPolicy {
  constructor(private readonly budget: RetryBudget) {}

  /** The budget of one request: the client's, or with its overrides on top. */
  budgetFor(overrides: IpcDispatchOverrides | undefined): RetryBudget {
    return overrides === undefined ? this.budget : { ...this.budget, ...overrides }
  }

  /**
   * Whether to hold the response head until the first body byte: only worth it when a retry
   * after sending is possible (a replayable body, an idempotent method, retries in the budget).
   */
  holdsHead(method: string, replayable: boolean, budget: RetryBudget): boolean {
    return replayable && budget.retries > 0 && IDEMPOTENT.has(method)
  }

  /** The delay before the next attempt after `err` (attempt 0 failed first), or undefined: give up. */
  delayAfter(err: Error, method: string, sent: boolean, attempt: number, startedAt: number, budget: RetryBudget): number | undefined {
    if (!isRetryable(err, method, sent)) return undefined
    return nextRetryDelay(attempt, Date.now() - startedAt, budget)
  }

  /** After retries, the final error says how many attempts were made, in how long, within which budget. */
  noteGaveUp(err: Error, attempt: number, startedAt: number, budget: RetryBudget): void {
    if (attempt === 0 || !(err instanceof IpcError) || err instanceof ClientClosedError) return
    const elapsed = Date.now() - startedAt
    err.attempts = attempt + 1
    err.elapsedMs = elapsed
    err.message += ` (gave up after ${attempt + 1} attempts in ${elapsed} ms; retries ${budget.retries}, retryWindowMs ${budget.retryWindowMs})`
  }
}
