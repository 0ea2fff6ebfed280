import os from 'node:os'
import path from 'node:path'
import {
  DEFAULT_SOCKET_PATH,
  ENV,
  InvalidOptionError,
  SERVER_SOCKET_PATH_MAX,
  assertSocketPathFits,
  parseBoolean,
  parseIdList,
  parseInteger,
  parseMode,
  parseString,
  pick,
  pickWithSource,
  rejectUnknown,
  type Env,
  type Logger,
  type SettingSource,
} from '@naaccord/ipc-shared'
import { resolveLogger } from '@naaccord/ipc-shared/logger'
import { resolveGroup } from './socket/group.js'
import { resolveTrustedProxyWithSources, type ResolvedTrustedProxy, type TrustedProxyOptions } from './http/trusted-proxy.js'
import { resolveServerTls, type ResolvedServerTls, type ServerTlsOptions } from './gate/tls-options.js'

/** Which peers may connect, checked from the kernel's credentials once per connection. */
export interface AllowPolicy {
  /** User ids allowed to connect. Default: only the server's own uid. */
  uids?: readonly number[]
  /** Group ids allowed to connect (the peer's primary gid, as the kernel reports it). */
  gids?: readonly number[]
}

/** A place to listen: the Unix socket, or (with TLS) a TCP address. */
export type ListenTarget = { socketPath: string } | { host: string; port: number }

export interface ServerLimits {
  /** Time to receive the complete request headers (`server.headersTimeout`). Default 10 000 ms. */
  headersTimeoutMs?: number
  /** Time to receive the whole request (`server.requestTimeout`). Default 30 000 ms. */
  requestTimeoutMs?: number
  /**
   * How long an idle keep-alive connection stays open. Default 10 000 ms: longer than the
   * client's idle timeout (4 000 ms), so the client always closes first and never writes into a
   * connection the server is closing.
   */
  keepAliveTimeoutMs?: number
  /** Largest request header block, bytes (`maxHeaderSize`). Default 16 384. */
  maxHeaderBytes?: number
  /**
   * Largest request body, bytes, counted as it arrives (Content-Length or chunked). A larger
   * declared length gets 413 before the app; a chunked body gets 413 once the limit is passed,
   * and the app is handed nothing beyond it. Default 1 MiB.
   */
  maxBodyBytes?: number
}

/** The built-in health report. */
export interface HealthOptions {
  /** Path answered with the report (GET only). Default "/healthz". */
  path?: string
}

export interface ServerOptions {
  /** Unix socket path. Env NAACCORD_SOCKET_PATH. Default `/var/run/naaccord/service.sock`. */
  socketPath?: string
  /** Mode of the socket file, set before it becomes reachable. Env NAACCORD_SOCKET_MODE. Default 0o600 (0o660 with socketGroup). */
  socketMode?: number | string
  /** Group (name or gid) that owns the socket, for shared-group access. Env NAACCORD_SOCKET_GROUP. */
  socketGroup?: string | number
  /** Mode of the socket's folder when we create it. Env NAACCORD_SOCKET_DIR_MODE. Default 0o700 (0o750 with socketGroup). */
  dirMode?: number | string
  /** Peer policy. Env NAACCORD_ALLOW_UIDS / NAACCORD_ALLOW_GIDS (comma-separated). `false` turns the check off. Wider than our own uid, or false, is warned of at every start (security-report.ts). */
  allow?: AllowPolicy | false
  /**
   * Where to listen. Default: the Unix socket at `socketPath` only. Add `{ host, port }` for TCP;
   * TCP requires `tls` unless `allowPlaintextTcp: true`.
   */
  listen?: readonly ListenTarget[]
  /** Mutual TLS on every listener. */
  tls?: ServerTlsOptions
  /** Opt out, by name, of the rule that TCP listeners need TLS. Default false. */
  allowPlaintextTcp?: boolean
  /** Accept plaintext HTTP over the socket by name: the start-up security report lists it without warning of it. Default false. */
  acknowledgePlaintextSocket?: boolean
  /**
   * Close gracefully on SIGTERM/SIGINT: one process-wide handler closes every server that asked
   * for it, then removes itself and raises the signal again, so the process ends by the signal
   * only when the application has no handler of its own. Never calls process.exit. Default true:
   * systemd and `naaccord-ipc run` stop a service with SIGTERM, which without a handler ends Node
   * at once, mid-request. (Fastify core installs no handler; its users add close-with-grace.)
   * `false`: the application owns its signals and calls `ipc.close()`. A process-wide effect:
   * see PROCESS_EFFECTS.
   */
  handleSignals?: boolean
  /**
   * Remove LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from process.env once read, as
   * sd_listen_fds(3) with unset_environment=1 does. Default true. `false`: they stay for the
   * application to read. A process-wide effect: see PROCESS_EFFECTS.
   */
  clearActivationEnv?: boolean
  /**
   * Under `naaccord-ipc run`: once every listener accepts, send the supervisor its ready message,
   * then close the IPC channel and remove NAACCORD_SUPERVISOR_READY from process.env. Default
   * true (a reload waits for it). `false`: the application calls `notifySupervisorReady()`
   * itself once ready. A process-wide effect: see PROCESS_EFFECTS.
   */
  notifySupervisorReady?: boolean
  /**
   * Most connections open at once on each listener (the socket and each TCP address have their
   * own), whatever their state: unauthenticated, active or idle. More are closed as soon as they
   * are accepted, before TLS or HTTP. Env NAACCORD_MAX_CONNECTIONS. Default 512.
   */
  maxConnections?: number | string
  /**
   * Of each listener's `maxConnections`, most that may be unauthenticated at once: accepted but
   * not yet past the peer check, or (with TLS) the handshake and the client-certificate policy;
   * a refused peer waiting for its 403 counts too. More are closed as soon as they are accepted.
   * The rest of `maxConnections` stays for connections that passed, however many others flood
   * the listener. At most `maxConnections`. Env NAACCORD_MAX_UNAUTHENTICATED. Default: a quarter
   * of `maxConnections` (128).
   */
  maxUnauthenticated?: number | string
  /**
   * On close, also close at once the authenticated connections that carry no request (idle
   * keep-alive, or connected without a first request), as Node's own `server.close()` does.
   * Default false: they are left for the client to close (HTTP/1.1 gives a server no way to say
   * "closing" to an idle connection, so closing one races the client's next request, which then
   * fails; a POST is not retried); they still end by `limits.keepAliveTimeoutMs` or
   * `shutdownTimeoutMs`. Connections not yet authenticated are always cut at once.
   * Env NAACCORD_CLOSE_IDLE_ON_SHUTDOWN.
   */
  closeIdleOnShutdown?: boolean | string
  /**
   * The built-in health report, answered before the app to peers that pass the same policy as
   * the app: every connection admitted on a Unix socket, and TLS connections with a verified
   * client certificate; never to a TCP peer without one (those requests go to the app). `false`:
   * no health route, every path is the app's. Default `{ path: '/healthz' }`.
   */
  health?: HealthOptions | false
  /** Longest wait for in-flight requests on close before connections are cut. Env NAACCORD_SHUTDOWN_TIMEOUT_MS. Default 10 000. */
  shutdownTimeoutMs?: number | string
  /** A pino logger, or false for none. Default: JSON to stdout, level from NAACCORD_LOG_LEVEL. */
  logger?: Logger | false
  /** One log line per request. Default true. */
  requestLog?: boolean
  /** HTTP hardening limits. */
  limits?: ServerLimits
  /** Believe a reverse proxy's client-identity header from these uids on the socket (see trusted-proxy.ts). Default off. */
  trustedProxy?: TrustedProxyOptions
}

/** Every default in one place; `resolveServerOptions` is the only reader. */
export const SERVER_DEFAULTS = Object.freeze({
  socketPath: DEFAULT_SOCKET_PATH,
  socketMode: 0o600,
  socketModeWithGroup: 0o660,
  dirMode: 0o700,
  dirModeWithGroup: 0o750,
  handleSignals: true,
  clearActivationEnv: true,
  notifySupervisorReady: true,
  maxConnections: 512,
  /** maxUnauthenticated, when not given: this share of maxConnections (at least 1). */
  maxUnauthenticatedShare: 0.25,
  closeIdleOnShutdown: false,
  healthPath: '/healthz',
  shutdownTimeoutMs: 10_000,
  requestLog: true,
  allowPlaintextTcp: false,
  acknowledgePlaintextSocket: false,
  limits: Object.freeze({
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
    keepAliveTimeoutMs: 10_000,
    maxHeaderBytes: 16 * 1024,
    maxBodyBytes: 1024 * 1024,
  }),
})

const KNOWN = [
  'socketPath',
  'socketMode',
  'socketGroup',
  'dirMode',
  'allow',
  'listen',
  'tls',
  'allowPlaintextTcp',
  'acknowledgePlaintextSocket',
  'handleSignals',
  'clearActivationEnv',
  'notifySupervisorReady',
  'maxConnections',
  'maxUnauthenticated',
  'closeIdleOnShutdown',
  'health',
  'shutdownTimeoutMs',
  'logger',
  'requestLog',
  'limits',
  'trustedProxy',
] as const

export type ResolvedListenTarget =
  | { kind: 'socket'; socketPath: string }
  | { kind: 'tcp'; host: string; port: number }

export interface ResolvedServerOptions {
  readonly socketPath: string
  readonly socketMode: number
  readonly socketGid: number | undefined
  readonly dirMode: number
  readonly allow: { readonly uids: readonly number[]; readonly gids: readonly number[] } | false
  readonly listen: readonly ResolvedListenTarget[]
  readonly tls: ResolvedServerTls | undefined
  readonly allowPlaintextTcp: boolean
  readonly acknowledgePlaintextSocket: boolean
  readonly handleSignals: boolean
  readonly clearActivationEnv: boolean
  readonly notifySupervisorReady: boolean
  readonly maxConnections: number
  readonly maxUnauthenticated: number
  readonly closeIdleOnShutdown: boolean
  readonly health: { readonly path: string } | false
  readonly shutdownTimeoutMs: number
  readonly logger: Logger
  readonly requestLog: boolean
  readonly limits: ResolvedLimits
  readonly trustedProxy: ResolvedTrustedProxy | undefined
  /** Where each security setting came from: the option, an environment variable (by name), or the default. */
  readonly sources: ServerSettingSources
}

/** The settings whose source the start-up security report names (see security-report.ts). */
export interface ServerSettingSources {
  readonly socketPath: SettingSource
  readonly socketMode: SettingSource
  readonly socketGroup: SettingSource
  readonly dirMode: SettingSource
  /** "option" for an explicit `allow` (a policy, or false). */
  readonly allow: SettingSource
  readonly 'allow.uids': SettingSource
  readonly 'allow.gids': SettingSource
  readonly listen: SettingSource
  readonly tls: SettingSource
  readonly 'tls.clientAuth': SettingSource
  readonly 'tls.minVersion': SettingSource
  readonly 'tls.allowClients': SettingSource
  readonly allowPlaintextTcp: SettingSource
  readonly acknowledgePlaintextSocket: SettingSource
  readonly 'trustedProxy.uids': SettingSource
  readonly 'trustedProxy.identityHeader': SettingSource
}

const fromOption = (value: unknown): SettingSource => (value === undefined ? 'default' : 'option')

export interface ResolvedLimits extends Readonly<Required<ServerLimits>> {
  /**
   * How often Node checks headersTimeout/requestTimeout (derived, not an option): a quarter of
   * the shorter one, between 50 ms and 30 s, so a timeout fires within 25% of its value instead
   * of on Node's 30 s cycle.
   */
  readonly connectionsCheckingIntervalMs: number
  /** A TLS handshake not finished by then is cut (derived: headersTimeoutMs). */
  readonly handshakeTimeoutMs: number
}

/** Validate a socket path: absolute after resolution, no NUL, fits in sun_path. */
export function resolveSocketPath(name: string, value: unknown): string {
  const raw = parseString(name, value)
  if (raw.includes('\0')) throw new InvalidOptionError(name, 'must not contain a NUL byte (abstract sockets are not supported)')
  const resolved = path.resolve(raw)
  assertSocketPathFits(resolved, SERVER_SOCKET_PATH_MAX)
  return resolved
}

/**
 * Validate an allow policy: `{ uids, gids }` or `false`. An explicit policy is taken whole; only
 * when none is given are the environment variables read (pass `{}` for no environment), and
 * then the default is this process's own uid. Errors name the option as `name`.
 *
 * @example
 * resolveAllow({ gids: [998] }, {}, 'metrics.listen.allow') // { uids: [], gids: [998] }
 */
export function resolveAllow(value: unknown, env: Env, name = 'allow'): ResolvedServerOptions['allow'] {
  return resolveAllowWithSources(value, env, name).allow
}

function resolveAllowWithSources(value: unknown, env: Env, name = 'allow'): { allow: ResolvedServerOptions['allow']; uids: SettingSource; gids: SettingSource } {
  if (value === false) return { allow: false, uids: 'option', gids: 'option' }
  if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw new InvalidOptionError(name, 'must be { uids, gids } or false')
  }
  const given = value as AllowPolicy | undefined
  rejectUnknown(name, given, ['uids', 'gids'])
  // An explicit policy is taken whole: a stray NAACCORD_ALLOW_GIDS must not widen it.
  const fromEnv = given === undefined ? env : {}
  const uidsRaw = pickWithSource(given?.uids, fromEnv, ENV.allowUids)
  const gidsRaw = pickWithSource(given?.gids, fromEnv, ENV.allowGids)
  const uids = uidsRaw.value === undefined ? [process.getuid?.() ?? os.userInfo().uid] : parseIdList(`${name}.uids`, uidsRaw.value)
  const gids = gidsRaw.value === undefined ? [] : parseIdList(`${name}.gids`, gidsRaw.value)
  if (uids.length === 0 && gids.length === 0) {
    throw new InvalidOptionError(name, 'allows nobody (empty uids and gids); list who may connect, or pass allow: false to turn the check off')
  }
  return { allow: Object.freeze({ uids: Object.freeze(uids), gids: Object.freeze(gids) }), uids: uidsRaw.source, gids: gidsRaw.source }
}

/** A socket file mode: octal, read/write bits only (the kernel checks them at connect(2)). */
export function resolveSocketMode(name: string, value: unknown): number {
  const mode = parseMode(name, value)
  if (mode & ~0o666) {
    throw new InvalidOptionError(name, `must only grant read/write bits (at most 0o666), got 0o${mode.toString(8)}`)
  }
  return mode
}

/** The mode of a socket folder we create: never writable by group or others (they could replace the socket). */
export function resolveDirMode(name: string, value: unknown): number {
  const mode = parseMode(name, value)
  if (mode & 0o022) {
    throw new InvalidOptionError(name, `must not let group or others write the folder, got 0o${mode.toString(8)}`)
  }
  return mode
}

const CHECK_INTERVAL_MIN_MS = 50
const CHECK_INTERVAL_MAX_MS = 30_000

/**
 * How often Node should check headersTimeout/requestTimeout for the shortest of them: a quarter
 * of it, between 50 ms and 30 s, so a timeout fires within 25% of its value instead of on Node's
 * 30 s cycle.
 */
export function checkIntervalFor(shortestTimeoutMs: number): number {
  return Math.min(CHECK_INTERVAL_MAX_MS, Math.max(CHECK_INTERVAL_MIN_MS, Math.floor(shortestTimeoutMs / 4)))
}

function resolveLimits(value: ServerLimits | undefined): ResolvedLimits {
  rejectUnknown('limits', value, Object.keys(SERVER_DEFAULTS.limits))
  const d = SERVER_DEFAULTS.limits
  const v = value ?? {}
  const headersTimeoutMs = parseInteger('limits.headersTimeoutMs', v.headersTimeoutMs ?? d.headersTimeoutMs, 1)
  const requestTimeoutMs = parseInteger('limits.requestTimeoutMs', v.requestTimeoutMs ?? d.requestTimeoutMs, 0)
  if (requestTimeoutMs !== 0 && headersTimeoutMs > requestTimeoutMs) {
    // Node's own rule (http.createServer): the headers are part of the request.
    throw new InvalidOptionError('limits.headersTimeoutMs', `must not exceed limits.requestTimeoutMs (${requestTimeoutMs}), got ${headersTimeoutMs}`)
  }
  // requestTimeout 0 means none: only the headers timeout counts then.
  const shortest = requestTimeoutMs === 0 ? headersTimeoutMs : Math.min(headersTimeoutMs, requestTimeoutMs)
  return Object.freeze({
    headersTimeoutMs,
    requestTimeoutMs,
    keepAliveTimeoutMs: parseInteger('limits.keepAliveTimeoutMs', v.keepAliveTimeoutMs ?? d.keepAliveTimeoutMs, 0),
    maxHeaderBytes: parseInteger('limits.maxHeaderBytes', v.maxHeaderBytes ?? d.maxHeaderBytes, 1024),
    maxBodyBytes: parseInteger('limits.maxBodyBytes', v.maxBodyBytes ?? d.maxBodyBytes, 0),
    connectionsCheckingIntervalMs: checkIntervalFor(shortest),
    handshakeTimeoutMs: headersTimeoutMs,
  })
}

function resolveBudget(options: ServerOptions, env: Env): { maxConnections: number; maxUnauthenticated: number } {
  const maxConnections = parseInteger('maxConnections', pick(options.maxConnections, env, ENV.maxConnections) ?? SERVER_DEFAULTS.maxConnections, 1)
  const given = pick(options.maxUnauthenticated, env, ENV.maxUnauthenticated)
  if (given === undefined) {
    return { maxConnections, maxUnauthenticated: Math.max(1, Math.floor(maxConnections * SERVER_DEFAULTS.maxUnauthenticatedShare)) }
  }
  const maxUnauthenticated = parseInteger('maxUnauthenticated', given, 1)
  if (maxUnauthenticated > maxConnections) {
    throw new InvalidOptionError(
      'maxUnauthenticated',
      `must not exceed maxConnections (${maxConnections}), got ${maxUnauthenticated}: it is the part of each listener's maxConnections that connections not yet authenticated may hold`,
    )
  }
  return { maxConnections, maxUnauthenticated }
}

function resolveHealth(value: unknown): ResolvedServerOptions['health'] {
  if (value === false) return false
  if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw new InvalidOptionError('health', 'must be { path } or false')
  }
  const given = value as HealthOptions | undefined
  rejectUnknown('health', given, ['path'])
  const p = parseString('health.path', given?.path ?? SERVER_DEFAULTS.healthPath)
  if (!/^\/[\x21-\x7e]*$/.test(p) || p.includes('?')) {
    throw new InvalidOptionError('health.path', `must be a URL path such as "/healthz" (no query string, no spaces), got ${JSON.stringify(p)}`)
  }
  return Object.freeze({ path: p })
}

function resolveListen(value: unknown, socketPath: string): ResolvedListenTarget[] {
  if (value === undefined) return [{ kind: 'socket', socketPath }]
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidOptionError('listen', 'must be a non-empty list of { socketPath } or { host, port }')
  }
  return value.map((target: unknown, i): ResolvedListenTarget => {
    const name = `listen[${i}]`
    if (target && typeof target === 'object' && 'socketPath' in target) {
      rejectUnknown(name, target, ['socketPath'])
      return { kind: 'socket', socketPath: resolveSocketPath(`${name}.socketPath`, (target as { socketPath: unknown }).socketPath) }
    }
    if (target && typeof target === 'object' && 'port' in target) {
      rejectUnknown(name, target, ['host', 'port'])
      const t = target as { host?: unknown; port: unknown }
      return {
        kind: 'tcp',
        host: t.host === undefined ? '127.0.0.1' : parseString(`${name}.host`, t.host),
        port: parseInteger(`${name}.port`, t.port, 0, 65535),
      }
    }
    throw new InvalidOptionError(name, 'must be { socketPath } or { host, port }')
  })
}

/**
 * Normalise the options of `serve()` once: explicit option, then environment variable, then
 * `SERVER_DEFAULTS`. Unknown or malformed options throw `IPC_INVALID_OPTION` naming the option.
 *
 * @example
 * const opts = resolveServerOptions({ socketPath: '/run/naaccord/service.sock' })
 */
export function resolveServerOptions(options: ServerOptions = {}, env: Env = process.env): ResolvedServerOptions {
  rejectUnknown('options', options, KNOWN)
  const pathRaw = pickWithSource(options.socketPath, env, ENV.socketPath)
  const socketPath = resolveSocketPath('socketPath', pathRaw.value ?? SERVER_DEFAULTS.socketPath)
  const groupRaw = pickWithSource(options.socketGroup, env, ENV.socketGroup)
  const socketGid = groupRaw.value === undefined ? undefined : resolveGroup('socketGroup', groupRaw.value)
  const withGroup = socketGid !== undefined
  const modeRaw = pickWithSource(options.socketMode, env, ENV.socketMode)
  const socketMode = resolveSocketMode('socketMode', modeRaw.value ?? (withGroup ? SERVER_DEFAULTS.socketModeWithGroup : SERVER_DEFAULTS.socketMode))
  const dirRaw = pickWithSource(options.dirMode, env, ENV.dirMode)
  const dirMode = resolveDirMode('dirMode', dirRaw.value ?? (withGroup ? SERVER_DEFAULTS.dirModeWithGroup : SERVER_DEFAULTS.dirMode))
  const listen = resolveListen(options.listen, socketPath)
  const tls = options.tls === undefined ? undefined : resolveServerTls(options.tls)
  const allowPlaintextTcp = parseBoolean('allowPlaintextTcp', options.allowPlaintextTcp ?? SERVER_DEFAULTS.allowPlaintextTcp)
  const allow = resolveAllowWithSources(options.allow, env)
  const trustedProxy = resolveTrustedProxyWithSources(options.trustedProxy, env)
  const sources: ServerSettingSources = Object.freeze({
    socketPath: pathRaw.source,
    socketMode: modeRaw.source,
    socketGroup: groupRaw.source,
    dirMode: dirRaw.source,
    allow: fromOption(options.allow),
    'allow.uids': allow.uids,
    'allow.gids': allow.gids,
    listen: fromOption(options.listen),
    tls: fromOption(options.tls),
    'tls.clientAuth': fromOption(options.tls?.clientAuth),
    'tls.minVersion': fromOption(options.tls?.minVersion),
    'tls.allowClients': fromOption(options.tls?.allowClients),
    allowPlaintextTcp: fromOption(options.allowPlaintextTcp),
    acknowledgePlaintextSocket: fromOption(options.acknowledgePlaintextSocket),
    'trustedProxy.uids': trustedProxy.sources.uids,
    'trustedProxy.identityHeader': trustedProxy.sources.identityHeader,
  })
  return Object.freeze({
    socketPath,
    socketMode,
    socketGid,
    dirMode,
    allow: allow.allow,
    listen: Object.freeze(listen),
    tls,
    allowPlaintextTcp,
    acknowledgePlaintextSocket: parseBoolean(
      'acknowledgePlaintextSocket',
      options.acknowledgePlaintextSocket ?? SERVER_DEFAULTS.acknowledgePlaintextSocket,
    ),
    handleSignals: parseBoolean('handleSignals', options.handleSignals ?? SERVER_DEFAULTS.handleSignals),
    clearActivationEnv: parseBoolean('clearActivationEnv', options.clearActivationEnv ?? SERVER_DEFAULTS.clearActivationEnv),
    notifySupervisorReady: parseBoolean('notifySupervisorReady', options.notifySupervisorReady ?? SERVER_DEFAULTS.notifySupervisorReady),
    ...resolveBudget(options, env),
    closeIdleOnShutdown: parseBoolean('closeIdleOnShutdown', pick(options.closeIdleOnShutdown, env, ENV.closeIdleOnShutdown) ?? SERVER_DEFAULTS.closeIdleOnShutdown),
    health: resolveHealth(options.health),
    shutdownTimeoutMs: parseInteger(
      'shutdownTimeoutMs',
      pick(options.shutdownTimeoutMs, env, ENV.shutdownTimeoutMs) ?? SERVER_DEFAULTS.shutdownTimeoutMs,
      0,
    ),
    logger: resolveLogger(options.logger, 'ipc-server'),
    requestLog: parseBoolean('requestLog', options.requestLog ?? SERVER_DEFAULTS.requestLog),
    limits: resolveLimits(options.limits),
    trustedProxy: trustedProxy.proxy,
    sources,
  })
}
