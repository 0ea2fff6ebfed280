import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { REQUEST_ID_HEADER, TRACEPARENT_HEADER, parseTraceparent, type Logger } from '@naaccord/ipc-shared'
import { peerOf } from './peer.js'
import { takeForwardedIdentity, type ResolvedTrustedProxy } from './trusted-proxy.js'

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void

// A caller's id is kept only if it is short and plain, so it cannot smuggle text into logs.
const VALID_ID = /^[A-Za-z0-9._:-]{1,128}$/

export interface RequestContextOptions {
  log: Logger
  requestLog: boolean
  maxBodyBytes: number
  /** Set while the server drains: answers carry `Connection: close`. */
  isClosing: () => boolean
  /** Responses not yet finished, so close() can mark them `Connection: close`. */
  inFlight: Set<ServerResponse>
  onResponseDone: () => void
  /** Believe the identity header from these proxy uids only; strip it from everyone. */
  trustedProxy?: ResolvedTrustedProxy | undefined
}

function pathOnly(url: string | undefined): string {
  // The query string may carry identifiers; the log keeps the path only.
  if (!url) return '/'
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/**
 * Wrap the user's handler: attach `req.peer` (learned once at accept), take or make the request
 * id and echo it, refuse oversized declared bodies before the app sees them, and log one line per
 * request (method, path, status, duration, id, peer) when the response ends. Bodies and
 * authorisation headers are never logged.
 */
export function withRequestContext(handler: RequestListener, opts: RequestContextOptions): RequestListener {
  const { log, requestLog, maxBodyBytes, isClosing, inFlight, onResponseDone, trustedProxy } = opts
  return (req, res) => {
    const start = process.hrtime.bigint()
    const given = req.headers[REQUEST_ID_HEADER]
    const id = typeof given === 'string' && VALID_ID.test(given) ? given : randomUUID()
    req.headers[REQUEST_ID_HEADER] = id
    res.setHeader(REQUEST_ID_HEADER, id)
    const peer = peerOf(req.socket)
    if (peer) req.peer = peer
    if (trustedProxy) {
      const forwardedIdentity = takeForwardedIdentity(req, trustedProxy)
      if (forwardedIdentity !== undefined) req.peer = { ...req.peer!, forwardedIdentity }
    }
    if (isClosing()) res.setHeader('connection', 'close')
    inFlight.add(res)

    res.on('close', () => {
      inFlight.delete(res)
      if (requestLog) {
        const durationMs = Number(process.hrtime.bigint() - start) / 1e6
        log.info(
          {
            reqId: id,
            traceId: parseTraceparent(req.headers[TRACEPARENT_HEADER])?.traceId,
            method: req.method,
            path: pathOnly(req.url),
            status: res.statusCode,
            durationMs: Math.round(durationMs * 100) / 100,
            aborted: !res.writableFinished || undefined,
            peer: peer && { uid: peer.uid, gid: peer.gid, pid: peer.pid, cn: peer.certificate?.commonName, addr: peer.remoteAddress, fwd: req.peer?.forwardedIdentity },
          },
          'request',
        )
      }
      onResponseDone()
    })

    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > maxBodyBytes) {
      res.writeHead(413, { 'content-type': 'application/json', connection: 'close' })
      res.end(JSON.stringify({ error: 'payload_too_large', limit: maxBodyBytes }))
      return
    }
    handler(req, res)
  }
}
