import http from 'node:http'
import type { Socket } from 'node:net'
import type { Logger } from '@naaccord/ipc-shared'
import type { ResolvedServerOptions } from '../options.js'
import { headerPolicy, type HeaderPolicyState } from './header-policy.js'

/** What the HTTP layer reads of the server's state (the header policy's `closing`). */
export type HttpServerState = HeaderPolicyState

const kSilence = Symbol('naaccord.silenceTimer')
const kPending = Symbol('naaccord.pendingAnswers')
const kIdle = Symbol('naaccord.idleTimer')
type SilentSocket = Socket & { [kSilence]?: NodeJS.Timeout | undefined; [kPending]?: number; [kIdle]?: NodeJS.Timeout }

/** Most answers a connection may have outstanding (pipelined requests not yet answered). */
export const MAX_PIPELINED = 32

/** The connection's silence timer (before its first request), cleared. */
function clearSilence(socket: SilentSocket): void {
  const timer = socket[kSilence]
  if (timer !== undefined) {
    clearTimeout(timer)
    socket[kSilence] = undefined
  }
}

/** How long a connection that sent a malformed or late request may take to read our answer. */
const CLIENT_ERROR_LINGER_MS = 1000

/**
 * Node checks headersTimeout/requestTimeout on a timer that starts when the server emits
 * 'listening' (setupConnectionsTracking in lib/_http_server.js; started there rather than in
 * the constructor so that a server which never listens holds no interval, nodejs/node
 * test-http-server-connections-checking-leak.js). Our HTTP server never listens: admitted
 * connections are handed to it with emit('connection'), the documented way to inject a
 * connection, and Node offers no public call that starts the checks. So 'listening' (a
 * documented event) is emitted here, once, before any connection, as a test of Node's own suite
 * does on a server that never listens (it emits 'listening' twice and checks that the interval
 * timer is replaced). test/network.test.ts ("headersTimeoutMs: 2000 answers 408 after about
 * 2 s") fails if a Node upgrade moves this. The metrics listener's HTTP server never listens
 * either.
 */
export function startTimeoutChecks(server: http.Server): void {
  server.emit('listening')
}

/**
 * Bound what a connection can hold without a request in flight, on any HTTP server fed with
 * emit('connection') (the service's and the metrics listener's):
 *
 * - Node's headersTimeout only runs once a request has begun, so a connection that sends nothing
 *   at all would be kept for ever: one timer per connection cuts it when not a byte arrived within
 *   headersTimeoutMs of the handover (once bytes arrived, Node's headersTimeout answers 408);
 * - after its last answer, a keep-alive connection has keepAliveTimeoutMs to begin a new request
 *   and headersTimeoutMs more to complete its head: Node's keep-alive timer restarts on every byte
 *   and blank lines between requests start no headers timer, so a peer sending CRLF once a second
 *   would keep the connection for ever; this timer counts from the answer, not the last byte;
 * - pipelining depth: Node dispatches every request of a chunk it has read before it pauses the
 *   socket, and a peer that never reads makes each answer wait in memory; a connection with more
 *   than MAX_PIPELINED answers outstanding is cut (HTTP clients pipeline 1 deep).
 *
 * A request in flight clears the timer: a slow handler is requestTimeout's business. The
 * connection part is a 'connection' listener; the request part is the returned function, which
 * the server's own request handler calls first (no second 'request' listener, no closure per
 * request: this is the request path).
 *
 * @returns `admit(req, res)`: false when the request's connection was cut (pipelining depth).
 * @example
 * const admit = guardConnections(server, { headersTimeoutMs: 10_000, keepAliveTimeoutMs: 10_000 }, log)
 * http.createServer((req, res) => { if (admit(req, res)) app(req, res) })
 */
export function guardConnections(
  server: http.Server,
  limits: { headersTimeoutMs: number; keepAliveTimeoutMs: number },
  log: Logger,
): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  const idleAfterAnswerMs = limits.keepAliveTimeoutMs + limits.headersTimeoutMs
  /**
   * The idle timer of a connection: made at its first answer, then only refreshed (no timer made
   * per request). When it fires with a request in flight, nothing happens: the next answer
   * refreshes it again.
   */
  const idleTimer = (socket: SilentSocket): NodeJS.Timeout => {
    const timer = setTimeout(() => {
      if ((socket[kPending] ?? 0) === 0) socket.destroy()
    }, idleAfterAnswerMs)
    timer.unref()
    return timer
  }
  /** One function per server (no closure per request): the response closed, its answer no longer waits. */
  function answered(this: http.ServerResponse): void {
    const socket = this.req.socket as SilentSocket | null
    if (!socket || socket[kPending] === undefined) return
    if (--socket[kPending] > 0 || socket.destroyed || limits.keepAliveTimeoutMs === 0) return
    const idle = socket[kIdle]
    if (idle !== undefined) {
      idle.refresh()
      return
    }
    clearSilence(socket)
    socket[kIdle] = idleTimer(socket)
  }
  server.on('connection', (socket: SilentSocket) => {
    const before = socket.bytesRead
    const silence = setTimeout(() => {
      socket[kSilence] = undefined
      if ((socket[kPending] ?? 0) === 0 && socket[kIdle] === undefined && socket.bytesRead === before) socket.destroy()
    }, limits.headersTimeoutMs)
    silence.unref()
    socket[kSilence] = silence
    socket.once('close', () => {
      clearSilence(socket)
      if (socket[kIdle] !== undefined) clearTimeout(socket[kIdle])
    })
  })
  return (req, res) => {
    const socket = req.socket as SilentSocket
    const pending = (socket[kPending] ?? 0) + 1
    socket[kPending] = pending
    if (pending > MAX_PIPELINED) {
      log.warn({ pending }, `closing a connection with more than ${MAX_PIPELINED} pipelined requests outstanding`)
      socket.destroy()
      return false
    }
    // 'close' comes once per response: on() spares the wrapper once() would make per request.
    res.on('close', answered)
    return true
  }
}

/**
 * The one HTTP server of a `serve()`: it never listens; every admitted connection (plain or
 * after the TLS handshake) is handed to it with `emit('connection', socket)`. Timeouts, header
 * and body limits, the response header policy and the answer to malformed requests live here.
 *
 * @example
 * const server = createHttpServer(handler, opts, { closing: false })
 * server.emit('connection', admittedSocket)
 */
export function createHttpServer(listener: http.RequestListener, opts: ResolvedServerOptions, state: HttpServerState): http.Server {
  const { limits } = opts
  const writeHeadWithPolicy = headerPolicy(state)
  const server = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: limits.connectionsCheckingIntervalMs,
      noDelay: true,
    },
    (req, res) => {
      if (!admit(req, res)) return // cut: pipelining depth
      // One function per server, set on each response (no closure per request).
      res.writeHead = writeHeadWithPolicy as typeof res.writeHead
      listener(req, res)
    },
  )
  const admit = guardConnections(server, limits, opts.logger)
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    opts.logger.debug({ err: { code: err.code, message: err.message } }, 'client error')
    if (!socket.writable || socket.destroyed || err.code === 'ECONNRESET') {
      socket.destroy()
      return
    }
    const status =
      err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request'
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
    // A peer that does not read our answer does not keep the connection.
    setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS).unref()
  })
  startTimeoutChecks(server)
  return server
}
