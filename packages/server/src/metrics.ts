import diagnostics_channel from 'node:diagnostics_channel'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import net from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { Registry } from 'prom-client'
import { InvalidOptionError, parseInteger, parseString, rejectUnknown } from '@naaccord/ipc-shared'
import { REFUSED_CHANNEL, type RefusedConnection } from './server-events.js'
import type { IpcServer } from './serve.js'

export interface MetricsOptions {
  /**
   * Where the metrics listener listens: a loopback address (`{ host: '127.0.0.1', port: 9464 }`)
   * or a Unix socket (`{ socketPath }`). Never the public side: other hosts are refused.
   */
  listen: { host?: string; port: number } | { socketPath: string }
  /** A prom-client registry to add to (e.g. the app's). Default: a new one. */
  register?: Registry
  /** Metric name prefix. Default `naaccord_ipc_`. */
  prefix?: string
}

export interface IpcMetrics {
  readonly register: Registry
  /** `host:port` or the socket path of the metrics listener. */
  readonly address: string
  /** Stop the listener and the subscriptions (the registry keeps its metrics). */
  close(): Promise<void>
}

export const METRICS_DEFAULTS = Object.freeze({ prefix: 'naaccord_ipc_', host: '127.0.0.1', path: '/metrics' })

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'))
}

/** Route label of a request: Express's matched route template, else a fixed word (bounded cardinality). */
function routeOf(req: http.IncomingMessage): string {
  const r = req as http.IncomingMessage & { route?: { path?: unknown }; baseUrl?: string }
  if (typeof r.route?.path === 'string') return `${r.baseUrl ?? ''}${r.route.path}`
  return req.url === '/healthz' ? '/healthz' : 'unmatched'
}

/**
 * Prometheus metrics of a running server on a listener of their own (loopback or a socket, never
 * the public side), with prom-client (loaded only when this is called):
 *
 * - `naaccord_ipc_http_requests_total{method,route,status}` and
 *   `naaccord_ipc_http_request_duration_seconds{method,route,status}` (route = Express route
 *   template, `/healthz`, or `unmatched`);
 * - `naaccord_ipc_refused_connections_total{reason}`: `allow_policy`, `credentials_unreadable`,
 *   `client_certificate`, `max_connections`, `max_unauthenticated` (counted process-wide);
 * - `naaccord_ipc_tls_handshake_failures_total{reason}`: the OpenSSL/Node code;
 * - `naaccord_ipc_open_connections{transport}`;
 * - `naaccord_ipc_certificate_days_to_expiry` (the server certificate in use, after rotations).
 *
 * @example
 * const ipc = await serve(app, { socketPath })
 * const metrics = await serveMetrics(ipc, { listen: { host: '127.0.0.1', port: 9464 } })
 * // curl http://127.0.0.1:9464/metrics
 */
export async function serveMetrics(ipc: IpcServer, options: MetricsOptions): Promise<IpcMetrics> {
  rejectUnknown('metrics', options, ['listen', 'register', 'prefix'])
  const listen = options?.listen as { host?: unknown; port?: unknown; socketPath?: unknown } | undefined
  if (!listen || typeof listen !== 'object') throw new InvalidOptionError('metrics.listen', 'is required: { host: "127.0.0.1", port } or { socketPath }')
  let target: { host: string; port: number } | { path: string }
  if ('socketPath' in listen) {
    rejectUnknown('metrics.listen', listen, ['socketPath'])
    target = { path: parseString('metrics.listen.socketPath', listen.socketPath) }
  } else {
    rejectUnknown('metrics.listen', listen, ['host', 'port'])
    const host = parseString('metrics.listen.host', listen.host ?? METRICS_DEFAULTS.host)
    if (!isLoopback(host)) throw new InvalidOptionError('metrics.listen.host', `must be a loopback address (127.0.0.1, ::1, localhost), got "${host}": metrics never listen on the public side; scrape through a socket or an SSH/WireGuard tunnel`)
    target = { host, port: parseInteger('metrics.listen.port', listen.port, 0, 65535) }
  }
  const prefix = parseString('metrics.prefix', options.prefix ?? METRICS_DEFAULTS.prefix)

  const prom = await import('prom-client')
  const register = options.register ?? new prom.Registry()
  const labels = ['method', 'route', 'status'] as const
  const requests = new prom.Counter({ name: `${prefix}http_requests_total`, help: 'Requests answered, by method, route template and status.', labelNames: labels, registers: [register] })
  const duration = new prom.Histogram({
    name: `${prefix}http_request_duration_seconds`,
    help: 'Time from request to response end, seconds.',
    labelNames: labels,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [register],
  })
  const refused = new prom.Counter({ name: `${prefix}refused_connections_total`, help: 'Connections refused before the app, by reason.', labelNames: ['reason'], registers: [register] })
  const tlsFailures = new prom.Counter({ name: `${prefix}tls_handshake_failures_total`, help: 'Failed TLS handshakes, by reason.', labelNames: ['reason'], registers: [register] })
  const open = new prom.Gauge({ name: `${prefix}open_connections`, help: 'Open connections, by transport.', labelNames: ['transport'], registers: [register] })
  new prom.Gauge({
    name: `${prefix}certificate_days_to_expiry`,
    help: 'Days until the server certificate in use expires.',
    registers: [register],
    collect() {
      const cert = ipc.certificate
      if (cert) this.set((Date.parse(cert.validTo) - Date.now()) / 86_400_000)
    },
  })
  for (const transport of ['unix', 'tcp']) open.set({ transport }, 0)

  const detach: Array<() => void> = []
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Node event listeners take any arguments
  const on = (emitter: NodeJS.EventEmitter, event: string, fn: (...args: any[]) => void) => {
    emitter.on(event, fn)
    detach.push(() => emitter.off(event, fn))
  }
  // Raw connections on each listening server; requests on the one HTTP server; handshake
  // failures on each listener's TLS stage.
  ipc.netServers.forEach((server, i) => {
    const transport = ipc.listeners[i]?.transport ?? 'unix'
    on(server, 'connection', (socket: Socket) => {
      open.inc({ transport })
      socket.once('close', () => open.dec({ transport }))
    })
  })
  on(ipc.server, 'request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const start = process.hrtime.bigint()
    res.once('close', () => {
      const l = { method: req.method ?? 'OTHER', route: routeOf(req), status: String(res.statusCode) }
      requests.inc(l)
      duration.observe(l, Number(process.hrtime.bigint() - start) / 1e9)
    })
  })
  for (const tlsServer of ipc.tlsServers) {
    on(tlsServer, 'tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      tlsFailures.inc({ reason: socket.authorizationError ? String(socket.authorizationError) : (err.code ?? 'unknown') })
    })
  }
  const onRefused = (m: unknown) => refused.inc({ reason: (m as RefusedConnection).reason })
  diagnostics_channel.subscribe(REFUSED_CHANNEL, onRefused)
  detach.push(() => diagnostics_channel.unsubscribe(REFUSED_CHANNEL, onRefused))

  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== METRICS_DEFAULTS.path) {
      res.writeHead(404).end()
      return
    }
    register.metrics().then(
      (text) => res.writeHead(200, { 'content-type': register.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(err.message),
    )
  })
  server.headersTimeout = 5_000
  server.requestTimeout = 10_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(target, () => resolve())
  })
  const addr = server.address()
  const address = typeof addr === 'string' ? addr : `${(addr as AddressInfo).address}:${(addr as AddressInfo).port}`
  return {
    register,
    address,
    close: async () => {
      for (const d of detach.splice(0)) d()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
