import type http from 'node:http'
import type net from 'node:net'
import type tls from 'node:tls'
import { closeOnSignals, type Logger, type TlsMaterial } from '@naaccord/ipc-shared'
import { flushLogger } from '@naaccord/ipc-shared/logger'
import { trackServerCertificate, type CertificateInUse } from './gate/tls-context.js'
import type { ListenerHealth } from './http/health.js'
import type { HttpServerState } from './http/http-server.js'
import type { ListenerSet } from './listener-set.js'
import type { ResolvedServerOptions } from './options.js'
import { notifySystemd, type SystemdNotifier } from './runtime/systemd-notify.js'
import type { SecuritySetting } from './security-report.js'
import { shutdownConnections } from './shutdown.js'

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

/** What a server is made of once every listener accepts. */
export interface ServerParts {
  readonly opts: ResolvedServerOptions
  readonly security: readonly SecuritySetting[]
  /** What the HTTP layer reads: `closing` is set when close() starts. */
  readonly state: HttpServerState
  readonly httpServer: http.Server
  readonly listeners: ListenerSet
}

/** The parts, and what runs alongside them until close(). */
interface Running extends ServerParts {
  readonly certificate: CertificateInUse
  readonly systemd: SystemdNotifier
  unregisterSignals: () => void
}

/**
 * close(), once: from now on every answer says `Connection: close`; systemd hears STOPPING=1; the
 * certificate watch stops; the connections are shut down (shutdownConnections: address given
 * back first, drain, cut at the timeout); the signal handler lets go of this server; the log is
 * flushed, so every request line is written before close() resolves.
 */
async function closeServer(r: Running): Promise<void> {
  r.state.closing = true
  r.systemd.stopping()
  r.certificate.stop()
  await shutdownConnections(r.listeners, r.httpServer, r.opts)
  r.unregisterSignals()
  r.opts.logger.info({ listeners: r.listeners.health }, 'server closed')
  await flushLogger(r.opts.logger)
}

/** The socket path of the first socket listener, if any. */
function firstSocketPath(opts: ResolvedServerOptions): string | undefined {
  for (const t of opts.listen) if (t.kind === 'socket') return t.socketPath
  return undefined
}

/**
 * The public face of a server whose listeners all accept: starts what runs alongside them (the
 * certificate watch with TLS, READY=1 and the watchdog under systemd, the process-wide signal
 * handler with `handleSignals`) and returns the `IpcServer`, whose close() takes it all apart.
 *
 * @example
 * const ipc = startRunningServer({ opts, security, state, httpServer, listeners })
 */
export function startRunningServer(parts: ServerParts): IpcServer {
  const { opts, listeners } = parts
  const log = opts.logger
  const running: Running = {
    ...parts,
    certificate: trackServerCertificate(opts.tls, listeners.tlsServers, log),
    systemd: notifySystemd(log, listeners.health),
    unregisterSignals: () => {},
  }
  let closed: Promise<void> | undefined
  const ipc: IpcServer = {
    socketPath: firstSocketPath(opts),
    server: parts.httpServer,
    listeners: listeners.health,
    netServers: listeners.netServers,
    tlsServers: listeners.tlsServers,
    get connections() {
      return listeners.connections
    },
    get connectionCounts() {
      return listeners.trackers.map((t) => ({ open: t.size, unauthenticated: t.unauthenticated }))
    },
    options: opts,
    security: parts.security,
    logger: log,
    get certificate() {
      return running.certificate.current
    },
    close() {
      closed ??= closeServer(running)
      return closed
    },
  }
  if (opts.handleSignals) running.unregisterSignals = closeOnSignals(ipc)
  return ipc
}
