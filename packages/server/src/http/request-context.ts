import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { REQUEST_ID_HEADER, TRACEPARENT_HEADER, parseTraceparent, type Logger } from '@naaccord/ipc-shared'
import { fixedShapeInfo } from '@naaccord/ipc-shared/logger'
import { limitBody } from './http-server.js'
import { peerOf, withPeerFields, type Peer } from '../gate/peer.js'
import { dropIdentityTrailer, takeForwardedIdentity, type ResolvedTrustedProxy } from './trusted-proxy.js'

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void

// A caller's id is kept only if it is short and plain, so it cannot smuggle text into logs.
const VALID_ID = /^[A-Za-z0-9._:-]{1,128}$/

export interface RequestContextOptions {
  log: Logger
  requestLog: boolean
  maxBodyBytes: number
  /** Believe the identity header from these proxy uids only; strip it from everyone. */
  trustedProxy?: ResolvedTrustedProxy | undefined
}

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

function tooLarge(res: ServerResponse, maxBodyBytes: number): void {
  res.writeHead(413, { 'content-type': 'application/json', connection: 'close' })
  res.end(JSON.stringify({ error: 'payload_too_large', limit: maxBodyBytes }))
}

/**
 * Wrap the user's handler: attach `req.peer` (learned once at accept), take or make the request
 * id and echo it, refuse oversized bodies (declared before the app sees them; chunked as soon
 * as the limit is passed, handing the app nothing beyond it), and log one line per
 * request (method, path, status, duration, id, peer) when the response ends. Bodies and
 * authorisation headers are never logged.
 */
export function withRequestContext(handler: RequestListener, opts: RequestContextOptions): RequestListener {
  const { log, requestLog, maxBodyBytes, trustedProxy } = opts
  // The request line, written as pino would write it but without its generic per-call work
  // (about 4 of the 5 µs a line cost); undefined for a logger configured to reshape lines.
  const line = requestLog ? fixedShapeInfo(log, LOG_KEYS, 'request') : undefined
  return (req, res) => {
    // Only the log line needs the duration.
    const start = requestLog ? performance.now() : 0
    const given = req.headers[REQUEST_ID_HEADER]
    const id = typeof given === 'string' && VALID_ID.test(given) ? given : randomUUID()
    req.headers[REQUEST_ID_HEADER] = id
    res.setHeader(REQUEST_ID_HEADER, id)
    const peer = peerOf(req.socket)
    if (peer) req.peer = peer
    if (trustedProxy) {
      const forwardedIdentity = takeForwardedIdentity(req, trustedProxy)
      if (forwardedIdentity !== undefined) req.peer = withPeerFields(req.peer, { forwardedIdentity })
    }

    if (requestLog) {
      res.on('close', () => {
        // Rounded to 0.01 ms: a float subtraction, not a BigInt per request.
        const durationMs = Math.round((performance.now() - start) * 100) / 100
        const aborted = !res.writableFinished
        const traceId = parseTraceparent(req.headers[TRACEPARENT_HEADER])?.traceId
        const fwd = req.peer?.forwardedIdentity
        if (line) {
          // reqId matched VALID_ID or is a UUID, a traceId is 32 hex digits, and Node's parser
          // admits only known method tokens: none needs escaping. The path is the caller's text.
          line(
            `,"reqId":"${id}"` +
              (traceId === undefined ? '' : `,"traceId":"${traceId}"`) +
              `,"method":"${req.method}","path":${JSON.stringify(pathOnly(req.url))},"status":${res.statusCode},"durationMs":${durationMs}` +
              (aborted ? ',"aborted":true' : '') +
              (peer ? `,"peer":${logPeer(peer, fwd).json}` : ''),
          )
        } else {
          log.info(
            {
              reqId: id,
              traceId,
              method: req.method,
              path: pathOnly(req.url),
              status: res.statusCode,
              durationMs,
              aborted: aborted || undefined,
              peer: peer && logPeer(peer, fwd).object,
            },
            'request',
          )
        }
      })
    }

    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > maxBodyBytes) {
      tooLarge(res, maxBodyBytes)
      return
    }
    // A Content-Length body is delivered by Node's parser to exactly its declared length, which
    // was just checked; only a chunked body (Transfer-Encoding) can grow past the limit unseen,
    // so only that one is counted: no per-request wrapper for GETs and sized bodies.
    if (req.headers['transfer-encoding'] === undefined) {
      handler(req, res)
      return
    }
    limitBody(req, maxBodyBytes, () => {
      // Answered by us when the app has not answered yet; once the answer is out (or at once
      // when the app had answered), the request is aborted: the app's body reader sees
      // 'aborted' and the connection closes. The rest of the body never reaches the app.
      if (res.headersSent) req.destroy()
      else {
        res.once('finish', () => req.destroy())
        tooLarge(res, maxBodyBytes)
      }
    })
    // Only a chunked body has a trailer section; it can carry the identity header as well.
    if (trustedProxy) dropIdentityTrailer(req, trustedProxy)
    handler(req, res)
  }
}
