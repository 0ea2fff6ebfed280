import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { TRACEPARENT_HEADER, parseTraceparent, type Logger } from '@naaccord/ipc-shared'
import { LOG_BUFFER, fixedShapeInfo, onLogFlush } from '@naaccord/ipc-shared/logger'
import type { Peer } from './peer.js'

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

// Facts kept per request until its line is written, in one flat array: a slot of FIELDS values.
const FIELDS = 10
// Lines formatted at a time: a batch is written at this many requests or every flushIntervalMs.
const BATCH = 64

/** The request log of one server: one line per request, written as the response closes. */
export interface RequestLog {
  /** Log `req` once its response has closed (finished or cut). `start` is performance.now() at arrival. */
  record(req: IncomingMessage, res: ServerResponse, id: string, peer: Peer | undefined, start: number): void
  /** Write every line held (close() and the process exit hooks call it). */
  drain(): void
  /** Drain, and stop the batch timer. */
  close(): void
}

/**
 * The request log. With a logger whose lines it can write itself (pino's shape, see
 * fixedShapeInfo) it keeps only the facts of each finished request (time, duration, id, method,
 * URL, status, peer: no string is built on the request's path) and formats them BATCH at a
 * time or every LOG_BUFFER.flushIntervalMs, into the very lines `logger.info` would write, with
 * each request's own time. On the bench's Express app (`pnpm bench`, item 3) this took the
 * log's share of the server's CPU per request from 11-17% to about 5%: formatting 64 lines in
 * one loop costs far less than formatting each between Express's own calls, where it finds the
 * caches cold. Records held are written by close(), flushLogger() and the process exit hooks
 * (a SIGKILL loses at most what the last 2 x LOG_BUFFER.flushIntervalMs held). A logger that
 * reshapes lines gets one `logger.info` per request, at once.
 *
 * @example
 * const requests = createRequestLog(log)
 * res.on('close', () => requests.record(req, res, id, peer, start))
 */
export function createRequestLog(log: Logger): RequestLog {
  const line = fixedShapeInfo(log, LOG_KEYS, 'request')
  if (line === undefined) {
    return {
      record(req, res, id, peer, start) {
        const fwd = req.peer?.forwardedIdentity
        log.info(
          {
            reqId: id,
            traceId: parseTraceparent(req.headers[TRACEPARENT_HEADER])?.traceId,
            method: req.method,
            path: pathOnly(req.url),
            status: res.statusCode,
            durationMs: Math.round((performance.now() - start) * 100) / 100,
            aborted: !res.writableFinished || undefined,
            peer: peer && logPeer(peer, fwd).object,
          },
          'request',
        )
      },
      drain() {},
      close() {},
    }
  }

  const held: unknown[] = new Array(FIELDS * BATCH)
  // Slots [next, n) hold records not yet written. `next` advances before each line is written, so
  // a stream that throws on one line loses that line only: the others wait for the next drain.
  let n = 0
  let next = 0
  const drain = (): void => {
    while (next < n) {
      const i = next
      next = i + FIELDS
      const traceId = parseTraceparent(held[i + 7])?.traceId
      const peer = held[i + 8] as Peer | undefined
      // reqId matched VALID_ID or is a UUID, a traceId is 32 hex digits, and Node's parser admits
      // only known method tokens: none needs escaping. The path is the caller's text.
      line(
        `,"reqId":"${held[i + 2] as string}"` +
          (traceId === undefined ? '' : `,"traceId":"${traceId}"`) +
          `,"method":"${held[i + 3] as string}","path":${JSON.stringify(pathOnly(held[i + 4] as string | undefined))},"status":${held[i + 5] as number},"durationMs":${Math.round((held[i + 1] as number) * 100) / 100}` +
          (held[i + 6] === true ? ',"aborted":true' : '') +
          (peer ? `,"peer":${logPeer(peer, held[i + 9] as string | undefined).json}` : ''),
        held[i] as number,
      )
    }
    // Let go of what the lines referred to (peers, URLs) until the slots are used again.
    held.fill(undefined, 0, n)
    n = 0
    next = 0
  }
  const timer = setInterval(drain, LOG_BUFFER.flushIntervalMs)
  timer.unref()
  // The exit hooks and flushLogger() write every record held even if the stream throws on some.
  const unregister = onLogFlush(() => {
    for (;;) {
      try {
        drain()
        return
      } catch {
        // That one line is lost (each throw uses up one record): write the others.
      }
    }
  })
  let closed = false
  return {
    record(req, res, id, peer, start) {
      // Not held while info is off: a request that closed then stays unlogged even if the level is
      // lowered again before the drain (as logger.info at close would have done).
      if (!log.isLevelEnabled('info')) return
      const i = n
      held[i] = Date.now()
      held[i + 1] = performance.now() - start
      held[i + 2] = id
      held[i + 3] = req.method
      held[i + 4] = req.url
      held[i + 5] = res.statusCode
      held[i + 6] = !res.writableFinished
      held[i + 7] = req.headers[TRACEPARENT_HEADER]
      held[i + 8] = peer
      held[i + 9] = req.peer?.forwardedIdentity
      n = i + FIELDS
      if (n >= held.length || closed) drain()
    },
    drain,
    close() {
      closed = true
      drain()
      clearInterval(timer)
      unregister()
    },
  }
}
