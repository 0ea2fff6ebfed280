export { createClient, type IpcClient, type RequestOptions, type CallOptions, type Body } from './client.js'
export { resolveClientOptions, CLIENT_DEFAULTS, type ClientOptions, type ClientTlsOptions, type ExpectServer, type ResolvedClientOptions } from './options.js'
export type { IpcResponse } from './request/response.js'
export { IDEMPOTENT } from './request/retry.js'
export { propagationHeaders, type HasHeaders } from './request/trace-context.js'
export { clientMetrics, type ClientMetrics, type ClientMetricsOptions } from './metrics/metrics.js'
export { CLIENT_REQUEST_CHANNEL, type ClientRequestEvent } from './client-events.js'
// The error classes, so callers check errors without importing the shared package.
export { IpcError, InvalidOptionError, SocketPathTooLongError, UnsafeSocketPathError, UnsafePathError, SocketPathAccessError, SocketInUseError, PeerCredentialsUnavailableError, PeerRejectedError, ServiceUnavailableError, ConnectionLostError, BadResponseError, PermissionDeniedError, TimeoutError, HttpStatusError, ClientClosedError, TlsConfigError, TlsRequiredError, TlsUntrustedError, TlsExpiredError, TlsHostnameError, TlsPinMismatchError, TlsClientCertRequiredError, InheritedSocketError, SupervisorError, SystemdNotifyError, FlockUnavailableError, TcpListenError, AbortedError, UsageError, CertsDirUnsafeError, CertsFileExistsError, CertsFileError, CaUnusableError, CertsWriteError, UnsupportedKeyError, ERROR_CODES, ERROR_TABLE, isIpcError, type IpcErrorCode, type IpcErrorOf, type AnyIpcError, type IpcErrorOptions } from '@naaccord/ipc-shared'
