import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { TRACEPARENT_HEADER, parseTraceparent, type Logger } from '@naaccord/ipc-shared'
import { fixedShapeInfo } from '@naaccord/ipc-shared/logger'
import type { Peer } from '../gate/peer.js'

/** The path of a request URL, without its query string. */
export function pathOnly(url: string | undefined): string {
  // The query string may carry identifiers; the log keeps the path only.
  if (!url) return '/'
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

// What the request log says of a peer, serialised once per connection (a keep-alive connection
// carries many requests) rather than once per line; with a forwarded identity, per request.
const logPeers = new WeakMap<Peer, { object: object; json: string }>()
function logPeer(peer: Peer, fwd: string | undefined): { object: object; json: string } {
  let entry = fwd === undefined ? logPeers.get(peer) : undefined
  if (entry === undefined) {
    const object = { uid: peer.uid, gid: peer.gid, pid: peer.pid, cn: peer.certificate?.commonName, addr: peer.remoteAddress, fwd }
    entry = { object, json: JSON.stringify(object) }
    if (fwd === undefined) logPeers.set(peer, entry)
  }
  return entry
}

const LOG_KEYS = ['reqId', 'traceId', 'method', 'path', 'status', 'durationMs', 'aborted', 'peer'] as const

type LineWriter = (req: IncomingMessage, res: ServerResponse, id: string, peer: Peer | undefined, durationMs: number) => void

/**
 * The line through a precomputed shape (fixedShapeInfo): byte for byte what `log.info` writes.
 * reqId matched request-id.ts's VALID_ID or is a UUID, a traceId is 32 hex digits, and Node's parser admits only
 * known method tokens: none needs escaping. The path is the caller's text.
 */
function fixedLine(line: (fieldsJson: string) => void): LineWriter {
  return (req, res, id, peer, durationMs) => {
    const traceId = parseTraceparent(req.headers[TRACEPARENT_HEADER])?.traceId
    line(
      `,"reqId":"${id}"` +
        (traceId === undefined ? '' : `,"traceId":"${traceId}"`) +
        `,"method":"${req.method}","path":${JSON.stringify(pathOnly(req.url))},"status":${res.statusCode},"durationMs":${durationMs}` +
        (res.writableFinished ? '' : ',"aborted":true') +
        (peer ? `,"peer":${logPeer(peer, req.peer?.forwardedIdentity).json}` : ''),
    )
  }
}

/** The line through `log.info`, for a logger that reshapes lines (formatters, mixin, hooks...). */
function infoLine(log: Logger): LineWriter {
  return (req, res, id, peer, durationMs) => {
    log.info(
      {
        reqId: id,
        traceId: parseTraceparent(req.headers[TRACEPARENT_HEADER])?.traceId,
        method: req.method,
        path: pathOnly(req.url),
        status: res.statusCode,
        durationMs,
        aborted: res.writableFinished ? undefined : true,
        peer: peer && logPeer(peer, req.peer?.forwardedIdentity).object,
      },
      'request',
    )
  }
}

/** Starts the request log of one request: its line is written when the response closes. */
export type RequestLog = (req: IncomingMessage, res: ServerResponse, id: string, peer: Peer | undefined) => void

/**
 * One line per request, written when the response closes (answered or aborted): id, trace id,
 * method, path without the query string, status, duration, peer. Bodies and authorisation
 * headers are never logged.
 *
 * @example
 * const logRequest = requestLog(log)
 * logRequest(req, res, assignRequestId(req, res), attachPeer(req, undefined))
 */
export function requestLog(log: Logger): RequestLog {
  // The line written as pino would write it but without its generic per-call work; undefined
  // for a logger configured to reshape lines.
  const line = fixedShapeInfo(log, LOG_KEYS, 'request')
  const write = line ? fixedLine(line) : infoLine(log)
  return (req, res, id, peer) => {
    // Only the log line needs the duration.
    const start = performance.now()
    res.on('close', () => {
      // Rounded to 0.01 ms: a float subtraction, not a BigInt per request.
      write(req, res, id, peer, Math.round((performance.now() - start) * 100) / 100)
    })
  }
}
