import http from 'node:http'
import https from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import path from 'node:path'
import { assertPeerCredentialsAvailable } from '@naaccord/ipc-peercred'
import { TlsRequiredError, type Logger, type TlsMaterial } from '@naaccord/ipc-shared'
import { flushLogger } from '@naaccord/ipc-shared/logger'
import { bindSocket, listen, unlinkIfOurs, type BoundSocket } from './bind-socket.js'
import { sendHealth, type ListenerHealth } from './health.js'
import { resolveServerOptions, type ResolvedListenTarget, type ResolvedServerOptions, type ServerOptions } from './options.js'
import { setPeer } from './peer.js'
import { createPeerCheck, gateConnections } from './peer-check.js'
import { withRequestContext, type RequestListener } from './request-context.js'
import { closeGracefully } from './shutdown.js'
import { acquireSocketLock, type HeldLock } from './socket-lock.js'
import { ensureSocketFolder } from './socket-path.js'
import { clearStaleSocket } from './stale-socket.js'
import { notifySystemd } from './systemd-notify.js'
import { listenOnFd, takeInheritedSocket } from './socket-activation.js'
import { notifySupervisorReady } from './supervisor/child-ready.js'
import { gateClientCertificates, serverTlsOptions, watchServerCertificates } from './tls-context.js'

/** Anything that handles Node requests: an Express app, a Koa `callback()`, a plain function. */
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => unknown

export interface IpcServer {
  /** The Unix socket path (the first socket listener), or undefined when listening on TCP only. */
  readonly socketPath: string | undefined
  /** The Node server of the first listener. */
  readonly server: http.Server
  /** Every Node server, one per listener. */
  readonly servers: readonly http.Server[]
  /** Where each listener listens (TCP port filled in when 0 was asked). */
  readonly listeners: readonly ListenerHealth[]
  /** The options in force after defaults and environment. */
  readonly options: ResolvedServerOptions
  /** The logger in use. */
  readonly logger: Logger
  /** The server certificate in use (after any rotation), when TLS is on. */
  readonly certificate: TlsMaterial['leaf'] | undefined
  /** Stop accepting, drain in-flight requests, remove the socket if still ours, release the lock. Idempotent. */
  close(): Promise<void>
}

interface SocketListener {
  /** The socket path under the checked real folder. */
  fsPath: string
  lock: HeldLock
  bound: BoundSocket
}

/**
 * Serve `handler` on a Unix domain socket (and, with TLS, on TCP): safe folder, exact socket mode
 * from the first moment, stale-socket recovery under a lock, kernel-checked peers before any HTTP,
 * optional mutual TLS, graceful shutdown.
 *
 * @example
 * import express from 'express'
 * import { serve } from '@naaccord/ipc-server'
 * const app = express()
 * app.get('/reports/:id', (req, res) => res.json({ id: req.params.id, peer: req.peer }))
 * const ipc = await serve(app, { socketPath: '/run/naaccord/service.sock' })
 */
export async function serve(handler: Handler, options: ServerOptions = {}): Promise<IpcServer> {
  const opts = resolveServerOptions(options)
  const log = opts.logger
  const startedAt = Date.now()
  const socketTargets = opts.listen.filter((t): t is Extract<ResolvedListenTarget, { kind: 'socket' }> => t.kind === 'socket')

  // Fail closed: without a working peer check we do not start, unless allow: false says so by name.
  if (opts.allow === false) {
    log.warn('peer check is OFF (allow: false): any process that can open the socket is served')
  } else if (socketTargets.length > 0) {
    assertPeerCredentialsAvailable()
  }
  for (const t of opts.listen) {
    if (t.kind === 'tcp' && !opts.tls && !opts.allowPlaintextTcp) {
      throw new TlsRequiredError(
        `listening on TCP ${t.host}:${t.port} without TLS would send health data in clear text; pass tls: { cert, key, ca }, or allowPlaintextTcp: true to accept that`,
      )
    }
  }
  if (!opts.tls && socketTargets.length > 0 && !opts.acknowledgePlaintextSocket) {
    log.warn('plaintext HTTP over the Unix socket (protected by file mode and the peer check, not encrypted); add tls for defence in depth, or acknowledgePlaintextSocket: true to silence this')
  }

  if (typeof (handler as { disable?: unknown }).disable === 'function') {
    ;(handler as unknown as { disable(name: string): void }).disable('x-powered-by')
  }

  let closing = false
  const inFlight = new Set<http.ServerResponse>()
  const servers: http.Server[] = []
  const listeners: ListenerHealth[] = []
  const sockets: SocketListener[] = []
  let certificate = opts.tls?.material.leaf
  const healthPath = '/healthz'

  const wrapped = withRequestContext(
    (req, res) => {
      if (req.method === 'GET' && req.url === healthPath && !res.headersSent) {
        sendHealth(req, res, listeners, startedAt)
        return
      }
      ;(handler as RequestListener)(req, res)
    },
    {
      log,
      requestLog: opts.requestLog,
      trustedProxy: opts.trustedProxy,
      maxBodyBytes: opts.limits.maxBodyBytes,
      isClosing: () => closing,
      inFlight,
      onResponseDone: () => {
        if (closing) for (const s of servers) s.closeIdleConnections()
      },
    },
  )

  const createNodeServer = (): http.Server => {
    const httpOptions: http.ServerOptions = {
      maxHeaderSize: opts.limits.maxHeaderBytes,
      requestTimeout: opts.limits.requestTimeoutMs,
      headersTimeout: opts.limits.headersTimeoutMs,
      keepAliveTimeout: opts.limits.keepAliveTimeoutMs,
      noDelay: true,
    }
    const server = opts.tls
      ? (https.createServer(
          // A handshake that stalls is cut at the headers timeout (Node's default is 120 s, which
          // would also hold a graceful shutdown that long).
          { ...httpOptions, ...serverTlsOptions(opts.tls), handshakeTimeout: opts.limits.headersTimeoutMs },
          wrapped,
        ) as unknown as http.Server)
      : http.createServer(httpOptions, wrapped)
    server.keepAliveTimeout = opts.limits.keepAliveTimeoutMs
    server.headersTimeout = opts.limits.headersTimeoutMs
    server.requestTimeout = opts.limits.requestTimeoutMs
    if (opts.tls) gateClientCertificates(server, opts.tls, log)
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      const status =
        err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request'
      if (socket.writable && !socket.destroyed) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
      else socket.destroy()
      log.debug({ err: { code: err.code, message: err.message } }, 'client error')
    })
    servers.push(server)
    return server
  }

  const peerCheck = createPeerCheck(opts.allow, log, opts.tls !== undefined)

  /** Remove each socket that is still ours and release its lock. */
  const releaseSockets = async () => {
    for (const s of sockets) {
      await unlinkIfOurs(s.fsPath, s.bound.ino)
      await s.lock.release()
    }
  }

  try {
    for (const target of opts.listen) {
      const server = createNodeServer()
      if (target.kind === 'socket') {
        gateConnections(server, peerCheck)
        // Socket activation (systemd, naaccord-ipc run): the activator made, checked and keeps the
        // socket; we accept on it, and never lock or unlink it.
        const inheritedFd = takeInheritedSocket(target.socketPath)
        if (inheritedFd !== undefined) {
          await listenOnFd(server, inheritedFd)
          listeners.push({ transport: 'unix', address: target.socketPath, tls: opts.tls !== undefined })
          continue
        }
        // Every step after the folder check works on the checked real folder, so a symlink above
        // it cannot be repointed in between.
        const realDir = await ensureSocketFolder(target.socketPath, opts.dirMode, opts.socketGid)
        const fsPath = path.join(realDir, path.basename(target.socketPath))
        const lock = await acquireSocketLock(fsPath, log)
        try {
          await clearStaleSocket(fsPath, log)
          const bound = await bindSocket(server, fsPath, opts.socketMode, opts.socketGid)
          sockets.push({ fsPath, lock, bound })
        } catch (err) {
          await lock.release()
          throw err
        }
        listeners.push({ transport: 'unix', address: target.socketPath, tls: opts.tls !== undefined })
      } else {
        gateConnections(server, (socket) => {
          setPeer(socket, { transport: 'tcp', remoteAddress: socket.remoteAddress })
          return true
        })
        await listen(server, { host: target.host, port: target.port })
        const addr = server.address() as AddressInfo
        listeners.push({ transport: 'tcp', address: `${addr.address}:${addr.port}`, tls: opts.tls !== undefined })
      }
    }
  } catch (err) {
    await closeGracefully(servers, 0)
    await releaseSockets()
    throw err
  }

  const certWatch = opts.tls
    ? watchServerCertificates(opts.tls, servers as unknown as https.Server[], log, (m) => {
        certificate = m.leaf
      })
    : undefined

  let closePromise: Promise<void> | undefined
  // The handlers stay installed until close() has finished: a second signal (Ctrl-C reaches
  // every process of the group, then a supervisor sends SIGTERM) must not kill the process
  // before the socket and the lock are removed.
  const onSignal = (signal: NodeJS.Signals) => {
    if (closePromise) {
      log.info({ signal }, 'already shutting down')
      return
    }
    log.info({ signal }, 'shutting down')
    void ipc.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  if (opts.handleSignals) {
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  }

  const ipc: IpcServer = {
    socketPath: socketTargets[0]?.socketPath,
    server: servers[0]!,
    servers,
    listeners,
    options: opts,
    logger: log,
    get certificate() {
      return certificate
    },
    close() {
      closePromise ??= (async () => {
        closing = true
        systemd.stopping()
        // Answers still being prepared tell the client not to reuse the connection.
        for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close')
        certWatch?.close()
        const { forced } = await closeGracefully(servers, opts.shutdownTimeoutMs)
        if (forced) log.warn({ shutdownTimeoutMs: opts.shutdownTimeoutMs }, 'in-flight requests cut at the shutdown timeout')
        await releaseSockets()
        process.off('SIGTERM', onSignal)
        process.off('SIGINT', onSignal)
        log.info({ listeners }, 'server closed')
        // The log is buffered: every request line is written before close() resolves.
        await flushLogger(log)
      })()
      return closePromise
    },
  }
  const systemd = notifySystemd(log, listeners)
  log.info({ listeners, pid: process.pid, allow: opts.allow, tls: opts.tls ? { clientAuth: opts.tls.clientAuth, minVersion: opts.tls.minVersion } : false }, 'listening')
  notifySupervisorReady()
  return ipc
}
