import type http from 'node:http'
import { notifySupervisorReady } from '@naaccord/ipc-shared'
import { withHealthRoute } from './http/health-route.js'
import { createHttpServer, type HttpServerState } from './http/http-server.js'
import { withRequestContext, type RequestListener } from './http/request-context.js'
import { ListenerSet } from './listener-set.js'
import { resolveServerOptions, type ResolvedServerOptions, type ServerOptions } from './options.js'
import { startRunningServer, type IpcServer } from './running-server.js'
import { logSecurityReport, securityContext, serverSecurityReport } from './security-report.js'
import type { SocketSource } from './socket/socket-listener.js'
import { checkStartPolicy } from './start-policy.js'

export type { IpcServer } from './running-server.js'

/** Anything that handles Node requests: an Express app, a Koa `callback()`, a plain function. */
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => unknown

/** Where the listening socket of a `{ socketPath }` listener comes from (default: bind it). */
export interface ServeInternals {
  socketSource?: SocketSource
}

/** The one line that says the server serves, with what guards it. */
function logListening(opts: ResolvedServerOptions, ipc: IpcServer): void {
  const tls = opts.tls ? { clientAuth: opts.tls.clientAuth, minVersion: opts.tls.minVersion } : false
  opts.logger.info(
    { listeners: ipc.listeners, pid: process.pid, allow: opts.allow, maxConnections: opts.maxConnections, maxUnauthenticated: opts.maxUnauthenticated, tls },
    'listening',
  )
}

/**
 * Serve `handler` on a Unix domain socket (and, with TLS, on TCP): safe folder, exact socket mode
 * from the first moment, stale-socket recovery under a lock, kernel-checked peers before any HTTP,
 * optional mutual TLS, bounded connections, graceful shutdown.
 *
 * The parts, in the order they start: the start policy and the security report; the listeners
 * (listener-set.ts: each a plain `net.Server` with its own gate, connection budget and TLS step);
 * one HTTP server that never listens (http-server.ts), fed the admitted sockets with
 * `emit('connection')`, around the request context (request-context.ts) and the health route;
 * then what runs beside them (running-server.ts: certificate watch, systemd readiness, the
 * signal handler) and the supervisor's ready message. A failed start closes what was opened.
 * What this does to the process as a whole (signals, env, IPC channel) is listed in
 * PROCESS_EFFECTS, each with the option that turns it off.
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

  const listeners = new ListenerSet(opts, log)
  const state: HttpServerState = { closing: false }
  const app = withHealthRoute(handler as RequestListener, opts.health, { listeners: listeners.health, startedAt, security })
  const context = { log, requestLog: opts.requestLog, trustedProxy: opts.trustedProxy, maxBodyBytes: opts.limits.maxBodyBytes }
  const httpServer = createHttpServer(withRequestContext(app, context), opts, state)
  try {
    await listeners.open((socket) => void httpServer.emit('connection', socket), internals.socketSource)
  } catch (err) {
    httpServer.close()
    throw err
  }

  const ipc = startRunningServer({ opts, security, state, httpServer, listeners })
  logListening(opts, ipc)
  if (opts.notifySupervisorReady) notifySupervisorReady()
  return ipc
}
