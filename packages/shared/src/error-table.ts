/**
 * The one table of naaccord-ipc's error codes, for every package: each code once, with the name
 * of its class, the HTTP status a gateway should answer by default (`statusCode`), and the
 * description the docs table ("Error codes", between the `<!-- errors -->` markers) shows in its
 * "raised when" column. The classes are made from it (errors.ts, `defineIpcError`), and
 * test/errors.test.ts checks the docs table against it, row by row.
 */

/** One row of the code table. */
export interface ErrorRow {
  /** The class name: `err.name`, and the name each package exports. */
  readonly name: string
  /** The default HTTP status for a gateway; IPC_HTTP_STATUS passes the services' 4xx through. */
  readonly statusCode: number
  /** What the docs table says in its "raised when" column (Markdown, one line). */
  readonly description: string
}

/**
 * Every error code of every package, in the order of the docs table.
 *
 * @example
 * ERROR_TABLE.IPC_TIMEOUT.statusCode // 504
 */
export const ERROR_TABLE = {
  IPC_INVALID_OPTION: {
    name: 'InvalidOptionError',
    statusCode: 500,
    description: 'an option or its environment variable is unknown or malformed (`err.option` names it)',
  },
  IPC_SOCKET_PATH_TOO_LONG: {
    name: 'SocketPathTooLongError',
    statusCode: 500,
    description: 
      'a path we would bind or connect to exceeds `sun_path` (107 bytes on Linux); a server binds 10 bytes deeper, so its ' +
      '`socketPath` may be 97 (`err.limit`)',
  },
  IPC_UNSAFE_SOCKET_PATH: {
    name: 'UnsafeSocketPathError',
    statusCode: 500,
    description: 
      'the folder (or one above it) is writable by others or owned by another user, a symlink on the way is owned by another ' +
      'user, or a symlink / file / folder stands at the socket or lock path; also the folder chain of a socket handed over by ' +
      'socket activation',
  },
  IPC_UNSAFE_PATH: {
    name: 'UnsafePathError',
    statusCode: 500,
    description: 
      "a file trusted through a path (the supervisor's pid file, read by `reload` or written by `run`; the socket's lock as " +
      '`reload` reads it; the `NAACCORD_PEERCRED_ADDON` file, a certificate or key), or a folder or link on its way, is owned ' +
      "by or writable by a user other than this process's uid or root; `err.path` is the component, `err.owner` its owner, " +
      '`err.option` the option that named it; `reload` signals nothing',
  },
  IPC_SOCKET_PATH_ACCESS: {
    name: 'SocketPathAccessError',
    statusCode: 500,
    description: 
      "this process cannot create or open the socket's folder, lock or socket (`EACCES`, `EROFS`...); the message names the " +
      'owner and mode found and our uid',
  },
  IPC_SOCKET_IN_USE: {
    name: 'SocketInUseError',
    statusCode: 500,
    description: 'a live server answers on the path, or holds its lock (`err.pid`)',
  },
  IPC_TCP_LISTEN: {
    name: 'TcpListenError',
    statusCode: 500,
    description:
      'a TCP listener (`listen`, or `serveMetrics` on a port) cannot be opened: `EADDRINUSE` (another process has the port), ' +
      '`EACCES` (a port below 1024 without `CAP_NET_BIND_SERVICE`), `EADDRNOTAVAIL` (no such local address); `err.address`',
  },
  IPC_PEER_CREDENTIALS_UNAVAILABLE: {
    name: 'PeerCredentialsUnavailableError',
    statusCode: 500,
    description: 
      'the native addon did not load (the message says why: no prebuilt binary for this platform and the source build failed or ' +
      'its install script was blocked, or a binary that does not fit), or the platform has no peer credentials; also ' +
      '`expectServer` without `@naaccord/ipc-peercred` installed',
  },
  IPC_PEER_REJECTED: {
    name: 'PeerRejectedError',
    statusCode: 502,
    description: '`expectServer`: the socket file or the server process belongs to another uid/gid',
  },
  IPC_SYSTEMD_NOTIFY: {
    name: 'SystemdNotifyError',
    statusCode: 500,
    description: 
      '`sdNotify()` / `listenNotifySocket()` (`@naaccord/ipc-peercred`): the datagram could not be sent or bound (`cause.code`, ' +
      'e.g. `ECONNREFUSED`), or the addon is missing. `serve()` only logs these',
  },
  IPC_FLOCK_UNAVAILABLE: {
    name: 'FlockUnavailableError',
    statusCode: 500,
    description: 
      '`tryLockExclusive()` (`@naaccord/ipc-peercred`): flock(2) comes with the native addon, which did not load or is an ' +
      'older build without it (the message says why); `serve()` asks `flockAvailable()` first and only logs',
  },
  IPC_SERVICE_UNAVAILABLE: {
    name: 'ServiceUnavailableError',
    statusCode: 503,
    description: 'no socket file, connection refused, host unreachable',
  },
  IPC_CONNECTION_LOST: {
    name: 'ConnectionLostError',
    statusCode: 502,
    description: 'the connection closed after sending, before a full answer',
  },
  IPC_BAD_RESPONSE: {
    name: 'BadResponseError',
    statusCode: 502,
    description: 'the server answered with bytes that are not HTTP/1.1 (undici\'s parser refused them: `cause` is its `HTTPParserError`, whose message says why)',
  },
  IPC_PERMISSION_DENIED: {
    name: 'PermissionDeniedError',
    statusCode: 502,
    description: '`connect()` refused by file permissions (EACCES)',
  },
  IPC_TIMEOUT: {
    name: 'TimeoutError',
    statusCode: 504,
    description: 'connect, headers or body took longer than allowed (`err.timeoutMs`)',
  },
  IPC_HTTP_STATUS: {
    name: 'HttpStatusError',
    statusCode: 502,
    description: '`get/post/...` got a non-2xx answer (`err.status`, `err.body`)',
  },
  IPC_CLIENT_CLOSED: {
    name: 'ClientClosedError',
    statusCode: 503,
    description: 'a request on a closed client',
  },
  IPC_ABORTED: {
    name: 'AbortedError',
    statusCode: 500,
    description: 
      'the caller aborted the request without a reason (its response body or stream destroyed before the end); an ' +
      'abort with a reason (`signal`) rejects with that reason instead',
  },
  IPC_TLS_CONFIG: {
    name: 'TlsConfigError',
    statusCode: 500,
    description: 'a certificate, key or CA cannot be read, does not match, has expired or does not chain',
  },
  IPC_TLS_REQUIRED: {
    name: 'TlsRequiredError',
    statusCode: 500,
    description: 'plaintext TCP listener, or plaintext URL to a non-loopback host',
  },
  IPC_TLS_UNTRUSTED: {
    name: 'TlsUntrustedError',
    statusCode: 502,
    description: 'the server certificate does not chain to `tls.ca` (message names its subject)',
  },
  IPC_TLS_EXPIRED: {
    name: 'TlsExpiredError',
    statusCode: 502,
    description: 'the server certificate is expired or not yet valid (subject and expiry named)',
  },
  IPC_TLS_HOSTNAME: {
    name: 'TlsHostnameError',
    statusCode: 502,
    description: 'the server certificate does not name `servername`',
  },
  IPC_TLS_PIN_MISMATCH: {
    name: 'TlsPinMismatchError',
    statusCode: 502,
    description: 'the server key matches none of `tls.pin`',
  },
  IPC_TLS_CLIENT_CERT_REQUIRED: {
    name: 'TlsClientCertRequiredError',
    statusCode: 502,
    description: 'the server refused our client certificate, or we sent none',
  },
  IPC_INHERITED_SOCKET: {
    name: 'InheritedSocketError',
    statusCode: 500,
    description: 
      'socket activation (`LISTEN_FDS`) handed this process a descriptor that is not a listening `AF_UNIX` stream socket bound ' +
      "to `socketPath` (an absolute path, or the supervisor's exact private bind name beside it), or none at that path " +
      '(`err.fd`); or the file at `socketPath` is not that very socket, not owned by this uid or root, or lets more users ' +
      'connect than `socketMode` (the message names the mode)',
  },
  IPC_SUPERVISOR: {
    name: 'SupervisorError',
    statusCode: 500,
    description: 
      '`naaccord-ipc run` without an app command after `--`, or its pid file cannot be written; `naaccord-ipc reload` with no ' +
      'running supervisor (pid file missing, or its pid gone), or a pid file naming a process that is not the supervisor of the ' +
      "socket (it does not hold the socket's lock, by `/proc/locks`; the message names the real holder); nothing is signalled",
  },
  IPC_USAGE: {
    name: 'UsageError',
    statusCode: 500,
    description: '`naaccord-ipc`: an unknown command, flag or argument, or a missing one (exit status 2)',
  },
  IPC_CERTS_UNSAFE_DIR: {
    name: 'CertsDirUnsafeError',
    statusCode: 500,
    description: '`certs`: the output folder is writable by others or owned by another user',
  },
  IPC_CERTS_EXISTS: {
    name: 'CertsFileExistsError',
    statusCode: 500,
    description: '`certs`: the CA or certificate already exists',
  },
  IPC_CERTS_BAD_FILE: {
    name: 'CertsFileError',
    statusCode: 500,
    description: '`certs`: a file cannot be read or parsed',
  },
  IPC_CERTS_CA_UNUSABLE: {
    name: 'CaUnusableError',
    statusCode: 500,
    description: '`certs`: the CA key does not match, the CA expired, or a leaf would outlive it',
  },
  IPC_CERTS_WRITE: {
    name: 'CertsWriteError',
    statusCode: 500,
    description: 
      '`certs`: a certificate or key file cannot be written or renamed into place (`cause.code`: `EACCES`, `ENOSPC`, ' +
      '`EROFS`...); its temporary file is removed',
  },
  IPC_CERTS_UNSUPPORTED_KEY: {
    name: 'UnsupportedKeyError',
    statusCode: 500,
    description: '`certs`: a key is neither ECDSA (P-256, P-384, P-521) nor RSA, e.g. an Ed25519 key (`err.keyType`)',
  },
} as const satisfies Record<string, ErrorRow>

/** Every code of naaccord-ipc: `IPC_` and what failed. */
export type IpcErrorCode = keyof typeof ERROR_TABLE
