import http from 'node:http'
import type { Socket } from 'node:net'
import { assertPeerCredentialsAvailable } from '@naaccord/ipc-peercred'
import { myUid, type Logger } from '@naaccord/ipc-shared'
import { warnWhateverLevel } from '@naaccord/ipc-shared/logger'
import { createConnectionTracker } from '../gate/connection-tracker.js'
import { guardConnections, startTimeoutChecks } from '../http/http-server.js'
import type { Listener } from '../socket/listener.js'
import type { ResolvedMetricsOptions } from './metrics-options.js'
import { createPeerCheck, type ConnectionGate } from '../gate/peer-check.js'
import { openSocketListener } from '../socket/socket-listener.js'
import { openTcpListener } from '../socket/tcp-listener.js'

/** The metrics listener: where it listens, and how to stop it. */
export interface MetricsListener {
  /** `host:port`, or the socket path. */
  readonly address: string
  /** Stop accepting, give the socket path back (removed if still ours, lock released), cut every connection. */
  close(): Promise<void>
}

/** Largest request header block of a scrape (a Prometheus scrape sends a few hundred bytes). */
const MAX_HEADER_BYTES = 8 * 1024
const admitAll: ConnectionGate = () => true
const discard = () => {}

/**
 * Whatever lets more readers at the metrics than the server's own uid is said at start, whatever
 * the log level (as serve()'s security report does): loopback TCP (every local user), the peer
 * check off, other uids or any gid in `allow`, a socket mode open to others.
 */
function sayWeakenings(opts: ResolvedMetricsOptions, log: Logger): void {
  const target = opts.listen
  const say = (setting: string, value: unknown, why: string) =>
    warnWhateverLevel(log, { setting: `metrics.listen.${setting}`, value, source: 'option' }, `security weakened: metrics.listen.${setting} = ${JSON.stringify(value)}: ${why}`)
  if (target.kind !== 'socket') {
    say('host', `${target.host}:${target.port}`, 'metrics on loopback TCP can be read by every local user of this host (routes, call counts, refusals); prefer listen.socketPath')
    return
  }
  if (target.allow === false) {
    say('allow', false, 'the metrics socket peer check is OFF: any process that can open the socket reads the metrics')
  } else {
    const me = myUid()
    const others = target.allow.uids.filter((u) => u !== me && u !== 0)
    if (others.length > 0 || target.allow.gids.length > 0) {
      say('allow', { uids: target.allow.uids, gids: target.allow.gids }, `uids ${others.join(', ') || 'none'} and gids ${target.allow.gids.join(', ') || 'none'} besides this process may read the metrics`)
    }
  }
  if (target.socketMode & 0o006) say('socketMode', `0o${target.socketMode.toString(8)}`, 'every local user may open the metrics socket (the peer check still decides)')
}

/** The peer check of the metrics socket (fail closed without the addon, unless `allow: false`); none on loopback TCP. */
function metricsGate(target: ResolvedMetricsOptions['listen'], log: Logger): ConnectionGate {
  if (target.kind !== 'socket') return admitAll
  // Fail closed, as serve() does: no peer check without the addon, unless allow: false says so by name.
  if (target.allow !== false) assertPeerCredentialsAvailable()
  return createPeerCheck(target.allow, log, false)
}

/**
 * The HTTP server of the metrics listener: it never listens (connections are handed to it), with
 * short header, idle and keep-alive timeouts and the service's connection guards.
 */
function scrapeServer(opts: ResolvedMetricsOptions, log: Logger, handler: http.RequestListener): http.Server {
  const httpServer = http.createServer(
    {
      headersTimeout: opts.headersTimeoutMs,
      requestTimeout: opts.headersTimeoutMs,
      keepAliveTimeout: opts.keepAliveTimeoutMs,
      connectionsCheckingInterval: opts.connectionsCheckingIntervalMs,
      maxHeaderSize: MAX_HEADER_BYTES,
      noDelay: true,
    },
    (req, res) => {
      if (admit(req, res)) handler(req, res)
    },
  )
  // headersTimeout only covers a connection once a request has begun (Node keeps a connection
  // that never sends a byte forever); the inactivity timeout cuts those, at the same limit.
  httpServer.timeout = opts.headersTimeoutMs
  // And the same bounds as the service's: blank lines after an answer keep nothing alive, nor
  // does pipelining more than a handful of scrapes.
  const admit = guardConnections(httpServer, opts, log)
  startTimeoutChecks(httpServer)
  return httpServer
}

/**
 * Open the metrics listener the way `serve()` opens its own: a plain `net.Server` (a socket
 * bound by `bindUnderLock`, or loopback TCP), every accepted connection counted against
 * `maxConnections` (closed at accept beyond it), on the socket checked against `allow` with
 * SO_PEERCRED before any HTTP, and only then handed to an HTTP server that never listens, with
 * short header, idle and keep-alive timeouts checked on a short cycle.
 *
 * @example
 * const listener = await openMetricsListener(resolveMetricsOptions({ listen: { socketPath } }), log, (req, res) => res.end())
 */
export async function openMetricsListener(opts: ResolvedMetricsOptions, log: Logger, handler: http.RequestListener): Promise<MetricsListener> {
  const target = opts.listen
  sayWeakenings(opts, log)
  const gate = metricsGate(target, log)
  const httpServer = scrapeServer(opts, log, handler)
  // The peer check runs first (one getsockopt): a refused peer, lingering for its 403, counts in
  // a quarter of the budget only, so refused peers flooding the socket never take a scraper's room.
  const tracker = createConnectionTracker({ maxConnections: opts.maxConnections, maxUnauthenticated: Math.max(1, Math.floor(opts.maxConnections / 4)) })
  const onConnection = (socket: Socket): void => {
    socket.on('error', discard)
    const passed = gate(socket)
    if (tracker.admit(socket, passed) !== undefined || !passed) return
    httpServer.emit('connection', socket)
  }
  let listener: Listener
  try {
    listener =
      target.kind === 'socket'
        ? await openSocketListener({ socketPath: target.socketPath, tls: false }, target, log, onConnection)
        : await openTcpListener({ host: target.host, port: target.port, tls: false }, onConnection)
  } catch (err) {
    httpServer.close()
    throw err
  }
  let closed: Promise<void> | undefined
  return {
    address: listener.health.address,
    close() {
      closed ??= (async () => {
        await listener.close()
        // A scrape is cheap to repeat: nothing to drain.
        tracker.destroyAll()
        httpServer.close()
        await tracker.drained()
      })()
      return closed
    },
  }
}
