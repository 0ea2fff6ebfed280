/**
 * Every failure of naaccord-ipc has one error class with a stable `code`. Messages name the
 * path, uid, option or certificate involved and say what to do; tests assert on `code` only.
 * The table of codes is mirrored in the README ("Error codes") and checked by errors.test.ts.
 */

export interface IpcErrorOptions {
  cause?: unknown
}

/**
 * The brand every IpcError carries on its prototype. `Symbol.for` is shared across module copies,
 * so an error made by a second installed copy of this package is still recognised (the way
 * undici brands its errors in lib/core/errors.js).
 */
const kIpcError = Symbol.for('naaccord.ipc.error')

/**
 * The base of every naaccord-ipc error. `instanceof` works across two installed copies of the
 * package (branded, see `Symbol.hasInstance` below), `code` is stable and narrows in a `switch`,
 * and `statusCode` is the HTTP status a gateway should answer when this error ends a request.
 *
 * @example
 * try { await services.get('/reports/42') } catch (err) {
 *   if (isIpcError(err)) res.status(err.statusCode).json({ code: err.code })
 * }
 */
export abstract class IpcError extends Error {
  abstract readonly code: string
  /** The HTTP status a gateway should answer with (500 when nothing more precise fits). */
  readonly statusCode: number = 500
  /** Set by the client on the error it finally throws: how many attempts were made. */
  declare attempts?: number
  /** Set by the client on the error it finally throws: ms from the first attempt to giving up. */
  declare elapsedMs?: number

  constructor(message: string, options?: IpcErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
  }

  override toString(): string {
    return `${this.code}: ${this.message}`
  }

  /**
   * Branded check: any object carrying the brand is an IpcError; for a concrete class, its
   * `code` must also match the class's static `code`, so `err instanceof TimeoutError` holds
   * for a TimeoutError made by another copy of this module.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null || (value as { [kIpcError]?: unknown })[kIpcError] !== true) return false
    if (this === IpcError) return true
    const code = (this as unknown as { code?: unknown }).code
    if (typeof code === 'string') return (value as { code?: unknown }).code === code
    return Function.prototype[Symbol.hasInstance].call(this, value)
  }
}
Object.defineProperty(IpcError.prototype, kIpcError, { value: true })

/** An option (or its environment variable) is unknown or malformed. */
export class InvalidOptionError extends IpcError {
  static readonly code = 'IPC_INVALID_OPTION'
  readonly code = InvalidOptionError.code
  constructor(
    readonly option: string,
    message: string,
    options?: IpcErrorOptions,
  ) {
    super(`${option}: ${message}`, options)
  }
}

/** unix(7): the socket path does not fit in sun_path (107 bytes plus NUL on Linux). */
export class SocketPathTooLongError extends IpcError {
  static readonly code = 'IPC_SOCKET_PATH_TOO_LONG'
  readonly code = SocketPathTooLongError.code
  constructor(
    readonly socketPath: string,
    readonly limit: number,
    why = '',
  ) {
    super(
      `socket path ${socketPath} is ${Buffer.byteLength(socketPath)} bytes; this platform allows at most ${limit}${why}. ` +
        'Choose a shorter socketPath (e.g. under /run/naaccord/).',
    )
  }
}

/** The socket path or its folder is not safe to use: wrong owner, writable by others, a symlink, or not a socket. */
export class UnsafeSocketPathError extends IpcError {
  static readonly code = 'IPC_UNSAFE_SOCKET_PATH'
  readonly code = UnsafeSocketPathError.code
  constructor(
    /** The path component refused: the folder, link or file, not always the socket itself. */
    readonly path: string,
    reason: string,
    options?: IpcErrorOptions,
    /** The uid that owns the refused component, when known. */
    readonly owner?: number,
  ) {
    super(`${path}: ${reason}`, options)
  }
}

/**
 * A file read or trusted through a path (the supervisor's pid file, the addon override, a
 * certificate or key) or a folder or link on its way could have been placed or changed by
 * another user: the message names the component, its owner and mode, and the option to change.
 */
export class UnsafePathError extends IpcError {
  static readonly code = 'IPC_UNSAFE_PATH'
  readonly code = UnsafePathError.code
  constructor(
    /** The path component refused. */
    readonly path: string,
    reason: string,
    /** The option, flag or variable that named the path. */
    readonly option: string,
    /** The uid that owns the refused component, when known. */
    readonly owner?: number,
    options?: IpcErrorOptions,
  ) {
    super(`${path} (${option}): ${reason}`, options)
  }
}

/**
 * The socket's folder, lock file or socket cannot be created or opened by this process
 * (EACCES, EPERM, EROFS, ENOSPC...): the message names the path, its owner and mode, our uid and the fix.
 */
export class SocketPathAccessError extends IpcError {
  static readonly code = 'IPC_SOCKET_PATH_ACCESS'
  readonly code = SocketPathAccessError.code
  constructor(
    readonly path: string,
    reason: string,
    options?: IpcErrorOptions,
  ) {
    super(`${path}: ${reason}`, options)
  }
}

/** A live server already answers on the socket path, or another server holds its lock. */
export class SocketInUseError extends IpcError {
  static readonly code = 'IPC_SOCKET_IN_USE'
  readonly code = SocketInUseError.code
  constructor(
    readonly socketPath: string,
    readonly pid: number | undefined,
    detail = 'a live server already listens on',
    options?: IpcErrorOptions,
  ) {
    super(
      `${detail} ${socketPath}${pid === undefined ? '' : ` (pid ${pid})`}; stop it or choose another socketPath`,
      options,
    )
  }
}

/** The kernel's peer credentials cannot be read: the native addon is missing or the platform is unsupported. */
export class PeerCredentialsUnavailableError extends IpcError {
  static readonly code = 'IPC_PEER_CREDENTIALS_UNAVAILABLE'
  readonly code = PeerCredentialsUnavailableError.code
  constructor(message: string, options?: IpcErrorOptions) {
    super(message, options)
  }
}

/** The process at the other end of the socket is not the one expected (client side: `expectServer`). */
export class PeerRejectedError extends IpcError {
  static readonly code = 'IPC_PEER_REJECTED'
  readonly code = PeerRejectedError.code
  override readonly statusCode = 502
  constructor(message: string, options?: IpcErrorOptions) {
    super(message, options)
  }
}

/** No server answers: the socket file is missing, or the connection was refused. */
export class ServiceUnavailableError extends IpcError {
  static readonly code = 'IPC_SERVICE_UNAVAILABLE'
  readonly code = ServiceUnavailableError.code
  override readonly statusCode = 503
  constructor(
    readonly target: string,
    reason: string,
    options?: IpcErrorOptions,
  ) {
    super(`services at ${target} are unavailable: ${reason}`, options)
  }
}

/** The connection closed or failed after it was established, before a full response arrived. */
export class ConnectionLostError extends IpcError {
  static readonly code = 'IPC_CONNECTION_LOST'
  readonly code = ConnectionLostError.code
  override readonly statusCode = 502
  constructor(
    readonly target: string,
    reason: string,
    options?: IpcErrorOptions,
  ) {
    super(`connection to ${target} was lost: ${reason}`, options)
  }
}

/** connect() was refused by file permissions (EACCES / EPERM). */
export class PermissionDeniedError extends IpcError {
  static readonly code = 'IPC_PERMISSION_DENIED'
  readonly code = PermissionDeniedError.code
  override readonly statusCode = 502
  constructor(
    readonly socketPath: string,
    options?: IpcErrorOptions,
  ) {
    super(
      `permission denied connecting to ${socketPath} as uid ${process.getuid?.() ?? '?'}: ` +
        'run the client as the socket owner, or give it the socketGroup and socketMode 0o660 on the server',
      options,
    )
  }
}

/** A request (connect, headers or body) took longer than its timeout. */
export class TimeoutError extends IpcError {
  static readonly code = 'IPC_TIMEOUT'
  readonly code = TimeoutError.code
  override readonly statusCode = 504
  constructor(
    readonly target: string,
    readonly timeoutMs: number,
    what = 'request',
    options?: IpcErrorOptions,
  ) {
    super(`${what} to ${target} timed out after ${timeoutMs} ms; raise timeoutMs or check the services server`, options)
  }
}

/** The server answered with a non-2xx status (thrown by the JSON helpers get/post/...). */
export class HttpStatusError extends IpcError {
  static readonly code = 'IPC_HTTP_STATUS'
  readonly code = HttpStatusError.code
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string | string[] | undefined> = {},
  ) {
    // The query string may carry identifiers: the message keeps the path only.
    super(`${method} ${path.split('?', 1)[0]} answered ${status}`)
    // A gateway passes the services' 4xx through (the caller's problem); anything else is 502.
    this.statusCode = status >= 400 && status < 500 ? status : 502
  }
  override readonly statusCode: number
}

/** The client was closed or destroyed before the request. */
export class ClientClosedError extends IpcError {
  static readonly code = 'IPC_CLIENT_CLOSED'
  readonly code = ClientClosedError.code
  override readonly statusCode = 503
  constructor(
    readonly target: string,
    options?: IpcErrorOptions,
  ) {
    super(`the client for ${target} is closed; create a new client`, options)
  }
}

/** A TLS option (certificate, key, CA) cannot be read or is inconsistent. */
export class TlsConfigError extends IpcError {
  static readonly code = 'IPC_TLS_CONFIG'
  readonly code = TlsConfigError.code
  constructor(message: string, options?: IpcErrorOptions) {
    super(message, options)
  }
}

/** Plaintext where TLS is required (TCP without TLS, not opted out by name). */
export class TlsRequiredError extends IpcError {
  static readonly code = 'IPC_TLS_REQUIRED'
  readonly code = TlsRequiredError.code
  constructor(message: string) {
    super(message)
  }
}

interface CertificateFacts {
  subject?: string | undefined
  validTo?: string | undefined
}

function describe(facts: CertificateFacts | undefined): string {
  if (!facts?.subject && !facts?.validTo) return ''
  return ` (certificate ${facts.subject ?? 'unknown subject'}${facts.validTo ? `, valid to ${facts.validTo}` : ''})`
}

abstract class TlsPeerError extends IpcError {
  override readonly statusCode = 502
  readonly subject: string | undefined
  readonly validTo: string | undefined
  constructor(message: string, facts?: CertificateFacts, options?: IpcErrorOptions) {
    super(`${message}${describe(facts)}`, options)
    this.subject = facts?.subject
    this.validTo = facts?.validTo
  }
}

/** The peer's certificate does not chain to a trusted CA. */
export class TlsUntrustedError extends TlsPeerError {
  static readonly code = 'IPC_TLS_UNTRUSTED'
  readonly code = TlsUntrustedError.code
}

/** The peer's certificate has expired or is not yet valid. */
export class TlsExpiredError extends TlsPeerError {
  static readonly code = 'IPC_TLS_EXPIRED'
  readonly code = TlsExpiredError.code
}

/** The server's certificate does not name the host (servername) the client asked for. */
export class TlsHostnameError extends TlsPeerError {
  static readonly code = 'IPC_TLS_HOSTNAME'
  readonly code = TlsHostnameError.code
}

/** The server's public key does not match any configured pin. */
export class TlsPinMismatchError extends TlsPeerError {
  static readonly code = 'IPC_TLS_PIN_MISMATCH'
  readonly code = TlsPinMismatchError.code
}

/** The server requires a client certificate and none (or an unacceptable one) was presented. */
export class TlsClientCertRequiredError extends TlsPeerError {
  static readonly code = 'IPC_TLS_CLIENT_CERT_REQUIRED'
  readonly code = TlsClientCertRequiredError.code
}

/**
 * A socket inherited through socket activation (LISTEN_FDS, from systemd or `naaccord-ipc run`)
 * cannot be used: it is not a listening AF_UNIX stream socket, or it is bound to another path
 * than the configured one, or none of the inherited sockets is at the configured path.
 */
export class InheritedSocketError extends IpcError {
  static readonly code = 'IPC_INHERITED_SOCKET'
  readonly code = InheritedSocketError.code
  constructor(
    readonly socketPath: string,
    readonly fd: number | undefined,
    reason: string,
    options?: IpcErrorOptions,
  ) {
    super(`${fd === undefined ? 'socket activation' : `inherited fd ${fd}`} for ${socketPath}: ${reason}`, options)
  }
}

/** The supervisor (`naaccord-ipc run` / `reload`) cannot do what was asked: no app command, no running supervisor, an app that never became ready. */
export class SupervisorError extends IpcError {
  static readonly code = 'IPC_SUPERVISOR'
  readonly code = SupervisorError.code
}

/** Every error code, mapped to its class. */
export const ERROR_CODES = {
  IPC_INVALID_OPTION: InvalidOptionError,
  IPC_SOCKET_PATH_TOO_LONG: SocketPathTooLongError,
  IPC_UNSAFE_SOCKET_PATH: UnsafeSocketPathError,
  IPC_UNSAFE_PATH: UnsafePathError,
  IPC_SOCKET_PATH_ACCESS: SocketPathAccessError,
  IPC_SOCKET_IN_USE: SocketInUseError,
  IPC_PEER_CREDENTIALS_UNAVAILABLE: PeerCredentialsUnavailableError,
  IPC_PEER_REJECTED: PeerRejectedError,
  IPC_SERVICE_UNAVAILABLE: ServiceUnavailableError,
  IPC_CONNECTION_LOST: ConnectionLostError,
  IPC_PERMISSION_DENIED: PermissionDeniedError,
  IPC_TIMEOUT: TimeoutError,
  IPC_HTTP_STATUS: HttpStatusError,
  IPC_CLIENT_CLOSED: ClientClosedError,
  IPC_TLS_CONFIG: TlsConfigError,
  IPC_TLS_REQUIRED: TlsRequiredError,
  IPC_TLS_UNTRUSTED: TlsUntrustedError,
  IPC_TLS_EXPIRED: TlsExpiredError,
  IPC_TLS_HOSTNAME: TlsHostnameError,
  IPC_TLS_PIN_MISMATCH: TlsPinMismatchError,
  IPC_TLS_CLIENT_CERT_REQUIRED: TlsClientCertRequiredError,
  IPC_INHERITED_SOCKET: InheritedSocketError,
  IPC_SUPERVISOR: SupervisorError,
} as const

export type IpcErrorCode = keyof typeof ERROR_CODES

/** The error class behind a code: `IpcErrorOf<'IPC_TIMEOUT'>` is `TimeoutError`. */
export type IpcErrorOf<C extends IpcErrorCode> = InstanceType<(typeof ERROR_CODES)[C]>

/** Any error of this package: a `switch (err.code)` narrows it to the class of each code. */
export type AnyIpcError = IpcErrorOf<IpcErrorCode>

/**
 * True when `err` is one of ours (made by any installed copy of this package), optionally
 * with the given code, in which case it narrows to that class.
 *
 * @example
 * if (isIpcError(err, 'IPC_HTTP_STATUS')) console.log(err.status, err.body)
 * else if (isIpcError(err)) res.status(err.statusCode).json({ code: err.code })
 */
export function isIpcError(err: unknown): err is IpcError
export function isIpcError<C extends IpcErrorCode>(err: unknown, code: C): err is IpcErrorOf<C>
export function isIpcError(err: unknown, code?: IpcErrorCode): boolean {
  return err instanceof IpcError && (code === undefined || err.code === code)
}
