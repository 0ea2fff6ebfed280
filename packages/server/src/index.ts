export { serve, type Handler, type IpcServer } from './serve.js'
export {
  resolveServerOptions,
  SERVER_DEFAULTS,
  type AllowPolicy,
  type ListenTarget,
  type ResolvedServerOptions,
  type ServerLimits,
  type ServerOptions,
} from './options.js'
export type { ServerTlsOptions, ClientAuth } from './gate/tls-options.js'
export type { Peer, PeerCertificate } from './gate/peer.js'
export { resolveTrustedProxy, TRUSTED_PROXY_DEFAULTS, TRUSTED_PROXY_ENV, type TrustedProxyOptions, type ResolvedTrustedProxy } from './http/trusted-proxy.js'
export { requirePeer, type RequirePeerOptions } from './gate/require-peer.js'
export { healthReport, certificateHealth, EXPIRY_WARNING_DAYS, type Health, type CertificateHealth } from './http/health.js'
export { serverSecurityReport, securityContext, weakeningMessage, type SecuritySetting, type SecurityContext, type SettingValue } from './security-report.js'
export type { ServerSettingSources } from './options.js'
export type { SettingSource } from '@naaccord/ipc-shared'
// The socket lifecycle, step by step, for a process that binds a plain net.Server itself (a
// supervisor): ensureSocketFolder -> acquireSocketLock -> clearStaleSocket -> bindSocket; on exit
// unlinkIfOurs and lock.release().
export { ensureSocketFolder, inspectSocketPath, type SocketPathState } from './socket/socket-path.js'
export { acquireSocketLock, lockHolder, lockPathFor, readLockOwner, type HeldLock, type LockOwner } from './socket/socket-lock.js'
export { clearStaleSocket } from './socket/stale-socket.js'
export { bindSocket, removeStrayBindFolders, unlinkIfOurs, type BoundSocket } from './socket/bind-socket.js'
export { resolveGroup } from './socket/group.js'
// Writes out what a logger (and the request log) still hold, before an exit of the app's own.
export { flushLogger } from '@naaccord/ipc-shared/logger'
// The code of the process warning that says a security weakening when there is no logger (logger: false).
export { WEAKENED_WARNING_CODE } from '@naaccord/ipc-shared/logger'
export { serveMetrics, type IpcMetrics } from './metrics/metrics.js'
export { resolveMetricsOptions, METRICS_DEFAULTS, type MetricsOptions, type MetricsSocketListen, type MetricsTcpListen, type ResolvedMetricsOptions } from './metrics/metrics-options.js'
export { REFUSED_CHANNEL, type RefusedConnection, type RefusalReason } from './server-events.js'
export { takeInheritedSocket, parseListenFds, SD_LISTEN_FDS_START, type InheritedFd, type AdoptionExpectations } from './socket/socket-activation.js'
// The error classes, so callers check errors without importing the shared package.
export { IpcError, InvalidOptionError, SocketPathTooLongError, UnsafeSocketPathError, UnsafePathError, SocketPathAccessError, SocketInUseError, PeerCredentialsUnavailableError, PeerRejectedError, ServiceUnavailableError, ConnectionLostError, BadResponseError, PermissionDeniedError, TimeoutError, HttpStatusError, ClientClosedError, TlsConfigError, TlsRequiredError, TlsUntrustedError, TlsExpiredError, TlsHostnameError, TlsPinMismatchError, TlsClientCertRequiredError, InheritedSocketError, SupervisorError, SystemdNotifyError, FlockUnavailableError, TcpListenError, AbortedError, UsageError, CertsDirUnsafeError, CertsFileExistsError, CertsFileError, CaUnusableError, CertsWriteError, UnsupportedKeyError, ERROR_CODES, ERROR_TABLE, isIpcError, type IpcErrorCode, type IpcErrorOf, type AnyIpcError, type IpcErrorOptions } from '@naaccord/ipc-shared'
export { PROCESS_EFFECTS, type ProcessEffect, type ProcessEffectName } from '@naaccord/ipc-shared'
