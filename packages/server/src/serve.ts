import type http from 'node:http'
import type net from 'node:net'
import type { Socket } from 'node:net'
import type tls from 'node:tls'
import { assertPeerCredentialsAvailable } from '@naaccord/ipc-peercred'
import { TlsRequiredError, type Logger, type TlsMaterial } from '@naaccord/ipc-shared'
import { flushLogger } from '@naaccord/ipc-shared/logger'
import { createAcceptor } from './gate/acceptor.js'
import type { ConnectionTracker } from './gate/connection-tracker.js'
import { sendHealth, type ListenerHealth } from './http/health.js'
import { createHttpServer, type HttpServerState } from './http/http-server.js'
import type { Listener } from './socket/listener.js'
import { resolveServerOptions, type ResolvedListenTarget, type ResolvedServerOptions, type ServerOptions } from './options.js'
import type { Peer } from './gate/peer.js'
import { createPeerCheck, tcpGate, type ConnectionGate } from './gate/peer-check.js'
import { pathOnly, withRequestContext, type RequestListener } from './http/request-context.js'
import { cutConnectionsWithoutRequest, drainConnections } from './shutdown.js'
import { closeOnSignals } from './runtime/signals.js'
import { notifySystemd } from './runtime/systemd-notify.js'
import { listenOnFd, takeInheritedSocket } from './socket/socket-activation.js'
import { openSocketListener, type SocketSource } from './socket/socket-listener.js'
import { notifySupervisorReady } from './supervisor/child-ready.js'
import { openTcpListener } from './socket/tcp-listener.js'
import { watchServerCertificates, type TlsStage } from './gate/tls-context.js'
import { logSecurityReport, securityContext, serverSecurityReport, type SecuritySetting } from './security-report.js'

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
  /** Connections open now, all listeners together, whatever their state (each listener has its own `maxConnections`). */
  readonly connections: number
  /**
   * Per listener, in `listeners` order: connections open now (at most `maxConnections`) and, of
   * those, not yet authenticated (at most `maxUnauthenticated`).
   */
  readonly connectionCounts: ReadonlyArray<{ readonly open: number; readonly unauthenticated: number }>
  /** The options in force after defaults and environment. */
  readonly options: ResolvedServerOptions
  /** The start-up security report: every security setting, its source, and which ones weaken the default (also in /healthz). */
  readonly security: readonly SecuritySetting[]
  /** The logger in use. */
  readonly logger: Logger
  /** The server certificate in use (after any rotation), when TLS is on. */
  readonly certificate: TlsMaterial['leaf'] | undefined
  /**
   * Stop accepting, remove the socket (if still ours) and release the lock at once, so a
   * successor can start; cut every connection not yet authenticated (mid-handshake, before the
   * peer check, a refused peer's 403) at once; then drain: requests in flight finish, every
   * answer carries `Connection: close`, idle connections are left for their client to close
   * (or cut at once with `closeIdleOnShutdown`); whatever is open after `shutdownTimeoutMs` is
   * cut. Idempotent.
   */
  close(): Promise<void>
}

/** Where the listening socket of a `{ socketPath }` listener comes from (default: bind it). */
export interface ServeInternals {
  socketSource?: SocketSource
}

type SocketTarget = Extract<ResolvedListenTarget, { kind: 'socket' }>

/**
 * Refuse a configuration that would be unsafe before anything is opened. What is allowed but
 * weaker than the default is said by the security report (security-report.ts), not here.
 */
function checkStartPolicy(opts: ResolvedServerOptions): void {
  const hasSocket = opts.listen.some((t) => t.kind === 'socket')
  // Fail closed: without a working peer check we do not start, unless allow: false says so by name.
  if (opts.allow !== false && hasSocket) assertPeerCredentialsAvailable()
  for (const t of opts.listen) {
    if (t.kind === 'tcp' && !opts.tls && !opts.allowPlaintextTcp) {
      throw new TlsRequiredError(
        `listening on TCP ${t.host}:${t.port} without TLS would send health data in clear text; pass tls: { cert, key, ca }, or allowPlaintextTcp: true to accept that`,
      )
    }
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
 * Each listener is a plain `net.Server` with its own connection budget. An accepted raw socket
 * is passed through the listener's gate (Unix: SO_PEERCRED against `allow`), counted
 * (`maxConnections`, and `maxUnauthenticated` until it is past every check), then, with TLS,
 * taken through the handshake and the client-certificate policy, and only then handed to one
 * HTTP server that never listens (`emit('connection')`).
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
  const security = serverSecurityReport(opts, securityContext())
  logSecurityReport(log, security)

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
            if (req.method === 'GET' && pathOnly(req.url) === health.path && authenticated(req.peer)) sendHealth(req, res, listenerHealth, startedAt, security)
            else app(req, res)
          },
      { log, requestLog: opts.requestLog, trustedProxy: opts.trustedProxy, maxBodyBytes: opts.limits.maxBodyBytes },
    ),
    opts,
    state,
  )
  const trackers: ConnectionTracker[] = []
  const toHttp = (socket: Socket): void => void httpServer.emit('connection', socket)
  /** The accept path of one more listener, with its own budget (and TLS step). */
  const acceptor = (gate: ConnectionGate, transport: 'unix' | 'tcp', where: () => string) => {
    const a = createAcceptor({ gate, transport, where, opts, log, toHttp })
    trackers.push(a.tracker)
    if (a.tlsStage) tlsStages.push(a.tlsStage)
    return a.onConnection
  }

  try {
    const unixGate = createPeerCheck(opts.allow, log, opts.tls !== undefined)
    for (const target of opts.listen) {
      // What the budget's log line names: the TCP address once known (port 0 is filled in).
      let address = target.kind === 'socket' ? target.socketPath : `${target.host}:${target.port}`
      const where = () => address
      const listener =
        target.kind === 'socket'
          ? await openSocketListener(
              { socketPath: target.socketPath, tls: opts.tls !== undefined },
              opts,
              log,
              acceptor(unixGate, 'unix', where),
              socketSourceFor(target.socketPath, opts, internals),
            )
          : await openTcpListener({ host: target.host, port: target.port, tls: opts.tls !== undefined }, acceptor(tcpGate, 'tcp', where))
      address = listener.health.address
      listeners.push(listener)
      listenerHealth.push(listener.health)
    }
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close()))
    for (const t of trackers) t.destroyAll()
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
      let n = 0
      for (const t of trackers) n += t.size
      return n
    },
    get connectionCounts() {
      return trackers.map((t) => ({ open: t.size, unauthenticated: t.unauthenticated }))
    },
    options: opts,
    security,
    logger: log,
    get certificate() {
      return certificate
    },
    close() {
      closePromise ??= (async () => {
        state.closing = true
        systemd.stopping()
        certWatch?.close()
        // Give the address back first: a successor can bind while our connections drain. Each
        // listener stops accepting at once (before its socket file and lock are given back).
        const released = Promise.all(listeners.map((l) => l.close()))
        // Nothing that carries no request holds the shutdown: a handshake flood is cut here.
        const unauthenticated = cutConnectionsWithoutRequest(trackers, httpServer, opts.closeIdleOnShutdown)
        await released
        log.info({ listeners: listenerHealth, connections: ipc.connections, cutUnauthenticated: unauthenticated }, 'stopped accepting; draining')
        const { forced, cut } = await drainConnections(trackers, opts.shutdownTimeoutMs)
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
    { listeners: listenerHealth, pid: process.pid, allow: opts.allow, maxConnections: opts.maxConnections, maxUnauthenticated: opts.maxUnauthenticated, tls: opts.tls ? { clientAuth: opts.tls.clientAuth, minVersion: opts.tls.minVersion } : false },
    'listening',
  )
  notifySupervisorReady()
  return ipc
}
