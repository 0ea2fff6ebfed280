import {
  DEFAULT_SOCKET_PATH,
  ENV,
  InvalidOptionError,
  defaultsOf,
  group,
  integer,
  option,
  optional,
  orFalse,
  parseBoolean,
  parseInteger,
  resolveOptions,
  sourcesOf,
  type Env,
  type Logger,
  type OptionContext,
  type OptionsInput,
  type OptionsResolved,
  type SettingSource,
} from '@naaccord/ipc-shared'
import { resolveLogger } from '@naaccord/ipc-shared/logger'
import { resolveGroup } from './socket/group.js'
import { resolveTrustedProxyWithSources, TRUSTED_PROXY_OPTIONS, type ResolvedTrustedProxy, type TrustedProxyOptions } from './http/trusted-proxy.js'
import { SERVER_TLS_OPTIONS, resolveServerTls, type ServerTlsOptions } from './gate/tls-options.js'
import { ALLOW_OPTIONS, checkIntervalFor, parseAllow, parseUrlPath, resolveDirMode, resolveListen, resolveSocketMode, resolveSocketPath, GROUP_MODES, groupMode } from './option-checks.js'

export { checkIntervalFor, resolveAllow, resolveDirMode, resolveSocketMode, resolveSocketPath, type ResolvedAllow, type ResolvedListenTarget } from './option-checks.js'

/** Which peers may connect, checked from the kernel's credentials once per connection. */
export type AllowPolicy = OptionsInput<typeof ALLOW_OPTIONS>

/** A place to listen: the Unix socket, or (with TLS) a TCP address. */
export type ListenTarget = { socketPath: string } | { host: string; port: number }

/** HTTP hardening limits (`limits`): one entry per limit. */
export const LIMIT_OPTIONS = {
  /**
   * Time to receive the request headers (408 beyond), to finish a TLS handshake (cut beyond), and
   * how long a new connection may stay silent before its first request (cut beyond; Node's own
   * headers timeout only starts with a request). Checked every quarter of the shorter of the two
   * timeouts (50 ms to 30 s), not on Node's 30 s cycle. At most `requestTimeoutMs`.
   */
  headersTimeoutMs: option<number>()({ default: 10_000, parse: integer(1) }),
  /** Time to receive the whole request (0: none). */
  requestTimeoutMs: option<number>()({ default: 30_000, parse: integer(0) }),
  /**
   * Idle keep-alive connection lifetime; longer than the client's 4000 so the client always
   * closes first. Counted from the last answer, not the last byte: a connection that begins no
   * request within it (plus `headersTimeoutMs` for the head) is cut, blank lines or not. At most
   * 32 pipelined answers outstanding a connection.
   */
  keepAliveTimeoutMs: option<number>()({ default: 10_000, parse: integer(0) }),
  /** Largest header block (431 beyond). */
  maxHeaderBytes: option<number>()({ default: 16 * 1024, parse: integer(1024) }),
  /**
   * Largest request body, counted as it arrives: a larger `Content-Length` gets 413 before the
   * app; a chunked body gets 413 once the limit is passed, the app is handed nothing beyond it,
   * its body reader sees the request aborted and the connection closes.
   */
  maxBodyBytes: option<number>()({ default: 1024 * 1024, parse: integer(0) }),
}

export type ServerLimits = OptionsInput<typeof LIMIT_OPTIONS>

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

const parseLimits = group(LIMIT_OPTIONS, {
  shape: 'an object of limits',
  finish: (v): ResolvedLimits => {
    if (v.requestTimeoutMs !== 0 && v.headersTimeoutMs > v.requestTimeoutMs) {
      // Node's own rule (http.createServer): the headers are part of the request.
      throw new InvalidOptionError('limits.headersTimeoutMs', `must not exceed limits.requestTimeoutMs (${v.requestTimeoutMs}), got ${v.headersTimeoutMs}`)
    }
    // requestTimeout 0 means none: only the headers timeout counts then.
    const shortest = v.requestTimeoutMs === 0 ? v.headersTimeoutMs : Math.min(v.headersTimeoutMs, v.requestTimeoutMs)
    return Object.freeze({ ...v, connectionsCheckingIntervalMs: checkIntervalFor(shortest), handshakeTimeoutMs: v.headersTimeoutMs })
  },
})

/** The built-in health report (`health`). */
export const HEALTH_OPTIONS = {
  /** Path answered with the report (GET only). */
  path: option<string>()({ default: '/healthz', parse: parseUrlPath }),
}

/** The built-in health report. */
export type HealthOptions = OptionsInput<typeof HEALTH_OPTIONS>

const parseHealth = orFalse(group(HEALTH_OPTIONS, { shape: '{ path } or false', finish: (v) => Object.freeze(v) }))

/** `maxUnauthenticated`: at most `maxConnections`, a quarter of it when not given. */
function parseUnauthenticated(name: string, value: unknown, { resolved }: OptionContext): number {
  const maxConnections = resolved.maxConnections as number
  const n = parseInteger(name, value, 1)
  if (n > maxConnections) {
    throw new InvalidOptionError(
      name,
      `must not exceed maxConnections (${maxConnections}), got ${n}: it is the part of each listener's maxConnections that connections not yet authenticated may hold`,
    )
  }
  return n
}

const MAX_UNAUTHENTICATED_SHARE = 0.25

/**
 * Every option of `serve()`, declared once: its JSDoc is the meaning (editor help and the docs'
 * row), `env` its variable, `default` its default, `parse` its check. Resolved in this order
 * (an entry may use those before it). Add an option here and its docs row
 * (scripts/options-doc.ts); nothing else.
 */
export const SERVER_OPTIONS = {
  /**
   * Socket path; at most 97 bytes on Linux (93 on macOS/BSD: `sun_path` less the 10 bytes of the
   * private bind folder), longer is `IPC_SOCKET_PATH_TOO_LONG`.
   */
  socketPath: option<string>()({ env: ENV.socketPath, default: DEFAULT_SOCKET_PATH, parse: resolveSocketPath }),
  /**
   * Group (name, looked up through NSS with `getent group`, so LDAP/sssd groups work; or a gid)
   * that owns the socket and a created folder.
   */
  socketGroup: option<string | number>()({ env: ENV.socketGroup, parse: optional(resolveGroup), docs: { default: 'none' } }),
  /**
   * Mode of the socket from its first moment; only read/write bits (≤ `0o666`). Strings `"600"`,
   * `"0600"`, `"0o600"` accepted.
   */
  socketMode: groupMode(GROUP_MODES.socket, resolveSocketMode, ENV.socketMode),
  /** Mode of the folder when we create it; never group/other-writable. */
  dirMode: groupMode(GROUP_MODES.dir, resolveDirMode, ENV.dirMode),
  /**
   * Who may connect over the socket, from the kernel's credentials. `false` turns the check off.
   * Another uid than our own (root aside), any gid, or `false` is a weakening in the
   * [start-up security report](operators.md#start-up-security-report).
   */
  allow: option<AllowPolicy | false>()({ parse: parseAllow, parseAbsent: true, table: ALLOW_OPTIONS, docs: { default: '`{ uids: [own uid] }`', env: '(comma-separated)' } }),
  /** Listeners: `{ socketPath }` and/or `{ host, port }` (TCP, TLS required). */
  listen: option<readonly ListenTarget[]>()({
    parse: (_name: string, v: unknown, { resolved }: OptionContext) => resolveListen(v, resolved.socketPath as string),
    parseAbsent: true,
    docs: { default: '`[{ socketPath }]`' },
  }),
  /** `{ cert, key, ca, clientAuth, minVersion, allowClients, watch }`, see [TLS](tls.md#server-tls-options). */
  tls: option<ServerTlsOptions>()({ parse: optional((_name: string, v: ServerTlsOptions) => resolveServerTls(v)), table: SERVER_TLS_OPTIONS, docs: { default: 'none' } }),
  /** Opt out, by name, of "TCP needs TLS". */
  allowPlaintextTcp: option<boolean>()({ default: false, parse: parseBoolean }),
  /**
   * Accept plaintext HTTP over the socket by name: the
   * [security report](operators.md#start-up-security-report) still lists it, without the warning.
   */
  acknowledgePlaintextSocket: option<boolean>()({ default: false, parse: parseBoolean }),
  /**
   * Close gracefully on SIGTERM/SIGINT. One process-wide handler closes every `serve()` that
   * asked for it, in parallel; once all have closed it removes itself and raises the signal
   * again, so the process ends by the signal only if the application has no handler of its own.
   * Never calls `process.exit`. On by default: systemd and `naaccord-ipc run` stop a service with
   * SIGTERM, which without a handler ends Node at once, mid-request (fastify core installs no
   * handler; its users add close-with-grace). `false`: the application handles signals (call
   * `ipc.close()`). A [process-wide effect](#process-wide-effects).
   */
  handleSignals: option<boolean>()({ default: true, parse: parseBoolean }),
  /**
   * Remove `LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES` from `process.env` once read
   * (sd_listen_fds(3) with `unset_environment`). `false`: they stay for the application. A
   * [process-wide effect](#process-wide-effects).
   */
  clearActivationEnv: option<boolean>()({ default: true, parse: parseBoolean }),
  /**
   * Under `naaccord-ipc run`: once every listener accepts, send the ready message, close the IPC
   * channel, remove `NAACCORD_SUPERVISOR_READY`. `false`: the application calls
   * `notifySupervisorReady()` itself once ready. A [process-wide effect](#process-wide-effects).
   */
  notifySupervisorReady: option<boolean>()({ default: true, parse: parseBoolean }),
  /**
   * Most connections open at once **on each listener** (the socket and each TCP address have
   * their own budget), whatever their state (unauthenticated, active, idle). More are closed as
   * soon as accepted, before TLS or HTTP; existing connections keep being served. With several
   * listeners the process may hold this many on each.
   */
  maxConnections: option<number | string>()({ env: ENV.maxConnections, default: 512, parse: integer(1) }),
  /**
   * Of each listener's `maxConnections`, most that may be unauthenticated at once: accepted but
   * not yet past the peer check, or (TLS) the handshake and the client-certificate policy; a
   * refused peer waiting for its 403 counts too. More are closed as soon as accepted. The rest of
   * `maxConnections` stays for connections that passed, whatever floods the listener. At most
   * `maxConnections`.
   */
  maxUnauthenticated: option<number | string>()({
    env: ENV.maxUnauthenticated,
    fallback: (r) => Math.max(1, Math.floor((r.maxConnections as number) * MAX_UNAUTHENTICATED_SHARE)),
    parse: parseUnauthenticated,
    docs: { default: 'a quarter of `maxConnections` (`128`)' },
  }),
  /**
   * On close, also close at once authenticated connections that carry no request (idle
   * keep-alive, or no first request yet). Off: they are left for the client to close (HTTP/1.1
   * race, see step 7 above). Unauthenticated connections are cut at once either way.
   */
  closeIdleOnShutdown: option<boolean | string>()({ env: ENV.closeIdleOnShutdown, default: false, parse: parseBoolean }),
  /**
   * The built-in health report (GET), answered only to authenticated peers; `false`: no health
   * route, every path is the app's.
   */
  health: option<HealthOptions | false>()({ parse: parseHealth, parseAbsent: true, table: HEALTH_OPTIONS, docs: { default: "`{ path: '/healthz' }`" } }),
  /**
   * Longest wait for in-flight requests (and idle connections left to their client) on close;
   * then they are cut.
   */
  shutdownTimeoutMs: option<number | string>()({ env: ENV.shutdownTimeoutMs, default: 10_000, parse: integer(0) }),
  /** One line per request (`reqId`, `method`, path without query, `status`, `durationMs`, `aborted` when cut, `peer`). */
  requestLog: option<boolean>()({ default: true, parse: parseBoolean }),
  limits: option<ServerLimits>()({ parse: parseLimits, parseAbsent: true, table: LIMIT_OPTIONS, docs: { expand: true } }),
  /**
   * `{ uids, identityHeader = 'x-client-cert-subject' }`: a reverse proxy that terminates mutual
   * TLS passes the verified client subject in `identityHeader`; it becomes
   * `req.peer.forwardedIdentity` only on socket connections whose kernel uid is in `uids`. The
   * header is removed from every request before the app sees it, whoever sent it: from `headers`
   * and `rawHeaders`, and in a chunked request's trailer section from `trailers`,
   * `trailersDistinct` and `rawTrailers` before the body's end reaches the app (a trailer is never
   * believed); two values (a proxy that appended instead of replacing) are not believed. See
   * [Behind nginx or HAProxy](tls.md#behind-nginx-or-haproxy).
   */
  trustedProxy: option<TrustedProxyOptions>()({
    parse: (_name: string, v: TrustedProxyOptions | undefined, { env }: OptionContext) => resolveTrustedProxyWithSources(v, env),
    parseAbsent: true,
    table: TRUSTED_PROXY_OPTIONS,
    docs: { default: 'off' },
  }),
  // Last: nothing is made for options that are refused.
  /** A pino logger of yours, or `false`. */
  logger: option<Logger | false>()({
    parse: (_name: string, v: Logger | false | undefined) => resolveLogger(v, 'ipc-server'),
    parseAbsent: true,
    docs: { default: 'pino JSON to stdout, level `info`, buffered (below)', env: `\`${ENV.logLevel}\` (level)` },
  }),
}

export type ServerOptions = OptionsInput<typeof SERVER_OPTIONS>

/** Every default in one place, from `SERVER_OPTIONS`; the `*WithGroup` modes apply when `socketGroup` is given. */
export const SERVER_DEFAULTS = Object.freeze({
  ...(defaultsOf(SERVER_OPTIONS) as {
    readonly socketPath: string
    readonly socketMode: number
    readonly dirMode: number
    readonly allowPlaintextTcp: boolean
    readonly acknowledgePlaintextSocket: boolean
    readonly handleSignals: boolean
    readonly clearActivationEnv: boolean
    readonly notifySupervisorReady: boolean
    readonly maxConnections: number
    readonly closeIdleOnShutdown: boolean
    readonly shutdownTimeoutMs: number
    readonly requestLog: boolean
    readonly limits: Readonly<Required<ServerLimits>>
  }),
  socketModeWithGroup: GROUP_MODES.socket.withGroup,
  dirModeWithGroup: GROUP_MODES.dir.withGroup,
  /** maxUnauthenticated, when not given: this share of maxConnections (at least 1). */
  maxUnauthenticatedShare: MAX_UNAUTHENTICATED_SHARE,
  healthPath: HEALTH_OPTIONS.path.default as string,
})

type Resolved = OptionsResolved<typeof SERVER_OPTIONS>

export interface ResolvedServerOptions extends Omit<Resolved, 'socketGroup' | 'trustedProxy'> {
  readonly socketGid: number | undefined
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

function settingSources(
  options: ServerOptions,
  env: Env,
  top: Record<keyof typeof SERVER_OPTIONS, SettingSource>,
  proxy: { readonly uids: SettingSource; readonly identityHeader: SettingSource },
): ServerSettingSources {
  // An explicit policy is taken whole: the variables count only when `allow` is not given.
  const allow = sourcesOf(ALLOW_OPTIONS, options.allow, options.allow === undefined ? env : {})
  const tls = sourcesOf(SERVER_TLS_OPTIONS, options.tls, {})
  return Object.freeze({
    socketPath: top.socketPath,
    socketMode: top.socketMode,
    socketGroup: top.socketGroup,
    dirMode: top.dirMode,
    allow: top.allow,
    'allow.uids': allow.uids,
    'allow.gids': allow.gids,
    listen: top.listen,
    tls: top.tls,
    'tls.clientAuth': tls.clientAuth,
    'tls.minVersion': tls.minVersion,
    'tls.allowClients': tls.allowClients,
    allowPlaintextTcp: top.allowPlaintextTcp,
    acknowledgePlaintextSocket: top.acknowledgePlaintextSocket,
    'trustedProxy.uids': proxy.uids,
    'trustedProxy.identityHeader': proxy.identityHeader,
  })
}

/**
 * Normalise the options of `serve()` once, from `SERVER_OPTIONS`: explicit option, then
 * environment variable, then default. Unknown or malformed options throw `IPC_INVALID_OPTION`
 * naming the option.
 *
 * @example
 * const opts = resolveServerOptions({ socketPath: '/run/naaccord/service.sock' })
 */
export function resolveServerOptions(options: ServerOptions = {}, env: Env = process.env): ResolvedServerOptions {
  const { values, sources } = resolveOptions(SERVER_OPTIONS, options, { scope: 'options', env })
  const { socketGroup, trustedProxy, ...rest } = values
  return Object.freeze({
    ...rest,
    socketGid: socketGroup,
    trustedProxy: trustedProxy.proxy,
    sources: settingSources(options, env, sources, trustedProxy.sources),
  })
}
