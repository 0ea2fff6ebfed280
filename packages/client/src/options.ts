import path from 'node:path'
import {
  DEFAULT_SOCKET_PATH,
  ENV,
  InvalidOptionError,
  SUN_PATH_MAX,
  SocketPathTooLongError,
  TlsRequiredError,
  parseBoolean,
  parseInteger,
  parseString,
  parseStringList,
  pick,
  rejectUnknown,
  type Env,
  type Logger,
  type PemSource,
} from '@naaccord/ipc-shared'
import net from 'node:net'
import { resolveServerCheck, type ExpectServer, type ResolvedServerCheck } from './connect/server-check.js'
import { resolveServerId } from './connect/server-identity.js'

export type { ExpectServer } from './connect/server-check.js'
import { resolveLogger } from '@naaccord/ipc-shared/logger'

export interface ClientTlsOptions {
  /** CA bundle the server certificate must chain to (PEM text or path). Required unless insecureSkipVerify. */
  ca?: PemSource
  /** Client certificate for mutual TLS (PEM text or path). */
  cert?: PemSource
  /** Its private key. */
  key?: PemSource
  /** Name the server certificate must carry. Default: "localhost" over the socket, the URL's host over TCP. */
  servername?: string
  /** SHA-256 pins (base64) of the server's SubjectPublicKeyInfo; one must match on every connection, resumed or not. */
  pin?: string | readonly string[]
  /** Lowest TLS version. Default "TLSv1.3". */
  minVersion?: 'TLSv1.3' | 'TLSv1.2'
  /** Development only: skip chain and hostname checks for this client. Refused when NODE_ENV=production. */
  insecureSkipVerify?: boolean
  /** Watch cert/key/ca files and reload without dropping in-flight requests. Default true when files are given. */
  watch?: boolean
  /**
   * The SPIFFE ID the server certificate must carry as a URI SAN (e.g. `spiffe://example.org/services`).
   * When set it replaces the hostname check (SPIFFE verifies by ID); chain and pins still apply.
   * Env NAACCORD_TLS_SERVER_ID. Default none.
   */
  serverId?: string
}

export interface ClientOptions {
  /** Unix socket of the services server. Env NAACCORD_SOCKET_PATH. Default `/var/run/naaccord/service.sock` (unless `url`). */
  socketPath?: string
  /** Base URL over TCP instead of the socket, e.g. https://services.internal:8443. Env NAACCORD_SERVICES_URL. */
  url?: string
  /** Most connections kept open to the server. Env NAACCORD_CONNECTIONS. Default 16. */
  connections?: number | string
  /** Per-request timeout for headers and for gaps in the body, ms. Env NAACCORD_TIMEOUT_MS. Default 30 000. */
  timeoutMs?: number | string
  /** Connect (and TLS handshake) timeout, ms. Env NAACCORD_CONNECT_TIMEOUT_MS. Default 2 000. */
  connectTimeoutMs?: number | string
  /**
   * Most retries of one request (see `retryWindowMs` for which requests are retried). 0 turns
   * retries off. Env NAACCORD_RETRIES. Default 20.
   */
  retries?: number | string
  /**
   * How long one request keeps being retried, ms from its first attempt: long enough to cover a
   * restart of the services server. Requests that failed before a byte was sent (no socket,
   * refused, backlog full, connect timeout) are retried whatever their method; a lost connection
   * after sending only for idempotent methods. A POST that may have reached the server is never
   * replayed. Env NAACCORD_RETRY_WINDOW_MS. Default 5 000.
   */
  retryWindowMs?: number | string
  /** First retry delay, ms; doubles per retry up to `maxRetryDelayMs`. Default 100. */
  retryDelayMs?: number
  /** Cap of the retry delay, ms. Default 1 000. */
  maxRetryDelayMs?: number
  /** How long an idle connection is kept, ms. Default 4 000 (shorter than the server's 10 000). */
  keepAliveTimeoutMs?: number
  /**
   * Who may be at the other end of the socket, checked on every new connection before a byte is
   * sent. Default: the server runs as this process's uid or root, and its socket and every
   * folder and link on the way belong to one of them. `{ uid }` names the services user instead.
   * `false` turns off the kernel check of the server process (the path check stays), with a
   * warning. Env NAACCORD_EXPECT_SERVER_UID sets `uid`.
   */
  expectServer?: ExpectServer | false
  /** TLS (mutual when cert/key are given). Env NAACCORD_TLS_CA / _CERT / _KEY / _PIN / _SERVERNAME. */
  tls?: ClientTlsOptions
  /** Accept plaintext over the socket by name: no warning for it at creation. Default false. */
  acknowledgePlaintext?: boolean
  /** Opt out, by name, of the rule that plaintext http:// URLs must point at loopback. Default false. */
  allowPlaintextRemote?: boolean
  /** Headers sent with every request. */
  headers?: Record<string, string>
  /** A pino logger, or false. */
  logger?: Logger | false
}

export const CLIENT_DEFAULTS = Object.freeze({
  socketPath: DEFAULT_SOCKET_PATH,
  connections: 16,
  timeoutMs: 30_000,
  connectTimeoutMs: 2_000,
  // High enough that the window, not the count, ends the retries with the default delays.
  retries: 20,
  retryWindowMs: 5_000,
  retryDelayMs: 100,
  maxRetryDelayMs: 1_000,
  keepAliveTimeoutMs: 4_000,
  socketServername: 'localhost',
  minVersion: 'TLSv1.3' as const,
  acknowledgePlaintext: false,
  allowPlaintextRemote: false,
})

const KNOWN = [
  'socketPath',
  'url',
  'connections',
  'timeoutMs',
  'connectTimeoutMs',
  'retries',
  'retryWindowMs',
  'retryDelayMs',
  'maxRetryDelayMs',
  'keepAliveTimeoutMs',
  'expectServer',
  'tls',
  'acknowledgePlaintext',
  'allowPlaintextRemote',
  'headers',
  'logger',
] as const

export interface ResolvedClientTls {
  readonly ca: PemSource | undefined
  readonly cert: PemSource | undefined
  readonly key: PemSource | undefined
  readonly servername: string
  readonly pins: readonly string[]
  readonly minVersion: 'TLSv1.3' | 'TLSv1.2'
  readonly insecureSkipVerify: boolean
  readonly watch: boolean | undefined
  readonly serverId: string | undefined
}

export interface ResolvedClientOptions {
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
  readonly connections: number
  readonly timeoutMs: number
  readonly connectTimeoutMs: number
  readonly retries: number
  readonly retryWindowMs: number
  readonly retryDelayMs: number
  readonly maxRetryDelayMs: number
  readonly keepAliveTimeoutMs: number
  /** Who may be at the other end of the socket (undefined over TCP, where TLS says who). */
  readonly serverCheck: ResolvedServerCheck | undefined
  readonly tls: ResolvedClientTls | undefined
  readonly acknowledgePlaintext: boolean
  readonly headers: Readonly<Record<string, string>>
  readonly logger: Logger
}

const MAX_RETRIES = 100
const MAX_RETRY_WINDOW_MS = 600_000

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
  const fromEnv = value === undefined && env[ENV.tlsCa] !== undefined
  if (value === undefined && !fromEnv) return undefined
  rejectUnknown('tls', value, ['ca', 'cert', 'key', 'servername', 'pin', 'minVersion', 'insecureSkipVerify', 'watch', 'serverId'])
  const v = value ?? {}
  const ca = pick(v.ca, env, ENV.tlsCa)
  const cert = pick(v.cert, env, ENV.tlsCert)
  const key = pick(v.key, env, ENV.tlsKey)
  const pinRaw = pick(v.pin, env, ENV.tlsPin)
  const pins = pinRaw === undefined ? [] : parseStringList('tls.pin', pinRaw).map((p) => p.replace(/^sha256\/\//, ''))
  for (const [i, p] of pins.entries()) {
    if (Buffer.from(p, 'base64').length !== 32) {
      throw new InvalidOptionError(`tls.pin[${i}]`, `must be the base64 SHA-256 of a SubjectPublicKeyInfo (naaccord-ipc certs inspect prints it), got "${p}"`)
    }
  }
  const insecureSkipVerify = parseBoolean('tls.insecureSkipVerify', v.insecureSkipVerify ?? false)
  if (insecureSkipVerify && env.NODE_ENV === 'production') {
    throw new InvalidOptionError('tls.insecureSkipVerify', 'is refused when NODE_ENV=production; give tls.ca (and tls.pin) instead')
  }
  if (ca === undefined && !insecureSkipVerify) {
    throw new InvalidOptionError('tls.ca', 'is required to verify the server (the CA that signed its certificate); naaccord-ipc never trusts the system store for internal services')
  }
  if ((cert === undefined) !== (key === undefined)) {
    throw new InvalidOptionError(cert === undefined ? 'tls.cert' : 'tls.key', 'tls.cert and tls.key go together for mutual TLS')
  }
  const minVersion = v.minVersion ?? CLIENT_DEFAULTS.minVersion
  if (minVersion !== 'TLSv1.3' && minVersion !== 'TLSv1.2') throw new InvalidOptionError('tls.minVersion', `must be "TLSv1.3" or "TLSv1.2", got ${JSON.stringify(minVersion)}`)
  return Object.freeze({
    ca: ca as PemSource | undefined,
    cert: cert as PemSource | undefined,
    key: key as PemSource | undefined,
    servername: parseString('tls.servername', pick(v.servername, env, ENV.tlsServername) ?? defaultServername),
    pins: Object.freeze(pins),
    minVersion,
    insecureSkipVerify,
    watch: v.watch === undefined ? undefined : parseBoolean('tls.watch', v.watch),
    serverId: resolveServerId(v.serverId, env),
  })
}

/**
 * Normalise the options of `createClient()` once: explicit option, then environment variable,
 * then `CLIENT_DEFAULTS`. Unknown or malformed options throw `IPC_INVALID_OPTION`.
 *
 * @example
 * const opts = resolveClientOptions({ socketPath: '/run/naaccord/service.sock', retries: 3 })
 */
export function resolveClientOptions(options: ClientOptions = {}, env: Env = process.env): ResolvedClientOptions {
  rejectUnknown('options', options, KNOWN)
  if (options.socketPath !== undefined && options.url !== undefined) {
    throw new InvalidOptionError('url', 'give socketPath or url, not both')
  }
  // Which one wins must never depend on which variable a deployment forgot to unset.
  if (options.socketPath === undefined && options.url === undefined && pick(undefined, env, ENV.url) !== undefined && pick(undefined, env, ENV.socketPath) !== undefined) {
    throw new InvalidOptionError(
      `${ENV.socketPath}/${ENV.url}`,
      `both are set (${ENV.socketPath}=${env[ENV.socketPath]}, ${ENV.url}=${env[ENV.url]}); unset the one you do not mean, or pass socketPath or url explicitly`,
    )
  }
  const urlRaw = options.socketPath === undefined ? pick(options.url, env, ENV.url) : undefined
  let transport: 'unix' | 'tcp'
  let socketPath: string | undefined
  let host: string | undefined
  let port: number | undefined
  let origin: string
  let target: string
  let tls: ResolvedClientTls | undefined
  if (urlRaw !== undefined) {
    let url: URL
    try {
      url = new URL(parseString('url', urlRaw))
    } catch (cause) {
      throw new InvalidOptionError('url', `is not a valid URL: ${String(urlRaw)}`, { cause })
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new InvalidOptionError('url', `must be http: or https:, got ${url.protocol}`)
    transport = 'tcp'
    host = url.hostname
    port = Number(url.port || (url.protocol === 'https:' ? 443 : 80))
    tls = resolveTls(options.tls, env, host.replace(/^\[|\]$/g, ''))
    if (url.protocol === 'https:' && !tls) throw new InvalidOptionError('tls', `is required for ${url.origin}: give tls.ca (and cert/key for mutual TLS)`)
    if (url.protocol === 'http:' && tls) throw new InvalidOptionError('url', `uses http: but tls options are set; use https://${url.host}`)
    if (url.protocol === 'http:' && !isLoopback(host) && !parseBoolean('allowPlaintextRemote', options.allowPlaintextRemote ?? false)) {
      throw new TlsRequiredError(
        `plaintext HTTP to ${url.host}, which is not loopback, would send health data in clear text; use https:// with tls, or allowPlaintextRemote: true to accept that`,
      )
    }
    origin = url.origin
    target = url.origin
  } else {
    transport = 'unix'
    const raw = parseString('socketPath', pick(options.socketPath, env, ENV.socketPath) ?? CLIENT_DEFAULTS.socketPath)
    socketPath = path.resolve(raw)
    if (Buffer.byteLength(socketPath) > SUN_PATH_MAX) throw new SocketPathTooLongError(socketPath, SUN_PATH_MAX)
    tls = resolveTls(options.tls, env, CLIENT_DEFAULTS.socketServername)
    origin = tls ? `https://${tls.servername}` : 'http://localhost'
    target = socketPath
  }

  if (transport === 'tcp' && (options.expectServer || pick(undefined, env, ENV.expectServerUid) !== undefined)) {
    throw new InvalidOptionError('expectServer', 'checks kernel credentials and works over the Unix socket only; over TCP use tls.pin')
  }
  const serverCheck = transport === 'unix' ? resolveServerCheck(options.expectServer, env) : undefined

  const headers = options.headers ?? {}
  if (typeof headers !== 'object') throw new InvalidOptionError('headers', 'must be an object of header names to strings')
  const d = CLIENT_DEFAULTS
  return Object.freeze({
    transport,
    socketPath,
    origin,
    host,
    port,
    target,
    connections: parseInteger('connections', pick(options.connections, env, ENV.connections) ?? d.connections, 1, 1024),
    timeoutMs: parseInteger('timeoutMs', pick(options.timeoutMs, env, ENV.timeoutMs) ?? d.timeoutMs, 1),
    connectTimeoutMs: parseInteger('connectTimeoutMs', pick(options.connectTimeoutMs, env, ENV.connectTimeoutMs) ?? d.connectTimeoutMs, 1),
    retries: parseInteger('retries', pick(options.retries, env, ENV.retries) ?? d.retries, 0, MAX_RETRIES),
    retryWindowMs: parseInteger('retryWindowMs', pick(options.retryWindowMs, env, ENV.retryWindowMs) ?? d.retryWindowMs, 0, MAX_RETRY_WINDOW_MS),
    retryDelayMs: parseInteger('retryDelayMs', options.retryDelayMs ?? d.retryDelayMs, 0),
    maxRetryDelayMs: parseInteger('maxRetryDelayMs', options.maxRetryDelayMs ?? d.maxRetryDelayMs, 0),
    keepAliveTimeoutMs: parseInteger('keepAliveTimeoutMs', options.keepAliveTimeoutMs ?? d.keepAliveTimeoutMs, 1),
    serverCheck,
    tls,
    acknowledgePlaintext: parseBoolean('acknowledgePlaintext', options.acknowledgePlaintext ?? d.acknowledgePlaintext),
    headers: Object.freeze({ ...headers }),
    logger: resolveLogger(options.logger, 'ipc-client'),
  })
}
