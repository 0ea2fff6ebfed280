import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { TRACEPARENT_HEADER, parseTraceparent, type Logger } from '@naaccord/ipc-shared'
import type { Peer } from '../gate/peer.js'

/** The path of a request URL, without its query string. */
export function pathOnly(url: string | undefined): string {
  // The query string may carry identifiers; the log keeps the path only.
  if (!url) return '/'
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

// What the request log says of a peer, made once per connection (a keep-alive connection
// carries many requests) rather than once per line; with a forwarded identity, per request.
const logPeers = new WeakMap<Peer, object>()
function logPeer(peer: Peer, fwd: string | undefined): object {
  let entry = fwd === undefined ? logPeers.get(peer) : undefined
  if (entry === undefined) {
    entry = { uid: peer.uid, gid: peer.gid, pid: peer.pid, cn: peer.certificate?.commonName, addr: peer.remoteAddress, fwd }
    if (fwd === undefined) logPeers.set(peer, entry)
  }
  return entry
}

/** Starts the request log of one request: its line is written when the response closes. */
export type RequestLog = (req: IncomingMessage, res: ServerResponse, id: string, peer: Peer | undefined) => void

/**
 * One line per request, written when the response closes (answered or aborted): id, trace id,
 * method, path without the query string, status, duration, peer. Bodies and authorisation
 * headers are never logged.
 *
 * Written with pino's public `logger.info`, so any logger the app hands in (formatters, mixin,
 * hooks, redaction, transports) shapes it. Until 2026-12 the line was built by hand from pino's
 * internals (fixedShapeInfo: 14 of `pino.symbols`), the same bytes; measured side by side
 * (interleaved batches, one process, Node 20.20, pino 10.4.0, createLogger's redaction) the
 * line cost 1.12-1.17 µs through logger.info against 0.21-0.22 µs by hand: about 1 µs a request,
 * about 1% of serve()'s server CPU per request (80-140 µs with Express, bench/README.md), below
 * the bench's A/A floor (1.00-1.06x). At the request level no difference could be told: the
 * bench's A/A pair with one server through logger.info measured 0.94x/1.03x/0.99x (its true A/A
 * in alternating runs: 1.07x/0.97x/1.06x), and instructions per request under callgrind moved
 * by more between two runs of the same code (JIT tiering) than between the two.
 *
 * @example
 * const logRequest = requestLog(log)
 * logRequest(req, res, assignRequestId(req, res), attachPeer(req, undefined))
 */
export function requestLog(log: Logger): RequestLog {
  return (req, res, id, peer) => {
    // Only the log line needs the duration.
    const start = performance.now()
    res.on('close', () => {
      log.info(
        {
          reqId: id,
          traceId: parseTraceparent(req.headers[TRACEPARENT_HEADER])?.traceId,
          method: req.method,
          path: pathOnly(req.url),
          status: res.statusCode,
          // Rounded to 0.01 ms: a float subtraction, not a BigInt per request.
          durationMs: Math.round((performance.now() - start) * 100) / 100,
          aborted: res.writableFinished ? undefined : true,
          peer: peer && logPeer(peer, req.peer?.forwardedIdentity),
        },
        'request',
      )
    })
  }
}
