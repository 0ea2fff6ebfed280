import type { IpcErrorCode } from './error-table.js'
import { defineIpcError, IpcError, type IpcErrorOptions } from './ipc-error.js'

/**
 * Every failure of naaccord-ipc has one error class with a stable `code`, made from its row of the
 * one code table (error-table.ts) by `defineIpcError`. Messages name the path, uid, option or
 * certificate involved and say what to do; tests assert on `code` only. Each class is a value
 * (construct it with `new`) and a type of the same name (its instances).
 */

export { ERROR_TABLE, type ErrorRow, type IpcErrorCode } from './error-table.js'
export { defineIpcError, IpcError, type ErrorParts, type IpcErrorClass, type IpcErrorInstance, type IpcErrorOptions } from './ipc-error.js'

/** For the classes whose whole message is given by the thrower. */
const messageOnly = (message: string, options?: IpcErrorOptions) => ({ message, options })

/** An option (or its environment variable) is unknown or malformed. */
export const InvalidOptionError = defineIpcError('IPC_INVALID_OPTION', (option: string, message: string, options?: IpcErrorOptions) => ({
  message: `${option}: ${message}`,
  options,
  fields: { option },
}))
export type InvalidOptionError = InstanceType<typeof InvalidOptionError>

/** unix(7): the socket path does not fit in sun_path (107 bytes plus NUL on Linux). */
export const SocketPathTooLongError = defineIpcError('IPC_SOCKET_PATH_TOO_LONG', (socketPath: string, limit: number, why = '') => ({
  message:
    `socket path ${socketPath} is ${Buffer.byteLength(socketPath)} bytes; this platform allows at most ${limit}${why}. ` +
    'Choose a shorter socketPath (e.g. under /run/naaccord/).',
  fields: { socketPath, limit },
}))
export type SocketPathTooLongError = InstanceType<typeof SocketPathTooLongError>

interface RefusedComponent {
  /** The path component refused: the folder, link or file, not always the socket itself. */
  path: string
  /** The uid that owns the refused component, when known. */
  owner: number | undefined
}

/** The socket path or its folder is not safe to use: wrong owner, writable by others, a symlink, or not a socket. */
export const UnsafeSocketPathError = defineIpcError(
  'IPC_UNSAFE_SOCKET_PATH',
  (path: string, reason: string, options?: IpcErrorOptions, owner?: number) => ({
    message: `${path}: ${reason}`,
    options,
    fields: { path, owner } as RefusedComponent,
  }),
)
export type UnsafeSocketPathError = InstanceType<typeof UnsafeSocketPathError>

/**
 * A file read or trusted through a path (the supervisor's pid file, the addon override, a
 * certificate or key) or a folder or link on its way could have been placed or changed by
 * another user: the message names the component, its owner and mode, and the option to change.
 */
export const UnsafePathError = defineIpcError(
  'IPC_UNSAFE_PATH',
  (path: string, reason: string, option: string, owner?: number, options?: IpcErrorOptions) => ({
    message: `${path} (${option}): ${reason}`,
    options,
    fields: { path, option, owner } as RefusedComponent & {
      /** The option, flag or variable that named the path. */
      option: string
    },
  }),
)
export type UnsafePathError = InstanceType<typeof UnsafePathError>

/**
 * The socket's folder, lock file or socket cannot be created or opened by this process
 * (EACCES, EPERM, EROFS, ENOSPC...): the message names the path, its owner and mode, our uid and the fix.
 */
export const SocketPathAccessError = defineIpcError('IPC_SOCKET_PATH_ACCESS', (path: string, reason: string, options?: IpcErrorOptions) => ({
  message: `${path}: ${reason}`,
  options,
  fields: { path },
}))
export type SocketPathAccessError = InstanceType<typeof SocketPathAccessError>

/** A live server already answers on the socket path, or another server holds its lock. */
export const SocketInUseError = defineIpcError(
  'IPC_SOCKET_IN_USE',
  (socketPath: string, pid: number | undefined, detail = 'a live server already listens on', options?: IpcErrorOptions) => ({
    message: `${detail} ${socketPath}${pid === undefined ? '' : ` (pid ${pid})`}; stop it or choose another socketPath`,
    options,
    fields: { socketPath, pid },
  }),
)
export type SocketInUseError = InstanceType<typeof SocketInUseError>

/** A TCP port cannot be listened on (EADDRINUSE, EACCES, EADDRNOTAVAIL): the message names the address and the fix. */
export const TcpListenError = defineIpcError('IPC_TCP_LISTEN', (address: string, reason: string, options?: IpcErrorOptions) => ({
  message: `cannot listen on ${address}: ${reason}`,
  options,
  fields: { address },
}))
export type TcpListenError = InstanceType<typeof TcpListenError>

/** The kernel's peer credentials cannot be read: the native addon is missing or the platform is unsupported. */
export const PeerCredentialsUnavailableError = defineIpcError('IPC_PEER_CREDENTIALS_UNAVAILABLE', messageOnly)
export type PeerCredentialsUnavailableError = InstanceType<typeof PeerCredentialsUnavailableError>

/** The process at the other end of the socket is not the one expected (client side: `expectServer`). */
export const PeerRejectedError = defineIpcError('IPC_PEER_REJECTED', messageOnly)
export type PeerRejectedError = InstanceType<typeof PeerRejectedError>

/** sd_notify(3) could not send, or the addon that sends is missing (thrown by @naaccord/ipc-peercred). */
export const SystemdNotifyError = defineIpcError('IPC_SYSTEMD_NOTIFY', messageOnly)
export type SystemdNotifyError = InstanceType<typeof SystemdNotifyError>

/** flock(2) cannot be used: the native addon that brings it is missing or too old (thrown by @naaccord/ipc-peercred). */
export const FlockUnavailableError = defineIpcError('IPC_FLOCK_UNAVAILABLE', messageOnly)
export type FlockUnavailableError = InstanceType<typeof FlockUnavailableError>

/** No server answers: the socket file is missing, or the connection was refused. */
export const ServiceUnavailableError = defineIpcError('IPC_SERVICE_UNAVAILABLE', (target: string, reason: string, options?: IpcErrorOptions) => ({
  message: `services at ${target} are unavailable: ${reason}`,
  options,
  fields: { target },
}))
export type ServiceUnavailableError = InstanceType<typeof ServiceUnavailableError>

/** The connection closed or failed after it was established, before a full response arrived. */
export const ConnectionLostError = defineIpcError('IPC_CONNECTION_LOST', (target: string, reason: string, options?: IpcErrorOptions) => ({
  message: `connection to ${target} was lost: ${reason}`,
  options,
  fields: { target },
}))
export type ConnectionLostError = InstanceType<typeof ConnectionLostError>

/** The answer was not HTTP/1.1: undici's parser refused it (not retried: the same server would answer the same). */
export const BadResponseError = defineIpcError('IPC_BAD_RESPONSE', (target: string, reason: string, options?: IpcErrorOptions) => ({
  message: `${target} answered with something that is not HTTP/1.1 (${reason}): is another program listening there?`,
  options,
  fields: { target },
}))
export type BadResponseError = InstanceType<typeof BadResponseError>

/** connect() was refused by file permissions (EACCES / EPERM). */
export const PermissionDeniedError = defineIpcError('IPC_PERMISSION_DENIED', (socketPath: string, options?: IpcErrorOptions) => ({
  message:
    `permission denied connecting to ${socketPath} as uid ${process.getuid?.() ?? '?'}: ` +
    'run the client as the socket owner, or give it the socketGroup and socketMode 0o660 on the server',
  options,
  fields: { socketPath },
}))
export type PermissionDeniedError = InstanceType<typeof PermissionDeniedError>

/** A request (connect, headers or body) took longer than its timeout. */
export const TimeoutError = defineIpcError('IPC_TIMEOUT', (target: string, timeoutMs: number, what = 'request', options?: IpcErrorOptions) => ({
  message: `${what} to ${target} timed out after ${timeoutMs} ms; raise timeoutMs or check the services server`,
  options,
  fields: { target, timeoutMs },
}))
export type TimeoutError = InstanceType<typeof TimeoutError>

/** The server answered with a non-2xx status (thrown by the JSON helpers get/post/...). */
export const HttpStatusError = defineIpcError(
  'IPC_HTTP_STATUS',
  (method: string, path: string, status: number, body: unknown, headers: Record<string, string | string[] | undefined> = {}) => ({
    // The query string may carry identifiers: the message keeps the path only.
    message: `${method} ${path.split('?', 1)[0]} answered ${status}`,
    fields: { method, path, status, body, headers },
    // A gateway passes the services' 4xx through (the caller's problem); anything else is 502.
    statusCode: status >= 400 && status < 500 ? status : 502,
  }),
)
export type HttpStatusError = InstanceType<typeof HttpStatusError>

/** The client was closed or destroyed before the request. */
export const ClientClosedError = defineIpcError('IPC_CLIENT_CLOSED', (target: string, options?: IpcErrorOptions) => ({
  message: `the client for ${target} is closed; create a new client`,
  options,
  fields: { target },
}))
export type ClientClosedError = InstanceType<typeof ClientClosedError>

/**
 * The caller aborted the request without giving a reason (undici aborts so when the response
 * body is destroyed before its end); an abort with a reason rejects with that reason.
 */
export const AbortedError = defineIpcError('IPC_ABORTED', (target: string, options?: IpcErrorOptions) => ({
  message: `the request to ${target} was aborted by its caller`,
  options,
  fields: { target },
}))
export type AbortedError = InstanceType<typeof AbortedError>

/** A TLS option (certificate, key, CA) cannot be read or is inconsistent. */
export const TlsConfigError = defineIpcError('IPC_TLS_CONFIG', messageOnly)
export type TlsConfigError = InstanceType<typeof TlsConfigError>

/** Plaintext where TLS is required (TCP without TLS, not opted out by name). */
export const TlsRequiredError = defineIpcError('IPC_TLS_REQUIRED', (message: string) => ({ message }))
export type TlsRequiredError = InstanceType<typeof TlsRequiredError>

interface CertificateFacts {
  subject?: string | undefined
  validTo?: string | undefined
}

function describe(facts: CertificateFacts | undefined): string {
  if (!facts?.subject && !facts?.validTo) return ''
  return ` (certificate ${facts.subject ?? 'unknown subject'}${facts.validTo ? `, valid to ${facts.validTo}` : ''})`
}

/** The parts of the TLS errors about the peer's certificate: the message names its subject and expiry. */
function tlsPeer(message: string, facts?: CertificateFacts, options?: IpcErrorOptions) {
  return {
    message: `${message}${describe(facts)}`,
    options,
    fields: { subject: facts?.subject, validTo: facts?.validTo },
  }
}

/** The peer's certificate does not chain to a trusted CA. */
export const TlsUntrustedError = defineIpcError('IPC_TLS_UNTRUSTED', tlsPeer)
export type TlsUntrustedError = InstanceType<typeof TlsUntrustedError>

/** The peer's certificate has expired or is not yet valid. */
export const TlsExpiredError = defineIpcError('IPC_TLS_EXPIRED', tlsPeer)
export type TlsExpiredError = InstanceType<typeof TlsExpiredError>

/** The server's certificate does not name the host (servername) the client asked for. */
export const TlsHostnameError = defineIpcError('IPC_TLS_HOSTNAME', tlsPeer)
export type TlsHostnameError = InstanceType<typeof TlsHostnameError>

/** The server's public key does not match any configured pin. */
export const TlsPinMismatchError = defineIpcError('IPC_TLS_PIN_MISMATCH', tlsPeer)
export type TlsPinMismatchError = InstanceType<typeof TlsPinMismatchError>

/** The server requires a client certificate and none (or an unacceptable one) was presented. */
export const TlsClientCertRequiredError = defineIpcError('IPC_TLS_CLIENT_CERT_REQUIRED', tlsPeer)
export type TlsClientCertRequiredError = InstanceType<typeof TlsClientCertRequiredError>

/**
 * A socket inherited through socket activation (LISTEN_FDS, from systemd or `naaccord-ipc run`)
 * cannot be used: it is not a listening AF_UNIX stream socket, or it is bound to another path
 * than the configured one, or none of the inherited sockets is at the configured path.
 */
export const InheritedSocketError = defineIpcError(
  'IPC_INHERITED_SOCKET',
  (socketPath: string, fd: number | undefined, reason: string, options?: IpcErrorOptions) => ({
    message: `${fd === undefined ? 'socket activation' : `inherited fd ${fd}`} for ${socketPath}: ${reason}`,
    options,
    fields: { socketPath, fd },
  }),
)
export type InheritedSocketError = InstanceType<typeof InheritedSocketError>

/** The supervisor (`naaccord-ipc run` / `reload`) cannot do what was asked: no app command, no running supervisor, an app that never became ready. */
export const SupervisorError = defineIpcError('IPC_SUPERVISOR', messageOnly)
export type SupervisorError = InstanceType<typeof SupervisorError>

/** A mistake on the `naaccord-ipc` command line: printed with a pointer to --help, exit status 2. */
export const UsageError = defineIpcError('IPC_USAGE', messageOnly)
export type UsageError = InstanceType<typeof UsageError>

/** The certs folder is a non-folder, owned by someone else, or writable by group or others. */
export const CertsDirUnsafeError = defineIpcError('IPC_CERTS_UNSAFE_DIR', (dir: string, reason: string, options?: IpcErrorOptions) => ({
  message: `${dir}: ${reason}`,
  options,
  fields: { dir },
}))
export type CertsDirUnsafeError = InstanceType<typeof CertsDirUnsafeError>

/** Writing would replace an existing CA or certificate, and `force` was not given. */
export const CertsFileExistsError = defineIpcError('IPC_CERTS_EXISTS', (file: string, advice: string) => ({
  message: `${file} already exists; ${advice}`,
  fields: { file },
}))
export type CertsFileExistsError = InstanceType<typeof CertsFileExistsError>

/** A certificate or key file is missing, unreadable, or does not hold what it should. */
export const CertsFileError = defineIpcError('IPC_CERTS_BAD_FILE', (file: string, reason: string, options?: IpcErrorOptions) => ({
  message: `${file}: ${reason}`,
  options,
  fields: { file },
}))
export type CertsFileError = InstanceType<typeof CertsFileError>

/** The CA cannot sign this certificate: its key does not match, it is not a CA, it has expired, or it expires first. */
export const CaUnusableError = defineIpcError('IPC_CERTS_CA_UNUSABLE', messageOnly)
export type CaUnusableError = InstanceType<typeof CaUnusableError>

/** A certificate or key file cannot be written or renamed into place (the file system's error is the cause). */
export const CertsWriteError = defineIpcError('IPC_CERTS_WRITE', (file: string, reason: string, options?: IpcErrorOptions) => ({
  message: `${file}: ${reason}`,
  options,
  fields: { file },
}))
export type CertsWriteError = InstanceType<typeof CertsWriteError>

/** A key of a type the certs package cannot sign with or reissue: not ECDSA P-256/P-384/P-521 nor RSA. */
export const UnsupportedKeyError = defineIpcError('IPC_CERTS_UNSUPPORTED_KEY', (keyType: string, namedCurve?: string) => ({
  message: `unsupported key type ${keyType}${namedCurve ? ` (${namedCurve})` : ''}; use an ECDSA (P-256, P-384, P-521) or RSA key`,
  fields: { keyType, namedCurve },
}))
export type UnsupportedKeyError = InstanceType<typeof UnsupportedKeyError>

/** Every error code, mapped to its class: one entry for each row of ERROR_TABLE. */
export const ERROR_CODES = {
  IPC_INVALID_OPTION: InvalidOptionError,
  IPC_SOCKET_PATH_TOO_LONG: SocketPathTooLongError,
  IPC_UNSAFE_SOCKET_PATH: UnsafeSocketPathError,
  IPC_UNSAFE_PATH: UnsafePathError,
  IPC_SOCKET_PATH_ACCESS: SocketPathAccessError,
  IPC_SOCKET_IN_USE: SocketInUseError,
  IPC_TCP_LISTEN: TcpListenError,
  IPC_PEER_CREDENTIALS_UNAVAILABLE: PeerCredentialsUnavailableError,
  IPC_PEER_REJECTED: PeerRejectedError,
  IPC_SYSTEMD_NOTIFY: SystemdNotifyError,
  IPC_FLOCK_UNAVAILABLE: FlockUnavailableError,
  IPC_SERVICE_UNAVAILABLE: ServiceUnavailableError,
  IPC_CONNECTION_LOST: ConnectionLostError,
  IPC_BAD_RESPONSE: BadResponseError,
  IPC_PERMISSION_DENIED: PermissionDeniedError,
  IPC_TIMEOUT: TimeoutError,
  IPC_HTTP_STATUS: HttpStatusError,
  IPC_CLIENT_CLOSED: ClientClosedError,
  IPC_ABORTED: AbortedError,
  IPC_TLS_CONFIG: TlsConfigError,
  IPC_TLS_REQUIRED: TlsRequiredError,
  IPC_TLS_UNTRUSTED: TlsUntrustedError,
  IPC_TLS_EXPIRED: TlsExpiredError,
  IPC_TLS_HOSTNAME: TlsHostnameError,
  IPC_TLS_PIN_MISMATCH: TlsPinMismatchError,
  IPC_TLS_CLIENT_CERT_REQUIRED: TlsClientCertRequiredError,
  IPC_INHERITED_SOCKET: InheritedSocketError,
  IPC_SUPERVISOR: SupervisorError,
  IPC_USAGE: UsageError,
  IPC_CERTS_UNSAFE_DIR: CertsDirUnsafeError,
  IPC_CERTS_EXISTS: CertsFileExistsError,
  IPC_CERTS_BAD_FILE: CertsFileError,
  IPC_CERTS_CA_UNUSABLE: CaUnusableError,
  IPC_CERTS_WRITE: CertsWriteError,
  IPC_CERTS_UNSUPPORTED_KEY: UnsupportedKeyError,
} as const satisfies { [C in IpcErrorCode]: { readonly code: C } }

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
