import { IpcError, InvalidOptionError, type IpcErrorOptions } from '@naaccord/ipc-shared'

/**
 * Errors of the certs package. Like every naaccord-ipc error each has a stable `code` and a
 * message that names the file or folder and says what to do. Option and flag mistakes use the
 * shared `InvalidOptionError` (`IPC_INVALID_OPTION`).
 */

/** The certs folder is a non-folder, owned by someone else, or writable by group or others. */
export class CertsDirUnsafeError extends IpcError {
  readonly code = 'IPC_CERTS_UNSAFE_DIR'
  constructor(
    readonly dir: string,
    reason: string,
    options?: IpcErrorOptions,
  ) {
    super(`${dir}: ${reason}`, options)
  }
}

/** Writing would replace an existing CA or certificate, and `force` was not given. */
export class CertsFileExistsError extends IpcError {
  readonly code = 'IPC_CERTS_EXISTS'
  constructor(
    readonly file: string,
    advice: string,
  ) {
    super(`${file} already exists; ${advice}`)
  }
}

/** A certificate or key file is missing, unreadable, or does not hold what it should. */
export class CertsFileError extends IpcError {
  readonly code = 'IPC_CERTS_BAD_FILE'
  constructor(
    readonly file: string,
    reason: string,
    options?: IpcErrorOptions,
  ) {
    super(`${file}: ${reason}`, options)
  }
}

/** The CA cannot sign this certificate: its key does not match, it is not a CA, it has expired, or it expires first. */
export class CaUnusableError extends IpcError {
  readonly code = 'IPC_CERTS_CA_UNUSABLE'
  constructor(message: string, options?: IpcErrorOptions) {
    super(message, options)
  }
}

/** Every error code the certs package throws, mapped to its class. */
export const CERTS_ERROR_CODES = {
  IPC_INVALID_OPTION: InvalidOptionError,
  IPC_CERTS_UNSAFE_DIR: CertsDirUnsafeError,
  IPC_CERTS_EXISTS: CertsFileExistsError,
  IPC_CERTS_BAD_FILE: CertsFileError,
  IPC_CERTS_CA_UNUSABLE: CaUnusableError,
} as const
