import { describe, expect, it } from 'vitest'
import { IpcError } from '@naaccord/ipc-shared'
import { CERTS_ERROR_CODES, CaUnusableError, CertsDirUnsafeError, CertsFileError, CertsFileExistsError, CertsWriteError, UnsupportedKeyError } from './errors.js'

describe('CERTS_ERROR_CODES', () => {
  it.each([
    ['IPC_CERTS_UNSAFE_DIR', new CertsDirUnsafeError('/d', 'is writable by others')],
    ['IPC_CERTS_EXISTS', new CertsFileExistsError('/d/ca.crt', 'use --force')],
    ['IPC_CERTS_BAD_FILE', new CertsFileError('/d/x.crt', 'cannot be read')],
    ['IPC_CERTS_CA_UNUSABLE', new CaUnusableError('the CA expired')],
    ['IPC_CERTS_WRITE', new CertsWriteError('/d/x.crt', 'cannot create its temporary file (EACCES)')],
    ['IPC_CERTS_UNSUPPORTED_KEY', new UnsupportedKeyError('ed25519')],
  ] as const)('%s is thrown by its class, an IpcError with that code', (code, err) => {
    expect(err).toBeInstanceOf(IpcError)
    expect(err).toBeInstanceOf(CERTS_ERROR_CODES[code])
    expect(err.code).toBe(code)
    expect(err.name).toBe(CERTS_ERROR_CODES[code].name)
  })

  it('lists every code once', () => {
    expect(Object.keys(CERTS_ERROR_CODES).sort()).toEqual(['IPC_CERTS_BAD_FILE', 'IPC_CERTS_CA_UNUSABLE', 'IPC_CERTS_EXISTS', 'IPC_CERTS_UNSAFE_DIR', 'IPC_CERTS_UNSUPPORTED_KEY', 'IPC_CERTS_WRITE', 'IPC_INVALID_OPTION'])
  })
})
