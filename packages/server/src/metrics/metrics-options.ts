import net from 'node:net'
import type { Registry } from 'prom-client'
import {
  InvalidOptionError,
  integer,
  option,
  optional,
  parseString,
  resolveOptions,
  type OptionContext,
  type OptionsInput,
  type OptionsResolved,
} from '@naaccord/ipc-shared'
import { resolveGroup } from '../socket/group.js'
import { ALLOW_OPTIONS, checkIntervalFor, parseAllow, resolveDirMode, resolveSocketMode, resolveSocketPath, GROUP_MODES, groupMode, type ResolvedAllow } from '../option-checks.js'

/** The names of the metrics `serveMetrics` registers, without their prefix. */
export const METRIC_NAMES = Object.freeze([
  'http_requests_total',
  'http_request_duration_seconds',
  'refused_connections_total',
  'tls_handshake_failures_total',
  'open_connections',
  'certificate_days_to_expiry',
])

function parseGroup(name: string, value: unknown): number {
  if (typeof value === 'number' || (typeof value === 'string' && value.length > 0)) return resolveGroup(name, value)
  throw new InvalidOptionError(name, `must be a group name or gid, got ${String(value)}`)
}

/**
 * The metrics listener on a Unix socket, bound exactly like `serve()`'s socket: folder chain
 * checked, lock, stale socket removed, exact mode from the first moment, removed on close.
 * No environment variable is read: NAACCORD_ALLOW_* and NAACCORD_SOCKET_* configure the service
 * socket, never who reads metrics.
 */
const SOCKET_LISTEN_OPTIONS = {
  /** Socket path; at most 97 bytes on Linux, longer is `IPC_SOCKET_PATH_TOO_LONG` (never cut short). */
  socketPath: option<string>()({ required: true, parse: resolveSocketPath }),
  /** Group (name or gid) owning the socket and a folder we create: a Prometheus agent's group. */
  socketGroup: option<string | number>()({ parse: optional(parseGroup), docs: { default: 'none' } }),
  /** Mode of the socket from its first moment; only read/write bits (≤ `0o666`). */
  socketMode: groupMode(GROUP_MODES.socket, resolveSocketMode),
  /** Mode of the folder when we create it; never group/other-writable. */
  dirMode: groupMode(GROUP_MODES.dir, resolveDirMode),
  /**
   * Who may scrape over the socket, from the kernel's credentials (SO_PEERCRED), before any HTTP:
   * others get a fixed 403. `{ uids }` / `{ gids }`, taken whole; `false` turns the check off
   * (warning at start).
   */
  allow: option<OptionsInput<typeof ALLOW_OPTIONS> | false>()({ parse: parseAllow, parseAbsent: true, docs: { default: '`{ uids: [own uid] }`' } }),
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'))
}

function parseLoopback(name: string, value: unknown): string {
  const host = parseString(name, value)
  if (!isLoopback(host)) {
    throw new InvalidOptionError(
      name,
      `must be a loopback address (127.0.0.1, ::1, localhost), got "${host}": metrics never listen on the public side; scrape through a socket or an SSH/WireGuard tunnel`,
    )
  }
  return host
}

/** The metrics listener on loopback TCP: readable by every local user of the host (no peer check on TCP). */
const TCP_LISTEN_OPTIONS = {
  /** A loopback address (`127.x.y.z`, `::1`, `localhost`); anything else is refused. */
  host: option<string>()({ default: '127.0.0.1', parse: parseLoopback }),
  /** TCP port; `0` picks a free one (`metrics.address`). */
  port: option<number>()({ required: true, parse: integer(0, 65535) }),
}

export type MetricsSocketListen = OptionsInput<typeof SOCKET_LISTEN_OPTIONS>
export type MetricsTcpListen = OptionsInput<typeof TCP_LISTEN_OPTIONS>

export type ResolvedMetricsListen =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | {
      readonly kind: 'socket'
      readonly socketPath: string
      readonly socketMode: number
      readonly socketGid: number | undefined
      readonly dirMode: number
      readonly allow: ResolvedAllow
    }

function parseListen(name: string, value: unknown): ResolvedMetricsListen {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidOptionError(name, 'is required: { host: "127.0.0.1", port } or { socketPath }')
  }
  if ('socketPath' in value) {
    const { socketGroup, ...v } = resolveOptions(SOCKET_LISTEN_OPTIONS, value, { scope: name, env: {} }).values
    return Object.freeze({ kind: 'socket', ...v, socketGid: socketGroup })
  }
  return Object.freeze({ kind: 'tcp', ...resolveOptions(TCP_LISTEN_OPTIONS, value, { scope: name, env: {} }).values })
}

/** A prom-client Registry that does not hold our metrics yet (a second serveMetrics on it would collide). */
function parseRegister(name: string, value: unknown, { resolved }: OptionContext): Registry {
  const r = value as Partial<Registry> | null
  if (!r || typeof r !== 'object' || typeof r.registerMetric !== 'function' || typeof r.metrics !== 'function' || typeof r.getSingleMetric !== 'function') {
    throw new InvalidOptionError(name, 'must be a prom-client Registry (new Registry() or prom-client\'s register)')
  }
  const taken = METRIC_NAMES.map((n) => `${resolved.prefix as string}${n}`).find((n) => r.getSingleMetric!(n) !== undefined)
  if (taken !== undefined) {
    throw new InvalidOptionError(name, `already holds a metric named ${taken} (a second serveMetrics on this registry?); pass another prefix or a new Registry`)
  }
  return value as Registry
}

/** Prometheus' data model: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*. */
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/

function parsePrefix(name: string, value: unknown): string {
  const prefix = parseString(name, value)
  if (!METRIC_NAME.test(prefix)) throw new InvalidOptionError(name, `must start a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), got ${JSON.stringify(prefix)}`)
  return prefix
}

/**
 * Every option of `serveMetrics()`, declared once: its JSDoc is the meaning (editor help and
 * the docs' row), `default` its default, `parse` its check. No environment variables.
 */
export const METRICS_OPTIONS = {
  /** `{ socketPath, ... }` (recommended) or `{ host, port }`. */
  listen: option<MetricsTcpListen | MetricsSocketListen>()({
    required: true,
    parse: parseListen,
    tables: [SOCKET_LISTEN_OPTIONS, TCP_LISTEN_OPTIONS],
    docs: { default: 'required', expand: true },
  }),
  /** Metric name prefix (a valid Prometheus name start). */
  prefix: option<string>()({ default: 'naaccord_ipc_', parse: parsePrefix }),
  /** A prom-client registry to add to (e.g. the app's). One that already holds our metric names is refused. */
  register: option<Registry>()({ parse: optional(parseRegister), docs: { default: 'a new `Registry`' } }),
  /** Most `method`/`route`/`status` label sets; further requests are counted under `route="overflow"`. */
  maxSeries: option<number>()({ default: 500, parse: integer(1, 1_000_000) }),
  /** Most connections open at once on the metrics listener; more are closed as soon as accepted, before the peer check or HTTP. */
  maxConnections: option<number>()({ default: 16, parse: integer(1, 65_535) }),
  /** Time to send the request (408 and closed beyond); also how long a connection that sends nothing stays open. */
  headersTimeoutMs: option<number>()({ default: 5000, parse: integer(1, 600_000) }),
  /** Idle keep-alive lifetime between scrapes. */
  keepAliveTimeoutMs: option<number>()({ default: 5000, parse: integer(0, 600_000) }),
}

export type MetricsOptions = OptionsInput<typeof METRICS_OPTIONS>

/** Every default of `serveMetrics()`, from `METRICS_OPTIONS` (the listener's at the top level). */
export const METRICS_DEFAULTS = Object.freeze({
  prefix: METRICS_OPTIONS.prefix.default as string,
  host: TCP_LISTEN_OPTIONS.host.default as string,
  /** The path scrapes are answered on (not an option). */
  path: '/metrics',
  socketMode: SOCKET_LISTEN_OPTIONS.socketMode.default as number,
  socketModeWithGroup: GROUP_MODES.socket.withGroup,
  dirMode: SOCKET_LISTEN_OPTIONS.dirMode.default as number,
  dirModeWithGroup: GROUP_MODES.dir.withGroup,
  maxSeries: METRICS_OPTIONS.maxSeries.default as number,
  maxConnections: METRICS_OPTIONS.maxConnections.default as number,
  headersTimeoutMs: METRICS_OPTIONS.headersTimeoutMs.default as number,
  keepAliveTimeoutMs: METRICS_OPTIONS.keepAliveTimeoutMs.default as number,
})

export interface ResolvedMetricsOptions extends OptionsResolved<typeof METRICS_OPTIONS> {
  /** Derived: how often Node checks the headers timeout (a quarter of it). */
  readonly connectionsCheckingIntervalMs: number
}

/**
 * Normalise the options of `serveMetrics()` once, from `METRICS_OPTIONS`; no environment
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
  const { values } = resolveOptions(METRICS_OPTIONS, options, { scope: 'metrics', env: {} })
  return Object.freeze({ ...values, connectionsCheckingIntervalMs: checkIntervalFor(values.headersTimeoutMs) })
}
