import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { REQUEST_ID_HEADER } from '@naaccord/ipc-shared'
import { limitBody } from './http-server.js'
import { peerOf, withPeerFields } from './peer.js'
import type { RequestLog } from './request-log.js'
import { takeForwardedIdentity, type ResolvedTrustedProxy } from './trusted-proxy.js'

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void

// A caller's id is kept only if it is short and plain, so it cannot smuggle text into logs.
const VALID_ID = /^[A-Za-z0-9._:-]{1,128}$/

export interface RequestContextOptions {
  /** The request log (one line per request), or undefined for none. */
  requests: RequestLog | undefined
  maxBodyBytes: number
  /** Believe the identity header from these proxy uids only; strip it from everyone. */
  trustedProxy?: ResolvedTrustedProxy | undefined
}

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
  const { maxBodyBytes, trustedProxy } = opts
  const requests = opts.requests
  return (req, res) => {
    const start = requests ? performance.now() : 0
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
    if (requests) {
      res.on('close', () => requests.record(req, res, id, peer, start))
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
    handler(req, res)
  }
}
