import { ConnectionLostError, ServiceUnavailableError, TimeoutError } from '@naaccord/ipc-shared'

/** RFC 9110 section 9.2.2: methods whose repetition has the same effect as one request. */
export const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE'])

/**
 * Whether a failed attempt may be repeated, from what failed and whether a byte may have left.
 *
 * - Nothing sent yet (no socket, refused, backlog full, connect timeout, the request waited in
 *   the pool while the server stopped accepting): safe for every method.
 * - Sent: only idempotent methods, and only when the connection was lost or the service went
 *   away. A POST that may have reached the server is never replayed; a timeout after sending
 *   is not repeated (the server may still be working on it).
 * - Refusals (permissions, TLS, expectServer, a closed client) are never retried: they would
 *   fail the same way.
 *
 * @example
 * isRetryable(new ConnectionLostError('/run/s.sock', 'reset'), 'GET', true) // true
 * isRetryable(new ConnectionLostError('/run/s.sock', 'reset'), 'POST', true) // false
 */
export function isRetryable(err: unknown, method: string, sent: boolean): boolean {
  const lostOrGone = err instanceof ConnectionLostError || err instanceof ServiceUnavailableError
  if (!sent) return lostOrGone || err instanceof TimeoutError
  return lostOrGone && IDEMPOTENT.has(method)
}

/** What bounds the retries of one request. */
export interface RetryBudget {
  /** Most retries after the first attempt. */
  readonly retries: number
  /** Longest time from the first attempt to the last one, ms. */
  readonly retryWindowMs: number
  /** First delay, ms; doubles per retry. */
  readonly retryDelayMs: number
  /** Cap of one delay, ms. */
  readonly maxRetryDelayMs: number
}

/**
 * The delay before retry number `attempt + 1` (attempt 0 is the first failure), or undefined
 * when the budget is spent: exponential backoff with jitter (between half and all of the
 * ceiling), capped, and never past the end of the window, so the last try lands at its end.
 *
 * @example
 * nextRetryDelay(0, 0, { retries: 10, retryWindowMs: 5000, retryDelayMs: 100, maxRetryDelayMs: 1000 }) // 50..100
 */
export function nextRetryDelay(attempt: number, elapsedMs: number, budget: RetryBudget, random: () => number = Math.random): number | undefined {
  if (attempt >= budget.retries) return undefined
  const left = budget.retryWindowMs - elapsedMs
  if (left <= 0) return undefined
  const ceiling = Math.min(budget.maxRetryDelayMs, budget.retryDelayMs * 2 ** attempt)
  const delay = Math.round(ceiling / 2 + random() * (ceiling / 2))
  return Math.min(delay, left)
}

/**
 * Whether a request body can be sent again: none, a string or bytes. A stream is consumed by
 * its first attempt, so a request with one is never retried.
 *
 * @example
 * isReplayable('{"a":1}') // true
 * isReplayable(fs.createReadStream(file)) // false
 */
export function isReplayable(body: unknown): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array
}
