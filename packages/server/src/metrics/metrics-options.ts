import net from 'node:net'
import type { Registry } from 'prom-client'
import { InvalidOptionError, parseInteger, parseString, rejectUnknown } from '@naaccord/ipc-shared'
import { resolveGroup } from '../socket/group.js'
import { checkIntervalFor, resolveAllow, resolveDirMode, resolveSocketMode, resolveSocketPath, type AllowPolicy, type ResolvedServerOptions } from '../options.js'

/** The metrics listener on loopback TCP: readable by every local user of the host (no peer check on TCP). */
export interface MetricsTcpListen {
  /** A loopback address: `127.0.0.1` (default), another `127.x.y.z`, `::1` or `localhost`. */
  host?: string
  /** The port; 0 picks a free one (see `IpcMetrics.address`). */
  port: number
}

/**
 * The metrics listener on a Unix socket, bound exactly like `serve()`'s socket: folder chain
 * checked, lock, stale socket removed, exact mode from the first moment, removed on close.
 */
export interface MetricsSocketListen {
  /** Socket path; at most 97 bytes on Linux, longer is `IPC_SOCKET_PATH_TOO_LONG`. */
  socketPath: string
  /** Mode of the socket. Default `0o600` (`0o660` with `socketGroup`); at most `0o666`. */
  socketMode?: number | string
  /** Group (name or gid) that owns the socket and a folder we create, e.g. a Prometheus agent's group. */
  socketGroup?: string | number
  /** Mode of the socket's folder when we create it. Default `0o700` (`0o750` with `socketGroup`); never group/other-writable. */
  dirMode?: number | string
  /**
   * Who may scrape, from the kernel's credentials (SO_PEERCRED), checked before any HTTP.
   * Default: this process's uid only (no environment variable widens it). `false` turns the
   * check off (logged). A Prometheus agent: `{ uids: [agentUid] }` or `{ gids: [agentGid] }`.
   */
  allow?: AllowPolicy | false
}

export interface MetricsOptions {
  /**
   * Where the metrics listener listens: a loopback address (`{ host: '127.0.0.1', port: 9464 }`,
   * readable by any local user) or, recommended, a Unix socket (`{ socketPath }`, mode 0600 and
   * peer-checked). Never the public side: other hosts are refused.
   */
  listen: MetricsTcpListen | MetricsSocketListen
  /** A prom-client registry to add to (e.g. the app's). Default: a new one. */
  register?: Registry
  /** Metric name prefix. Default `naaccord_ipc_`. */
  prefix?: string
  /**
   * Most method/route/status label sets of the request metrics. Requests that would add another
   * are counted under `{method="other",route="overflow",status="other"}`, and one warning is
   * logged. Default 500.
   */
  maxSeries?: number
  /** Most connections open at once on the metrics listener; more are closed at accept. Default 16. */
  maxConnections?: number
  /** Time to receive a scrape's request headers (408 and closed beyond); also the whole request's limit. Default 5000 ms. */
  headersTimeoutMs?: number
  /** How long an idle keep-alive scrape connection stays open. Default 5000 ms. */
  keepAliveTimeoutMs?: number
}

/** Every default of `serveMetrics()`; `resolveMetricsOptions` is the only reader. */
export const METRICS_DEFAULTS = Object.freeze({
  prefix: 'naaccord_ipc_',
  host: '127.0.0.1',
  path: '/metrics',
  socketMode: 0o600,
  socketModeWithGroup: 0o660,
  dirMode: 0o700,
  dirModeWithGroup: 0o750,
  maxSeries: 500,
  maxConnections: 16,
  headersTimeoutMs: 5000,
  keepAliveTimeoutMs: 5000,
})

export type ResolvedMetricsListen =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | {
      readonly kind: 'socket'
      readonly socketPath: string
      readonly socketMode: number
      readonly socketGid: number | undefined
      readonly dirMode: number
      readonly allow: ResolvedServerOptions['allow']
    }

export interface ResolvedMetricsOptions {
  readonly listen: ResolvedMetricsListen
  readonly register: Registry | undefined
  readonly prefix: string
  readonly maxSeries: number
  readonly maxConnections: number
  readonly headersTimeoutMs: number
  readonly keepAliveTimeoutMs: number
  /** Derived: how often Node checks the headers timeout (a quarter of it). */
  readonly connectionsCheckingIntervalMs: number
}

const KNOWN = ['listen', 'register', 'prefix', 'maxSeries', 'maxConnections', 'headersTimeoutMs', 'keepAliveTimeoutMs'] as const
const SOCKET_KNOWN = ['socketPath', 'socketMode', 'socketGroup', 'dirMode', 'allow'] as const
const TCP_KNOWN = ['host', 'port'] as const
/** Prometheus' data model: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*. */
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'))
}

function resolveListen(value: unknown): ResolvedMetricsListen {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidOptionError('metrics.listen', 'is required: { host: "127.0.0.1", port } or { socketPath }')
  }
  const listen = value as Record<string, unknown>
  if ('socketPath' in listen) {
    rejectUnknown('metrics.listen', listen, SOCKET_KNOWN)
    const socketPath = resolveSocketPath('metrics.listen.socketPath', listen.socketPath)
    const socketGid = listen.socketGroup === undefined ? undefined : resolveGroup('metrics.listen.socketGroup', parseGroup(listen.socketGroup))
    const withGroup = socketGid !== undefined
    return Object.freeze({
      kind: 'socket',
      socketPath,
      socketMode: resolveSocketMode('metrics.listen.socketMode', listen.socketMode ?? (withGroup ? METRICS_DEFAULTS.socketModeWithGroup : METRICS_DEFAULTS.socketMode)),
      socketGid,
      dirMode: resolveDirMode('metrics.listen.dirMode', listen.dirMode ?? (withGroup ? METRICS_DEFAULTS.dirModeWithGroup : METRICS_DEFAULTS.dirMode)),
      // No environment: NAACCORD_ALLOW_* configure the service socket, never who reads metrics.
      allow: resolveAllow(listen.allow, {}, 'metrics.listen.allow'),
    })
  }
  rejectUnknown('metrics.listen', listen, TCP_KNOWN)
  const host = parseString('metrics.listen.host', listen.host ?? METRICS_DEFAULTS.host)
  if (!isLoopback(host)) {
    throw new InvalidOptionError(
      'metrics.listen.host',
      `must be a loopback address (127.0.0.1, ::1, localhost), got "${host}": metrics never listen on the public side; scrape through a socket or an SSH/WireGuard tunnel`,
    )
  }
  return Object.freeze({ kind: 'tcp', host, port: parseInteger('metrics.listen.port', listen.port, 0, 65535) })
}

function parseGroup(value: unknown): string | number {
  if (typeof value === 'number' || (typeof value === 'string' && value.length > 0)) return value
  throw new InvalidOptionError('metrics.listen.socketGroup', `must be a group name or gid, got ${String(value)}`)
}

function resolveRegister(value: unknown): Registry | undefined {
  if (value === undefined) return undefined
  const r = value as Partial<Registry> | null
  if (!r || typeof r !== 'object' || typeof r.registerMetric !== 'function' || typeof r.metrics !== 'function') {
    throw new InvalidOptionError('metrics.register', 'must be a prom-client Registry (new Registry() or prom-client\'s register)')
  }
  return value as Registry
}

/**
 * Normalise the options of `serveMetrics()` once, from `METRICS_DEFAULTS`; no environment
 * variables. Unknown or malformed options throw `IPC_INVALID_OPTION` naming the option
 * (`metrics.listen.socketMode`); a socket path too long for sun_path throws
 * `IPC_SOCKET_PATH_TOO_LONG`.
 *
 * @example
 * const opts = resolveMetricsOptions({ listen: { socketPath: '/run/naaccord/metrics.sock', socketGroup: 'prometheus' } })
 * opts.listen // { kind: 'socket', socketMode: 0o660, dirMode: 0o750, allow: { uids: [own uid], gids: [] }, ... }
 */
export function resolveMetricsOptions(options: MetricsOptions): ResolvedMetricsOptions {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('metrics', 'must be an object with listen')
  rejectUnknown('metrics', options, KNOWN)
  const d = METRICS_DEFAULTS
  const prefix = parseString('metrics.prefix', options.prefix ?? d.prefix)
  if (!METRIC_NAME.test(prefix)) throw new InvalidOptionError('metrics.prefix', `must start a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), got ${JSON.stringify(prefix)}`)
  const headersTimeoutMs = parseInteger('metrics.headersTimeoutMs', options.headersTimeoutMs ?? d.headersTimeoutMs, 1, 600_000)
  return Object.freeze({
    listen: resolveListen(options.listen),
    register: resolveRegister(options.register),
    prefix,
    maxSeries: parseInteger('metrics.maxSeries', options.maxSeries ?? d.maxSeries, 1, 1_000_000),
    maxConnections: parseInteger('metrics.maxConnections', options.maxConnections ?? d.maxConnections, 1, 65_535),
    headersTimeoutMs,
    keepAliveTimeoutMs: parseInteger('metrics.keepAliveTimeoutMs', options.keepAliveTimeoutMs ?? d.keepAliveTimeoutMs, 0, 600_000),
    connectionsCheckingIntervalMs: checkIntervalFor(headersTimeoutMs),
  })
}
