/** Where the services socket lives unless told otherwise (the design note's path). */
export const DEFAULT_SOCKET_PATH = '/var/run/naaccord/service.sock'

/**
 * unix(7): sun_path holds 108 bytes on Linux, one of them the terminating NUL, so a path may be
 * 107 bytes long; macOS and the BSDs have 104 bytes (103 usable). Node silently truncates longer
 * paths on some platforms, so we refuse them instead.
 */
export const SUN_PATH_MAX = process.platform === 'linux' ? 107 : 103

/** The header that carries a request id from the web server through to the services log. */
export const REQUEST_ID_HEADER = 'x-request-id'

/** Environment variables read by the options resolvers; explicit options win over them. */
export const ENV = {
  socketPath: 'NAACCORD_SOCKET_PATH',
  socketMode: 'NAACCORD_SOCKET_MODE',
  socketGroup: 'NAACCORD_SOCKET_GROUP',
  dirMode: 'NAACCORD_SOCKET_DIR_MODE',
  shutdownTimeoutMs: 'NAACCORD_SHUTDOWN_TIMEOUT_MS',
  maxConnections: 'NAACCORD_MAX_CONNECTIONS',
  maxUnauthenticated: 'NAACCORD_MAX_UNAUTHENTICATED',
  closeIdleOnShutdown: 'NAACCORD_CLOSE_IDLE_ON_SHUTDOWN',
  logLevel: 'NAACCORD_LOG_LEVEL',
  allowUids: 'NAACCORD_ALLOW_UIDS',
  allowGids: 'NAACCORD_ALLOW_GIDS',
  url: 'NAACCORD_SERVICES_URL',
  timeoutMs: 'NAACCORD_TIMEOUT_MS',
  connectTimeoutMs: 'NAACCORD_CONNECT_TIMEOUT_MS',
  retries: 'NAACCORD_RETRIES',
  retryWindowMs: 'NAACCORD_RETRY_WINDOW_MS',
  connections: 'NAACCORD_CONNECTIONS',
  expectServerUid: 'NAACCORD_EXPECT_SERVER_UID',
  tlsCert: 'NAACCORD_TLS_CERT',
  tlsKey: 'NAACCORD_TLS_KEY',
  tlsCa: 'NAACCORD_TLS_CA',
  tlsPin: 'NAACCORD_TLS_PIN',
  tlsServername: 'NAACCORD_TLS_SERVERNAME',
  peerAddon: 'NAACCORD_PEERCRED_ADDON',
} as const
