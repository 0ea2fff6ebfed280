import { ERROR_CODES } from '@naaccord/ipc-shared'

/**
 * Errors of the certs package. Their classes, like every naaccord-ipc error's, are made from the
 * one code table of @naaccord/ipc-shared (ERROR_TABLE); each has a stable `code` and a message that
 * names the file or folder and says what to do. Option and flag mistakes use the shared
 * `InvalidOptionError` (`IPC_INVALID_OPTION`).
 */
export { CaUnusableError, CertsDirUnsafeError, CertsFileError, CertsFileExistsError, CertsWriteError, UnsupportedKeyError } from '@naaccord/ipc-shared'

/**
 * Every error code the certs package throws, mapped to its class (a part of ERROR_CODES).
 *
 * @example
 * if (err instanceof CERTS_ERROR_CODES.IPC_CERTS_EXISTS) console.error('use --force or certs rotate')
 */
export const CERTS_ERROR_CODES = {
  IPC_INVALID_OPTION: ERROR_CODES.IPC_INVALID_OPTION,
  IPC_CERTS_UNSAFE_DIR: ERROR_CODES.IPC_CERTS_UNSAFE_DIR,
  IPC_CERTS_EXISTS: ERROR_CODES.IPC_CERTS_EXISTS,
  IPC_CERTS_BAD_FILE: ERROR_CODES.IPC_CERTS_BAD_FILE,
  IPC_CERTS_CA_UNUSABLE: ERROR_CODES.IPC_CERTS_CA_UNUSABLE,
  IPC_CERTS_WRITE: ERROR_CODES.IPC_CERTS_WRITE,
  IPC_CERTS_UNSUPPORTED_KEY: ERROR_CODES.IPC_CERTS_UNSUPPORTED_KEY,
} as const
