import { ERROR_CODES } from '@naaccord/ipc-shared'

/**
 * Errors of the peercred package. Their classes, like every naaccord-ipc error's, are made from the
 * one code table of @naaccord/ipc-shared (ERROR_TABLE); the peer check itself throws the shared
 * `PeerCredentialsUnavailableError` and `UnsafePathError`.
 */
export { FlockUnavailableError, SystemdNotifyError } from '@naaccord/ipc-shared'

/**
 * The error codes of this package, mapped to their classes (a part of ERROR_CODES of
 * @naaccord/ipc-shared).
 *
 * @example
 * if (err instanceof PEERCRED_ERROR_CODES.IPC_SYSTEMD_NOTIFY) log.warn({ err }, 'systemd was not told')
 */
export const PEERCRED_ERROR_CODES = {
  IPC_SYSTEMD_NOTIFY: ERROR_CODES.IPC_SYSTEMD_NOTIFY,
  IPC_FLOCK_UNAVAILABLE: ERROR_CODES.IPC_FLOCK_UNAVAILABLE,
} as const
