import { ConnectionLostError, PermissionDeniedError, ServiceUnavailableError, TimeoutError } from '@naaccord/ipc-shared'
import { isConnectPhase } from './error-map.js'

/** RFC 9110 section 9.2.2: methods whose repetition has the same effect as one request. */
export const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE'])

/**
 * Whether a failed attempt may be repeated. Connection failures before anything was sent
 * (no socket, refused, connect timeout) are safe for every method. A connection lost after
 * sending is retried only for idempotent methods with a replayable body: a POST is never
 * silently replayed.
 */
export function shouldRetry(err: unknown, method: string, replayable: boolean): boolean {
  if (!replayable) return false
  if (err instanceof PermissionDeniedError) return false
  // Connect-phase timeouts come from the connector only: nothing was sent.
  if (isConnectPhase(err) && (err instanceof ServiceUnavailableError || err instanceof TimeoutError)) return true
  return IDEMPOTENT.has(method) && (err instanceof ConnectionLostError || err instanceof ServiceUnavailableError)
}

/** Exponential backoff with full jitter, capped. */
export function retryDelay(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt)
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2))
}
