import net from 'node:net'
import path from 'node:path'
import {
  DEFAULT_SOCKET_PATH,
  ENV,
  InvalidOptionError,
  SUN_PATH_MAX,
  SocketPathTooLongError,
  TlsRequiredError,
  anyValue,
  defaultsOf,
  integer,
  oneOf,
  option,
  optional,
  parseBoolean,
  parseInteger,
  parseSpiffeId,
  parseString,
  parseStringList,
  resolveOptions,
  type Env,
  type Logger,
  type OptionsInput,
  type OptionsResolved,
  type PemSource,
  type SettingSource,
} from '@naaccord/ipc-shared'
import { resolveLogger } from '@naaccord/ipc-shared/logger'
import { EXPECT_SERVER_OPTIONS, resolveServerCheck, type ExpectServer, type ResolvedServerCheck } from './connect/server-check.js'
import { SERVER_ID_ENV } from './connect/server-identity.js'

export type { ExpectServer } from './connect/server-check.js'

const MAX_RETRIES = 100
const MAX_RETRY_WINDOW_MS = 600_000

/** A pin: the base64 SHA-256 of a SubjectPublicKeyInfo, with or without a `sha256//` prefix. */
function parsePins(name: string, value: unknown): readonly string[] {
  const pins = parseStringList(name, value).map((p) => p.replace(/^sha256\/\//, ''))
  for (const [i, p] of pins.entries()) {
    if (Buffer.from(p, 'base64').length !== 32) {
      throw new InvalidOptionError(`${name}[${i}]`, `must be the base64 SHA-256 of a SubjectPublicKeyInfo (naaccord-ipc certs inspect prints it), got "${p}"`)
    }
  }
  return Object.freeze(pins)
}

/** The client's TLS options (`tls`), declared once; the variables are read even when `tls` is given. */
export const CLIENT_TLS_OPTIONS = {
  /** CA bundle the server certificate must chain to (PEM text or path). Required unless insecureSkipVerify. */
  ca: option<PemSource>()({ env: ENV.tlsCa, parse: anyValue<PemSource | undefined> }),
  /** Client certificate for mutual TLS (PEM text or path). */
  cert: option<PemSource>()({ env: ENV.tlsCert, parse: anyValue<PemSource | undefined> }),
  /** Its private key. */
  key: option<PemSource>()({ env: ENV.tlsKey, parse: anyValue<PemSource | undefined> }),
  /** SHA-256 pins (base64) of the server's SubjectPublicKeyInfo; one must match on every connection, resumed or not. */
  pin: option<string | readonly string[]>()({ env: ENV.tlsPin, default: [], parse: parsePins }),
  /** Development only: skip chain and hostname checks for this client. Refused when NODE_ENV=production. */
  insecureSkipVerify: option<boolean>()({ default: false, parse: parseBoolean }),
  /** Lowest TLS version. */
  minVersion: option<'TLSv1.3' | 'TLSv1.2'>()({ default: 'TLSv1.3', parse: oneOf(['TLSv1.3', 'TLSv1.2']) }),
  /** Name the server certificate must carry. Default: "localhost" over the socket, the URL's host over TCP. */
  servername: option<string>()({ env: ENV.tlsServername, parse: optional(parseString) }),
  /** Watch cert/key/ca files and reload without dropping in-flight requests. Default true when files are given. */
  watch: option<boolean>()({ parse: optional(parseBoolean) }),
  /**
   * The SPIFFE ID the server certificate must carry as a URI SAN (e.g. `spiffe://example.org/services`).
   * When set it replaces the hostname check (SPIFFE verifies by ID); chain and pins still apply.
   */
  serverId: option<string>()({ env: SERVER_ID_ENV, parse: optional(parseSpiffeId) }),
}

export type ClientTlsOptions = OptionsInput<typeof CLIENT_TLS_OPTIONS>

export interface ResolvedClientTls extends Omit<OptionsResolved<typeof CLIENT_TLS_OPTIONS>, 'pin' | 'servername'> {
  readonly servername: string
  readonly pins: readonly string[]
}

/**
 * Every option of `createClient()`, declared once: its JSDoc is the meaning (editor help and the
 * docs' row), `env` its variable, `default` its default, `parse` its check. `socketPath`, `url`,
 * `tls` and `expectServer` are resolved together afterwards (`resolveTarget`): which transport,
 * and so which TLS name and which server check, depends on all of them.
 */
export const CLIENT_OPTIONS = {
  /** Socket of the services server (unless `url`). */
  socketPath: option<string>()({ env: ENV.socketPath, default: DEFAULT_SOCKET_PATH, parse: anyValue<unknown> }),
  /**
   * `https://host:port` over TCP instead; `http://` only to loopback unless `allowPlaintextRemote`,
   * and always with a warning. Refused when both env vars are set.
   */
  url: option<string>()({ env: ENV.url, parse: anyValue<unknown>, docs: { default: 'none' } }),
  /** Most connections in the keep-alive pool. */
  connections: option<number | string>()({ env: ENV.connections, default: 16, parse: integer(1, 1024) }),
  /** Time to the response headers, and longest gap in the body. */
  timeoutMs: option<number | string>()({ env: ENV.timeoutMs, default: 30_000, parse: integer(1) }),
  /** Connect plus TLS handshake. */
  connectTimeoutMs: option<number | string>()({ env: ENV.connectTimeoutMs, default: 2_000, parse: integer(1) }),
  /** Most retries of one request (0–100; 0 turns retries off). High enough that the window ends them. */
  retries: option<number | string>()({ env: ENV.retries, default: 20, parse: integer(0, MAX_RETRIES) }),
  /**
   * How long one request keeps being retried, from its first attempt (0–600000): long enough to
   * cover a restart of the services server. Requests that failed before a byte was sent (no
   * socket, refused, backlog full, connect timeout) are retried whatever their method; a lost
   * connection after sending only for idempotent methods. A POST that may have reached the server
   * is never replayed.
   */
  retryWindowMs: option<number | string>()({ env: ENV.retryWindowMs, default: 5_000, parse: integer(0, MAX_RETRY_WINDOW_MS) }),
  /** First retry delay; doubles per retry up to `maxRetryDelayMs`. */
  retryDelayMs: option<number>()({ default: 100, parse: integer(0) }),
  /** Cap of the retry delay. */
  maxRetryDelayMs: option<number>()({ default: 1_000, parse: integer(0) }),
  /** Idle connection lifetime (shorter than the server's 10000). */
  keepAliveTimeoutMs: option<number>()({ default: 4_000, parse: integer(1) }),
  /**
   * Who may be at the other end of the socket, checked on every new connection before anything
   * is sent. Default: the socket, and every folder and link on its path, belong to this process's
   * uid or root (else `IPC_UNSAFE_SOCKET_PATH`), and the server process runs as one of them (else
   * `IPC_PEER_REJECTED`). `{ uid, gid, checkSocketFile }`: the services user `uid` is trusted for
   * the path too, and the server process must run as `uid` or root (and as `gid`);
   * `checkSocketFile` (default true) also requires the socket file to be owned by `uid` or root.
   * `false`: no kernel check of the server process (the path check stays; warned at creation).
   * **Set `uid` whenever the services server runs as its own user.**
   */
  expectServer: option<ExpectServer | false>()({ parse: anyValue<unknown>, table: EXPECT_SERVER_OPTIONS, docs: { default: 'this uid or root', env: '(uid)' } }),
  /**
   * `{ ca, cert, key, servername, pin, minVersion, insecureSkipVerify, watch, serverId }`, see
   * [TLS](tls.md#client-tls-options). Setting `NAACCORD_TLS_CA` alone turns TLS on. `serverId` (default none):
   * a SPIFFE ID the server certificate must carry as a URI SAN; it replaces the host-name check,
   * see [SPIFFE IDs](tls.md#spiffe-ids).
   */
  tls: option<ClientTlsOptions>()({ parse: anyValue<unknown>, table: CLIENT_TLS_OPTIONS, docs: { default: 'off' } }),
  /** Accept plaintext over the socket by name: no warning for it at creation. */
  acknowledgePlaintext: option<boolean>()({ default: false, parse: parseBoolean }),
  /** Opt out, by name, of "plaintext only to loopback". */
  allowPlaintextRemote: option<boolean>()({ default: false, parse: parseBoolean }),
  /** Headers on every request. */
  headers: option<Record<string, string>>()({ parse: parseHeaders, parseAbsent: true, docs: { default: '`{}`' } }),
  /** A pino logger, or `false`. */
  logger: option<Logger | false>()({ parse: anyValue<Logger | false | undefined>, docs: { default: 'pino JSON', env: `\`${ENV.logLevel}\`` } }),
}

function parseHeaders(name: string, value: unknown): Readonly<Record<string, string>> {
  if (value === null) throw new InvalidOptionError(name, 'must be an object of header names to strings, got null')
  const headers = value ?? {}
  if (typeof headers !== 'object') throw new InvalidOptionError(name, 'must be an object of header names to strings')
  return Object.freeze({ ...(headers as Record<string, string>) })
}

export type ClientOptions = OptionsInput<typeof CLIENT_OPTIONS>

/** Every default of the client, from `CLIENT_OPTIONS` (and its `tls`). */
export const CLIENT_DEFAULTS = Object.freeze({
  ...(defaultsOf(CLIENT_OPTIONS) as {
    readonly socketPath: string
    readonly connections: number
    readonly timeoutMs: number
    readonly connectTimeoutMs: number
    readonly retries: number
    readonly retryWindowMs: number
    readonly retryDelayMs: number
    readonly maxRetryDelayMs: number
    readonly keepAliveTimeoutMs: number
    readonly acknowledgePlaintext: boolean
    readonly allowPlaintextRemote: boolean
  }),
  socketServername: 'localhost',
  minVersion: CLIENT_TLS_OPTIONS.minVersion.default as 'TLSv1.3',
})

/** Where the client talks to: over the socket or a URL, with the TLS and server check that go with it. */
interface Target {
  /** "unix" when talking over the socket, "tcp" for a URL. */
  readonly transport: 'unix' | 'tcp'
  readonly socketPath: string | undefined
  /** The origin handed to undici: http(s)://localhost over the socket, the URL's origin over TCP. */
  readonly origin: string
  /** Host and port for TCP. */
  readonly host: string | undefined
  readonly port: number | undefined
  /** What messages call the server: the socket path or the URL. */
  readonly target: string
  readonly tls: ResolvedClientTls | undefined
  /** Who may be at the other end of the socket (undefined over TCP, where TLS says who). */
  readonly serverCheck: ResolvedServerCheck | undefined
}

type Resolved = OptionsResolved<typeof CLIENT_OPTIONS>

export interface ResolvedClientOptions extends Omit<Resolved, 'socketPath' | 'url' | 'expectServer' | 'tls' | 'allowPlaintextRemote' | 'logger'>, Target {
  readonly logger: Logger
}

/** Per-call overrides (`client.get(path, { retries, timeoutMs, retryWindowMs })`), checked like the options. */
export interface CallOverrides {
  retries?: number
  timeoutMs?: number
  retryWindowMs?: number
}

/**
 * Check the per-call overrides the way `resolveClientOptions` checks the options, naming the
 * override in the `IPC_INVALID_OPTION` error. Returns the overrides to put on the dispatch, or
 * undefined when there are none (the common case costs one check per field).
 *
 * @example
 * resolveCallOptions({ retries: 0 }) // { retries: 0 }
 * resolveCallOptions({ timeoutMs: -1 }) // throws IPC_INVALID_OPTION naming timeoutMs
 */
export function resolveCallOptions(call: CallOverrides): { retries?: number; retryWindowMs?: number } | undefined {
  if (call.timeoutMs !== undefined) parseInteger('timeoutMs', call.timeoutMs, 1)
  if (call.retries === undefined && call.retryWindowMs === undefined) return undefined
  const out: { retries?: number; retryWindowMs?: number } = {}
  if (call.retries !== undefined) out.retries = parseInteger('retries', call.retries, 0, MAX_RETRIES)
  if (call.retryWindowMs !== undefined) out.retryWindowMs = parseInteger('retryWindowMs', call.retryWindowMs, 0, MAX_RETRY_WINDOW_MS)
  return out
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '')
  return h === 'localhost' || h === '::1' || (net.isIPv4(h) && h.startsWith('127.'))
}

function resolveTls(value: ClientTlsOptions | undefined, env: Env, defaultServername: string): ResolvedClientTls | undefined {
  if (value === null || (value !== undefined && (typeof value !== 'object' || Array.isArray(value)))) {
    throw new InvalidOptionError('tls', `must be an object of TLS options, got ${value === null ? 'null' : typeof value}`)
  }
  if (value === undefined && env[ENV.tlsCa] === undefined) return undefined
  const { values: v } = resolveOptions(CLIENT_TLS_OPTIONS, value, { scope: 'tls', env })
  if (v.insecureSkipVerify && env.NODE_ENV === 'production') {
    throw new InvalidOptionError('tls.insecureSkipVerify', 'is refused when NODE_ENV=production; give tls.ca (and tls.pin) instead')
  }
  if (v.ca === undefined && !v.insecureSkipVerify) {
    throw new InvalidOptionError('tls.ca', 'is required to verify the server (the CA that signed its certificate); naaccord-ipc never trusts the system store for internal services')
  }
  if ((v.cert === undefined) !== (v.key === undefined)) {
    throw new InvalidOptionError(v.cert === undefined ? 'tls.cert' : 'tls.key', 'tls.cert and tls.key go together for mutual TLS')
  }
  const { pin, servername, ...rest } = v
  return Object.freeze({ ...rest, pins: pin, servername: parseString('tls.servername', servername ?? defaultServername) })
}

/** Which of socketPath and url: an explicit option decides alone; two variables set at once are refused. */
function pickUrl(options: ClientOptions, sources: Record<'socketPath' | 'url', SettingSource>, url: unknown, env: Env): unknown {
  if (options.socketPath !== undefined && options.url !== undefined) throw new InvalidOptionError('url', 'give socketPath or url, not both')
  // Which one wins must never depend on which variable a deployment forgot to unset.
  if (sources.socketPath.startsWith('env:') && sources.url.startsWith('env:')) {
    throw new InvalidOptionError(
      `${ENV.socketPath}/${ENV.url}`,
      `both are set (${ENV.socketPath}=${env[ENV.socketPath]}, ${ENV.url}=${env[ENV.url]}); unset the one you do not mean, or pass socketPath or url explicitly`,
    )
  }
  return options.socketPath === undefined ? url : undefined
}

function tcpTarget(raw: unknown, options: ClientOptions, allowPlaintextRemote: boolean, env: Env): Target {
  let url: URL
  try {
    url = new URL(parseString('url', raw))
  } catch (cause) {
    throw new InvalidOptionError('url', `is not a valid URL: ${String(raw)}`, { cause })
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new InvalidOptionError('url', `must be http: or https:, got ${url.protocol}`)
  const host = url.hostname
  const tls = resolveTls(options.tls, env, host.replace(/^\[|\]$/g, ''))
  if (url.protocol === 'https:' && !tls) throw new InvalidOptionError('tls', `is required for ${url.origin}: give tls.ca (and cert/key for mutual TLS)`)
  if (url.protocol === 'http:' && tls) throw new InvalidOptionError('url', `uses http: but tls options are set; use https://${url.host}`)
  if (url.protocol === 'http:' && !isLoopback(host) && !allowPlaintextRemote) {
    throw new TlsRequiredError(
      `plaintext HTTP to ${url.host}, which is not loopback, would send health data in clear text; use https:// with tls, or allowPlaintextRemote: true to accept that`,
    )
  }
  if (options.expectServer || env[ENV.expectServerUid]?.trim()) {
    throw new InvalidOptionError('expectServer', 'checks kernel credentials and works over the Unix socket only; over TCP use tls.pin')
  }
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80))
  return { transport: 'tcp', socketPath: undefined, origin: url.origin, host, port, target: url.origin, tls, serverCheck: undefined }
}

function unixTarget(raw: unknown, options: ClientOptions, env: Env): Target {
  const socketPath = path.resolve(parseString('socketPath', raw))
  if (Buffer.byteLength(socketPath) > SUN_PATH_MAX) throw new SocketPathTooLongError(socketPath, SUN_PATH_MAX)
  const tls = resolveTls(options.tls, env, CLIENT_DEFAULTS.socketServername)
  const origin = tls ? `https://${tls.servername}` : 'http://localhost'
  const serverCheck = resolveServerCheck(options.expectServer, env)
  return { transport: 'unix', socketPath, origin, host: undefined, port: undefined, target: socketPath, tls, serverCheck }
}

/**
 * Normalise the options of `createClient()` once, from `CLIENT_OPTIONS`: explicit option, then
 * environment variable, then default. Unknown or malformed options throw `IPC_INVALID_OPTION`.
 *
 * @example
 * const opts = resolveClientOptions({ socketPath: '/run/naaccord/service.sock', retries: 3 })
 */
export function resolveClientOptions(options: ClientOptions = {}, env: Env = process.env): ResolvedClientOptions {
  const { values, sources } = resolveOptions(CLIENT_OPTIONS, options, { scope: 'options', env })
  const { socketPath, url, expectServer: _expectServer, tls: _tls, allowPlaintextRemote, logger, ...rest } = values
  const urlRaw = pickUrl(options, sources, url, env)
  const target = urlRaw === undefined ? unixTarget(socketPath, options, env) : tcpTarget(urlRaw, options, allowPlaintextRemote, env)
  // Last: nothing is made for options that are refused.
  return Object.freeze({ ...rest, ...target, logger: resolveLogger(logger, 'ipc-client') })
}
