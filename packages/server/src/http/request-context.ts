import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from '@naaccord/ipc-shared'
import { admitBody } from './body-limit.js'
import { assignRequestId } from './request-id.js'
import { requestLog } from './request-log.js'
import { attachPeer } from './request-peer.js'
import { dropIdentityTrailer, type ResolvedTrustedProxy } from './trusted-proxy.js'

export { pathOnly } from './request-log.js'

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void

export interface RequestContextOptions {
  log: Logger
  requestLog: boolean
  maxBodyBytes: number
  /** Believe the identity header from these proxy uids only; strip it from everyone. */
  trustedProxy?: ResolvedTrustedProxy | undefined
}

/**
 * Wrap the user's handler with what serve() does for every request, one unit each: the request
 * id (request-id.ts), `req.peer` and the trusted proxy's identity (request-peer.ts), the request
 * log (request-log.ts), the body limit (body-limit.ts).
 *
 * Split from one 79-line closure in 2026-12 with the request log moved to logger.info; measured
 * in alternating partial bench runs (unix-plain-serve-c32 next to express-unix-plain-c32, 10
 * rounds each, server CPU per request as a ratio to bare Express in the same run): before
 * 1.19x/1.19x/1.20x, after 1.15x/1.14x/1.20x; with the request log off 1.05x/1.05x/1.07x before,
 * 1.02x/1.04x/1.06x after.
 *
 * @example
 * http.createServer(withRequestContext(app, { log, requestLog: true, maxBodyBytes: 1 << 20 }))
 */
export function withRequestContext(handler: RequestListener, opts: RequestContextOptions): RequestListener {
  const { maxBodyBytes, trustedProxy } = opts
  const logRequest = opts.requestLog ? requestLog(opts.log) : undefined
  return (req, res) => {
    const id = assignRequestId(req, res)
    const peer = attachPeer(req, trustedProxy)
    logRequest?.(req, res, id, peer)
    if (!admitBody(req, res, maxBodyBytes)) return
    // Only a chunked body has a trailer section; it can carry the identity header as well. After
    // the body limit's wrapper of push(), so that it sees the end of the body first.
    if (trustedProxy && req.headers['transfer-encoding'] !== undefined) dropIdentityTrailer(req, trustedProxy)
    handler(req, res)
  }
}
