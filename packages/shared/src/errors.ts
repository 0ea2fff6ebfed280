/**
 * Every failure of naaccord-ipc has one error class with a stable `code`. Messages name the
 * path, uid, option or certificate involved and say what to do; tests assert on `code` only.
 * The table of codes is mirrored in the README ("Error codes") and checked by errors.test.ts.
 */

export interface IpcErrorOptions {
  cause?: unknown
}

export abstract class IpcError extends Error {
  abstract readonly code: string

  constructor(message: string, options?: IpcErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
  }

  override toString(): string {
    return `${this.code}: ${this.message}`
  }
}

/** An option (or its environment variable) is unknown or malformed. */
export class InvalidOptionError extends IpcError {
  readonly code = 'IPC_INVALID_OPTION'
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
  readonly code = 'IPC_SOCKET_PATH_TOO_LONG'
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
  readonly code = 'IPC_UNSAFE_SOCKET_PATH'
  constructor(
    readonly path: string,
    reason: string,
    options?: IpcErrorOptions,
  ) {
    super(`${path}: ${reason}`, options)
  }
}

/**
 * The socket's folder, lock file or socket cannot be created or opened by this process
 * (EACCES, EPERM, EROFS, ENOSPC...): the message names the path, its owner and mode, our uid and the fix.
 */
export class SocketPathAccessError extends IpcError {
  readonly code = 'IPC_SOCKET_PATH_ACCESS'
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
  readonly code = 'IPC_SOCKET_IN_USE'
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
  readonly code = 'IPC_PEER_CREDENTIALS_UNAVAILABLE'
  constructor(message: string, options?: IpcErrorOptions) {
    super(message, options)
  }
}

/** The process at the other end of the socket is not the one expected (client side: `expectServer`). */
export class PeerRejectedError extends IpcError {
  readonly code = 'IPC_PEER_REJECTED'
  constructor(message: string, options?: IpcErrorOptions) {
    super(message, options)
  }
}

/** No server answers: the socket file is missing, or the connection was refused. */
export class ServiceUnavailableError extends IpcError {
  readonly code = 'IPC_SERVICE_UNAVAILABLE'
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
  readonly code = 'IPC_CONNECTION_LOST'
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
  readonly code = 'IPC_PERMISSION_DENIED'
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
  readonly code = 'IPC_TIMEOUT'
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
  readonly code = 'IPC_HTTP_STATUS'
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string | string[] | undefined> = {},
  ) {
    // The query string may carry identifiers: the message keeps the path only.
    super(`${method} ${path.split('?', 1)[0]} answered ${status}`)
  }
}

/** The client was closed or destroyed before the request. */
export class ClientClosedError extends IpcError {
  readonly code = 'IPC_CLIENT_CLOSED'
  constructor(readonly target: string) {
    super(`the client for ${target} is closed; create a new client`)
  }
}

/** A TLS option (certificate, key, CA) cannot be read or is inconsistent. */
export class TlsConfigError extends IpcError {
  readonly code = 'IPC_TLS_CONFIG'
  constructor(message: string, options?: IpcErrorOptions) {
    super(message, options)
  }
}

/** Plaintext where TLS is required (TCP without TLS, not opted out by name). */
export class TlsRequiredError extends IpcError {
  readonly code = 'IPC_TLS_REQUIRED'
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
  readonly code = 'IPC_TLS_UNTRUSTED'
}

/** The peer's certificate has expired or is not yet valid. */
export class TlsExpiredError extends TlsPeerError {
  readonly code = 'IPC_TLS_EXPIRED'
}

/** The server's certificate does not name the host (servername) the client asked for. */
export class TlsHostnameError extends TlsPeerError {
  readonly code = 'IPC_TLS_HOSTNAME'
}

/** The server's public key does not match any configured pin. */
export class TlsPinMismatchError extends TlsPeerError {
  readonly code = 'IPC_TLS_PIN_MISMATCH'
}

/** The server requires a client certificate and none (or an unacceptable one) was presented. */
export class TlsClientCertRequiredError extends TlsPeerError {
  readonly code = 'IPC_TLS_CLIENT_CERT_REQUIRED'
}

/**
 * A socket inherited through socket activation (LISTEN_FDS, from systemd or `naaccord-ipc run`)
 * cannot be used: it is not a listening AF_UNIX stream socket, or it is bound to another path
 * than the configured one, or none of the inherited sockets is at the configured path.
 */
export class InheritedSocketError extends IpcError {
  readonly code = 'IPC_INHERITED_SOCKET'
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
  readonly code = 'IPC_SUPERVISOR'
}

/** Every error code, mapped to its class. */
export const ERROR_CODES = {
  IPC_INVALID_OPTION: InvalidOptionError,
  IPC_SOCKET_PATH_TOO_LONG: SocketPathTooLongError,
  IPC_UNSAFE_SOCKET_PATH: UnsafeSocketPathError,
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

/** True when `err` is one of ours, optionally with the given code. */
export function isIpcError(err: unknown, code?: IpcErrorCode): err is IpcError {
  return err instanceof IpcError && (code === undefined || err.code === code)
}
