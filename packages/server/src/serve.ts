import type http from 'node:http'
import type net from 'node:net'
import type { Socket } from 'node:net'
import type tls from 'node:tls'
import type { TLSSocket } from 'node:tls'
import { assertPeerCredentialsAvailable } from '@naaccord/ipc-peercred'
import { TlsRequiredError, type Logger, type TlsMaterial } from '@naaccord/ipc-shared'
import { flushLogger } from '@naaccord/ipc-shared/logger'
import { createConnectionTracker } from './connection-tracker.js'
import { sendHealth, type ListenerHealth } from './health.js'
import { createHttpServer, type HttpServerState } from './http-server.js'
import type { Listener } from './listener.js'
import { resolveServerOptions, type ResolvedListenTarget, type ResolvedServerOptions, type ServerOptions } from './options.js'
import type { Peer } from './peer.js'
import { createPeerCheck, tcpGate, unixPeerOf, type ConnectionGate } from './peer-check.js'
import { pathOnly, withRequestContext, type RequestListener } from './request-context.js'
import { drainConnections } from './shutdown.js'
import { closeOnSignals } from './signals.js'
import { notifySystemd } from './systemd-notify.js'
import { listenOnFd, takeInheritedSocket } from './socket-activation.js'
import { openSocketListener, type SocketSource } from './socket-listener.js'
import { notifySupervisorReady } from './supervisor/child-ready.js'
import { openTcpListener } from './tcp-listener.js'
import { createTlsStage, watchServerCertificates, type TlsStage } from './tls-context.js'

/** Anything that handles Node requests: an Express app, a Koa `callback()`, a plain function. */
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => unknown

export interface IpcServer {
  /** The Unix socket path (the first socket listener), or undefined when listening on TCP only. */
  readonly socketPath: string | undefined
  /**
   * The HTTP server every admitted connection is handed to (after the peer check, and after the
   * TLS handshake and certificate check with TLS). It never listens itself: `listeners` do.
   */
  readonly server: http.Server
  /** Where each listener listens (TCP port filled in when 0 was asked). */
  readonly listeners: readonly ListenerHealth[]
  /** The listening `net.Server` of each listener, in `listeners` order: raw sockets, before any check. */
  readonly netServers: readonly net.Server[]
  /** The TLS stage of each listener (never listens; emits 'tlsClientError' and 'secureConnection'), empty without TLS. */
  readonly tlsServers: readonly tls.Server[]
  /** Connections open now, all listeners together (counted against `maxConnections`). */
  readonly connections: number
  /** The options in force after defaults and environment. */
  readonly options: ResolvedServerOptions
  /** The logger in use. */
  readonly logger: Logger
  /** The server certificate in use (after any rotation), when TLS is on. */
  readonly certificate: TlsMaterial['leaf'] | undefined
  /**
   * Stop accepting, remove the socket (if still ours) and release the lock at once, so a
   * successor can start; then drain: requests in flight finish, every answer carries
   * `Connection: close`, idle connections are left for their client to close; whatever is open
   * after `shutdownTimeoutMs` is cut. Idempotent.
   */
  close(): Promise<void>
}

/** Where the listening socket of a `{ socketPath }` listener comes from (default: bind it). */
export interface ServeInternals {
  socketSource?: SocketSource
}

type SocketTarget = Extract<ResolvedListenTarget, { kind: 'socket' }>

/** Refuse a configuration that would be unsafe before anything is opened. */
function checkStartPolicy(opts: ResolvedServerOptions): void {
  const log = opts.logger
  const hasSocket = opts.listen.some((t) => t.kind === 'socket')
  // Fail closed: without a working peer check we do not start, unless allow: false says so by name.
  if (opts.allow === false) {
    log.warn('peer check is OFF (allow: false): any process that can open the socket is served')
  } else if (hasSocket) {
    assertPeerCredentialsAvailable()
  }
  for (const t of opts.listen) {
    if (t.kind === 'tcp' && !opts.tls && !opts.allowPlaintextTcp) {
      throw new TlsRequiredError(
        `listening on TCP ${t.host}:${t.port} without TLS would send health data in clear text; pass tls: { cert, key, ca }, or allowPlaintextTcp: true to accept that`,
      )
    }
  }
  if (!opts.tls && hasSocket && !opts.acknowledgePlaintextSocket) {
    log.warn('plaintext HTTP over the Unix socket (protected by file mode and the peer check, not encrypted); add tls for defence in depth, or acknowledgePlaintextSocket: true to silence this')
  }
}

/**
 * Where a socket listener's listening socket comes from: socket activation (systemd,
 * `naaccord-ipc run`) hands one over, which we check (takeInheritedSocket: its path, folder, file,
 * mode) and accept on, and never lock or unlink (the activator made and keeps it); otherwise the
 * given source, by default bind under the lock.
 */
function socketSourceFor(socketPath: string, opts: ResolvedServerOptions, internals: ServeInternals): SocketSource | undefined {
  const inheritedFd = takeInheritedSocket(socketPath, opts)
  if (inheritedFd === undefined) return internals.socketSource
  return async (server) => {
    await listenOnFd(server, inheritedFd)
    return { release: async () => {} }
  }
}

/**
 * Whether a request's peer passed the same policy as the app: every connection a Unix listener
 * admitted (the allow policy, or allow: false said by name), and any connection with a verified
 * client certificate. A TCP peer without a certificate (clientAuth "optional" or "none") has
 * passed no check of ours.
 */
function authenticated(peer: Peer | undefined): boolean {
  return peer !== undefined && (peer.transport === 'unix' || peer.certificate !== undefined)
}

/**
 * Serve `handler` on a Unix domain socket (and, with TLS, on TCP): safe folder, exact socket mode
 * from the first moment, stale-socket recovery under a lock, kernel-checked peers before any HTTP,
 * optional mutual TLS, bounded connections, graceful shutdown.
 *
 * Each listener is a plain `net.Server`. An accepted raw socket is counted (`maxConnections`),
 * passed through the listener's gate (Unix: SO_PEERCRED against `allow`), then, with TLS,
 * through the handshake and the client-certificate policy, and only then handed to one HTTP
 * server that never listens (`emit('connection')`).
 *
 * @example
 * import express from 'express'
 * import { serve } from '@naaccord/ipc-server'
 * const app = express()
 * app.get('/reports/:id', (req, res) => res.json({ id: req.params.id, peer: req.peer }))
 * const ipc = await serve(app, { socketPath: '/run/naaccord/service.sock' })
 */
export async function serve(handler: Handler, options: ServerOptions = {}, internals: ServeInternals = {}): Promise<IpcServer> {
  const opts = resolveServerOptions(options)
  const log = opts.logger
  const startedAt = Date.now()
  checkStartPolicy(opts)

  const state: HttpServerState = { closing: false }
  const listeners: Listener[] = []
  const listenerHealth: ListenerHealth[] = []
  const tlsStages: TlsStage[] = []
  let certificate = opts.tls?.material.leaf

  const health = opts.health
  const app = handler as RequestListener
  const httpServer = createHttpServer(
    withRequestContext(
      health === false
        ? app
        : (req, res) => {
            if (req.method === 'GET' && pathOnly(req.url) === health.path && authenticated(req.peer)) sendHealth(req, res, listenerHealth, startedAt)
            else app(req, res)
          },
      { log, requestLog: opts.requestLog, trustedProxy: opts.trustedProxy, maxBodyBytes: opts.limits.maxBodyBytes },
    ),
    opts,
    state,
  )
  const tracker = createConnectionTracker(opts.maxConnections)
  const toHttp = (socket: Socket): void => void httpServer.emit('connection', socket)

  /** What happens to each raw socket a listener accepts: count, gate, (TLS), HTTP. */
  const acceptor = (gate: ConnectionGate, transport: 'unix' | 'tcp') => {
    let next = toHttp
    if (opts.tls) {
      const allow = opts.allow
      const stage = createTlsStage({
        tls: opts.tls,
        handshakeTimeoutMs: opts.limits.handshakeTimeoutMs,
        log,
        peerOf: (s: TLSSocket) => (transport === 'unix' ? unixPeerOf(s, allow, log) : { transport: 'tcp', remoteAddress: s.remoteAddress }),
        onSecure: toHttp,
      })
      tlsStages.push(stage)
      next = (socket) => stage.accept(socket)
    }
    return (socket: Socket) => {
      if (!tracker.admit(socket)) return
      // Until HTTP (or TLS) owns it, a reset must not become an uncaught 'error'.
      socket.on('error', discard)
      if (gate(socket)) next(socket)
    }
  }

  try {
    const unixGate = createPeerCheck(opts.allow, log, opts.tls !== undefined)
    for (const target of opts.listen) {
      const listener =
        target.kind === 'socket'
          ? await openSocketListener({ socketPath: target.socketPath, tls: opts.tls !== undefined }, opts, log, acceptor(unixGate, 'unix'), socketSourceFor(target.socketPath, opts, internals))
          : await openTcpListener({ host: target.host, port: target.port, tls: opts.tls !== undefined }, acceptor(tcpGate, 'tcp'))
      listeners.push(listener)
      listenerHealth.push(listener.health)
    }
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close()))
    tracker.destroyAll()
    httpServer.close()
    throw err
  }

  const certWatch = opts.tls
    ? watchServerCertificates(
        opts.tls,
        tlsStages.map((s) => s.server),
        log,
        (m) => {
          certificate = m.leaf
        },
      )
    : undefined

  let closePromise: Promise<void> | undefined
  let unregisterSignals = () => {}
  const socketTargets = opts.listen.filter((t): t is SocketTarget => t.kind === 'socket')

  const ipc: IpcServer = {
    socketPath: socketTargets[0]?.socketPath,
    server: httpServer,
    listeners: listenerHealth,
    netServers: listeners.map((l) => l.server),
    tlsServers: tlsStages.map((s) => s.server),
    get connections() {
      return tracker.size
    },
    options: opts,
    logger: log,
    get certificate() {
      return certificate
    },
    close() {
      closePromise ??= (async () => {
        state.closing = true
        systemd.stopping()
        certWatch?.close()
        // Give the address back first: a successor can bind while our connections drain.
        await Promise.all(listeners.map((l) => l.close()))
        log.info({ listeners: listenerHealth, connections: tracker.size }, 'stopped accepting; draining')
        const { forced, cut } = await drainConnections(tracker, opts.shutdownTimeoutMs)
        if (forced) log.warn({ shutdownTimeoutMs: opts.shutdownTimeoutMs, cut }, 'connections still open at the shutdown timeout were cut')
        httpServer.close()
        unregisterSignals()
        log.info({ listeners: listenerHealth }, 'server closed')
        // The log is buffered: every request line is written before close() resolves.
        await flushLogger(log)
      })()
      return closePromise
    },
  }
  const systemd = notifySystemd(log, listenerHealth)
  if (opts.handleSignals) unregisterSignals = closeOnSignals(ipc)
  log.info(
    { listeners: listenerHealth, pid: process.pid, allow: opts.allow, maxConnections: opts.maxConnections, tls: opts.tls ? { clientAuth: opts.tls.clientAuth, minVersion: opts.tls.minVersion } : false },
    'listening',
  )
  notifySupervisorReady()
  return ipc
}

const discard = () => {}
