import { BadResponseError, ClientClosedError, ConnectionLostError, IpcError, TimeoutError } from '@naaccord/ipc-shared'
import { mapConnectError, mappedOf } from '../connect/connect-errors.js'
import type { ResolvedClientOptions } from '../options.js'

/** What the error messages need to know about the client. */
export type MapContext = Pick<ResolvedClientOptions, 'target' | 'connectTimeoutMs' | 'timeoutMs' | 'tls'>

const LOST = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH'])

/**
 * Map any error of a request (connect, headers or body) to our classes. The caller's own abort
 * passes through untouched. `timeoutMs` is the timeout in force for this request.
 *
 * @example
 * mapRequestError(new errors.BodyTimeoutError(), opts) // TimeoutError 'response body'
 */
export function mapRequestError(err: unknown, opts: MapContext, timeoutMs: number = opts.timeoutMs): unknown {
  if (err instanceof IpcError) return err
  if (!(err instanceof Error)) return err
  if (err.name === 'AbortError') return err
  const known = mappedOf(err) ?? mappedOf((err as { cause?: unknown }).cause)
  if (known) return known
  const code = (err as NodeJS.ErrnoException).code ?? ''
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new TimeoutError(opts.target, timeoutMs, 'response', { cause: err })
    case 'UND_ERR_BODY_TIMEOUT':
      return new TimeoutError(opts.target, timeoutMs, 'response body', { cause: err })
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new TimeoutError(opts.target, opts.connectTimeoutMs, 'connect', { cause: err })
    case 'UND_ERR_DESTROYED': // destroy() while in flight, or a request on a destroyed dispatcher
    case 'UND_ERR_CLOSED':
      return new ClientClosedError(opts.target, { cause: err })
  }
  const cause = (err as { cause?: unknown }).cause
  if (cause instanceof Error) {
    const mapped = mapConnectError(cause, opts)
    if (mapped !== cause) return mapped
  }
  const direct = mapConnectError(err, opts)
  if (direct !== err) return direct
  // undici's HTTPParserError: the bytes that came back are not HTTP/1.1.
  if (code.startsWith('HPE_') || err.name === 'HTTPParserError') return new BadResponseError(opts.target, code || err.message, { cause: err })
  if (LOST.has(code)) {
    // Node's TLS servers refuse an untrusted client certificate by closing, without an alert:
    // say so, without claiming it (a restart looks the same from here).
    const hint = opts.tls?.cert !== undefined ? '; if it persists, the server may be refusing our client certificate without a TLS alert (its log says why)' : ''
    return new ConnectionLostError(opts.target, `${err.message}${hint}`, { cause: err })
  }
  return err
}
