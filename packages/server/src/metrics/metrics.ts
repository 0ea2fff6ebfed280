import diagnostics_channel from 'node:diagnostics_channel'
import type http from 'node:http'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Logger } from '@naaccord/ipc-shared'
import { openMetricsListener, type MetricsListener } from './metrics-listener.js'
import { METRICS_DEFAULTS, METRIC_NAMES, resolveMetricsOptions, type MetricsOptions, type ResolvedMetricsOptions } from './metrics-options.js'
import { routeLabel } from './route-label.js'
import { createSeriesCap } from './series-cap.js'
import { REFUSED_CHANNEL, type RefusedConnection } from '../server-events.js'
import type { IpcServer } from '../serve.js'

export interface IpcMetrics {
  readonly register: Registry
  /** `host:port` or the socket path of the metrics listener. */
  readonly address: string
  /** Stop the listener (the socket file is removed if still ours) and the subscriptions; the registry keeps its metrics. */
  close(): Promise<void>
}

/** How long one rendering of the registry answers every scrape (Prometheus scrapes every 15 s or so). */
const RENDER_REUSE_MS = 1000

type PromClient = typeof import('prom-client')
type Labels = 'method' | 'route' | 'status'

/** The instruments of one serveMetrics(). */
interface Instruments {
  readonly requests: Counter<Labels>
  readonly duration: Histogram<Labels>
  readonly refused: Counter<'reason'>
  readonly tlsFailures: Counter<'reason'>
  readonly open: Gauge<'transport'>
}

/** Register every metric of the server on `register`, under `prefix`. */
function createInstruments(prom: PromClient, register: Registry, prefix: string, ipc: IpcServer): Instruments {
  const registers = [register]
  const labelNames = ['method', 'route', 'status'] as const
  const requests = new prom.Counter({ name: `${prefix}http_requests_total`, help: 'Requests answered, by method, route template and status.', labelNames, registers })
  const duration = new prom.Histogram({
    name: `${prefix}http_request_duration_seconds`,
    help: 'Time from request to response end, seconds.',
    labelNames,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  })
  const refused = new prom.Counter({ name: `${prefix}refused_connections_total`, help: 'Connections refused before any HTTP (the metrics socket included), by reason.', labelNames: ['reason'] as const, registers })
  const tlsFailures = new prom.Counter({ name: `${prefix}tls_handshake_failures_total`, help: 'Failed TLS handshakes, by reason.', labelNames: ['reason'] as const, registers })
  const open = new prom.Gauge({ name: `${prefix}open_connections`, help: 'Open connections, by transport.', labelNames: ['transport'] as const, registers })
  new prom.Gauge({
    name: `${prefix}certificate_days_to_expiry`,
    help: 'Days until the server certificate in use expires.',
    registers,
    collect() {
      const cert = ipc.certificate
      if (cert) this.set((Date.parse(cert.validTo) - Date.now()) / 86_400_000)
    },
  })
  for (const transport of ['unix', 'tcp']) open.set({ transport }, 0)
  return { requests, duration, refused, tlsFailures, open }
}

/** Listen on `emitter` until the returned detach functions run. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- Node event listeners take any arguments
function listen(detach: Array<() => void>, emitter: NodeJS.EventEmitter, event: string, fn: (...args: any[]) => void): void {
  emitter.on(event, fn)
  detach.push(() => emitter.off(event, fn))
}

/**
 * Feed the instruments: raw connections on each listening server; requests on the one HTTP
 * server (labels capped at `maxSeries`); handshake failures on each listener's TLS stage;
 * refusals from the process-wide channel. Returns the functions that detach it all.
 */
function observe(ipc: IpcServer, m: Instruments, opts: ResolvedMetricsOptions, log: Logger): Array<() => void> {
  const detach: Array<() => void> = []
  const healthPath = ipc.options.health === false ? undefined : ipc.options.health.path
  ipc.netServers.forEach((server, i) => {
    const transport = ipc.listeners[i]?.transport ?? 'unix'
    listen(detach, server, 'connection', (socket: Socket) => {
      m.open.inc({ transport })
      socket.once('close', () => m.open.dec({ transport }))
    })
  })
  const cap = createSeriesCap(opts.maxSeries, () =>
    log.warn(
      { maxSeries: opts.maxSeries },
      `metrics: more than maxSeries (${opts.maxSeries}) method/route/status label sets; further ones are counted under route="overflow". Raise maxSeries if the app has that many routes`,
    ),
  )
  listen(detach, ipc.server, 'request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const start = process.hrtime.bigint()
    res.once('close', () => {
      const l = cap.admit({ method: req.method ?? 'OTHER', route: routeLabel(req, healthPath), status: String(res.statusCode) })
      m.requests.inc(l)
      m.duration.observe(l, Number(process.hrtime.bigint() - start) / 1e9)
    })
  })
  for (const tlsServer of ipc.tlsServers) {
    listen(detach, tlsServer, 'tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      m.tlsFailures.inc({ reason: socket.authorizationError ? String(socket.authorizationError) : (err.code ?? 'unknown') })
    })
  }
  const onRefused = (msg: unknown) => m.refused.inc({ reason: (msg as RefusedConnection).reason })
  diagnostics_channel.subscribe(REFUSED_CHANNEL, onRefused)
  detach.push(() => diagnostics_channel.unsubscribe(REFUSED_CHANNEL, onRefused))
  return detach
}

/**
 * One render at a time, and its text reused for RENDER_REUSE_MS: a scraper (or any local user on
 * loopback TCP) pipelining thousands of requests costs one render, not one each. A failed render
 * is not reused.
 */
function cachedRender(register: Registry): () => Promise<string> {
  let rendering: Promise<string> | undefined
  let renderedAt = 0
  return () => {
    if (rendering && Date.now() - renderedAt < RENDER_REUSE_MS) return rendering
    renderedAt = Date.now()
    const current = register.metrics()
    rendering = current
    current.catch(() => {
      if (rendering === current) rendering = undefined
    })
    return current
  }
}

/** GET /metrics answers the rendered registry; anything else 404. */
function scrapeHandler(register: Registry): http.RequestListener {
  const render = cachedRender(register)
  return (req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== METRICS_DEFAULTS.path) {
      res.writeHead(404).end()
      return
    }
    render().then(
      (text) => res.writeHead(200, { 'content-type': register.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(err.message),
    )
  }
}

/**
 * Prometheus metrics of a running server on a listener of their own (loopback or a socket, never
 * the public side), with prom-client (loaded only when this is called):
 *
 * - `naaccord_ipc_http_requests_total{method,route,status}` and
 *   `naaccord_ipc_http_request_duration_seconds{method,route,status}` (route = the route
 *   template with its mount templates, `/healthz`, `unknown_mount` or `unmatched`: never a byte
 *   of the URL; at most `maxSeries` label sets, then `route="overflow"`);
 * - `naaccord_ipc_refused_connections_total{reason}`: `allow_policy`, `credentials_unreadable`,
 *   `client_certificate`, `max_connections`, `max_unauthenticated` (counted process-wide);
 * - `naaccord_ipc_tls_handshake_failures_total{reason}`: the OpenSSL/Node code;
 * - `naaccord_ipc_open_connections{transport}`;
 * - `naaccord_ipc_certificate_days_to_expiry` (the server certificate in use, after rotations).
 *
 * On a socket (recommended) the listener is bound like `serve()`'s and peer-checked (`allow`,
 * default our own uid); on loopback TCP every local user can read it. Either way at most
 * `maxConnections` connections, with short header and keep-alive timeouts.
 *
 * @example
 * const ipc = await serve(app, { socketPath })
 * const metrics = await serveMetrics(ipc, { listen: { socketPath: '/run/naaccord/metrics.sock' } })
 * // curl --unix-socket /run/naaccord/metrics.sock http://localhost/metrics
 */
export async function serveMetrics(ipc: IpcServer, options: MetricsOptions): Promise<IpcMetrics> {
  const opts = resolveMetricsOptions(options)
  const prom = await import('prom-client')
  const register = opts.register ?? new prom.Registry()
  // A registry given by the caller was checked free of our names by resolveMetricsOptions.
  const detach = observe(ipc, createInstruments(prom, register, opts.prefix, ipc), opts, ipc.logger)
  let listener: MetricsListener
  try {
    listener = await openMetricsListener(opts, ipc.logger, scrapeHandler(register))
  } catch (err) {
    // Nothing half-made stays behind: a second try with the same registry must not find our metrics.
    for (const d of detach.splice(0)) d()
    for (const name of METRIC_NAMES) register.removeSingleMetric(`${opts.prefix}${name}`)
    throw err
  }
  return {
    register,
    address: listener.address,
    close: async () => {
      for (const d of detach.splice(0)) d()
      await listener.close()
    },
  }
}
