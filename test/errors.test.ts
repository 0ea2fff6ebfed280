import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { CERTS_ERROR_CODES } from '@naaccord/ipc-certs'
import { PEERCRED_ERROR_CODES } from '@naaccord/ipc-peercred'
import * as clientPkg from '@naaccord/ipc-client'
import * as serverPkg from '@naaccord/ipc-server'
import * as shared from '@naaccord/ipc-shared'
import { ERROR_CODES, IpcError, isIpcError, TimeoutError, type IpcErrorCode } from '@naaccord/ipc-shared'
import { ROOT, deferCleanup, tempDir } from './helpers.js'

const defer = deferCleanup()

// The README and the pages under docs/ (the tables live on the pages), read as one text.
const docFiles = ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join('docs', f))]
const readme = docFiles.map((f) => fs.readFileSync(path.join(ROOT, f), 'utf8')).join('\n')
const rows = [...readme.matchAll(/^\| `(IPC_[A-Z_]+)` \| `([A-Za-z]+)` \| (\d{3}|4xx\/502) \|/gm)]
const documented = new Map(rows.map((m) => [m[1]!, m[2]!]))
const documentedStatus = new Map(rows.map((m) => [m[1]!, m[3] === '4xx/502' ? m[3] : Number(m[3])]))
type AnyClass = abstract new (...args: never[]) => IpcError
const all = { ...ERROR_CODES, ...CERTS_ERROR_CODES, ...PEERCRED_ERROR_CODES } as Record<string, AnyClass>

const cause = new Error('the cause')
const target = '/run/naaccord/service.sock'
/** One instance of every class of the shared package, built with its real constructor. */
const make: { [C in IpcErrorCode]: () => InstanceType<(typeof ERROR_CODES)[C]> } = {
  IPC_INVALID_OPTION: () => new shared.InvalidOptionError('timeoutMs', 'must be a number', { cause }),
  IPC_SOCKET_PATH_TOO_LONG: () => new shared.SocketPathTooLongError(`/tmp/${'x'.repeat(120)}`, 107),
  IPC_UNSAFE_SOCKET_PATH: () => new shared.UnsafeSocketPathError('/tmp', 'writable by others', { cause }),
  IPC_UNSAFE_PATH: () => new shared.UnsafePathError('/run/naaccord/service.sock.pid', 'owned by uid 65534', '--pid-file', 65534, { cause }),
  IPC_SOCKET_PATH_ACCESS: () => new shared.SocketPathAccessError('/run/naaccord', 'EACCES', { cause }),
  IPC_SOCKET_IN_USE: () => new shared.SocketInUseError(target, 4121, undefined, { cause }),
  IPC_PEER_CREDENTIALS_UNAVAILABLE: () => new shared.PeerCredentialsUnavailableError('no addon', { cause }),
  IPC_PEER_REJECTED: () => new shared.PeerRejectedError('uid 0 expected', { cause }),
  IPC_SERVICE_UNAVAILABLE: () => new shared.ServiceUnavailableError(target, 'ENOENT', { cause }),
  IPC_CONNECTION_LOST: () => new shared.ConnectionLostError(target, 'reset', { cause }),
  IPC_PERMISSION_DENIED: () => new shared.PermissionDeniedError(target, { cause }),
  IPC_TIMEOUT: () => new shared.TimeoutError(target, 250, 'request', { cause }),
  IPC_HTTP_STATUS: () => new shared.HttpStatusError('GET', '/reports/1?who=x', 404, { error: 'not_found' }),
  IPC_CLIENT_CLOSED: () => new shared.ClientClosedError(target, { cause }),
  IPC_TLS_CONFIG: () => new shared.TlsConfigError('bad key', { cause }),
  IPC_TLS_REQUIRED: () => new shared.TlsRequiredError('plaintext TCP'),
  IPC_TLS_UNTRUSTED: () => new shared.TlsUntrustedError('untrusted', { subject: 'CN=x' }, { cause }),
  IPC_TLS_EXPIRED: () => new shared.TlsExpiredError('expired', { subject: 'CN=x', validTo: 'Jan 1 2020' }, { cause }),
  IPC_TLS_HOSTNAME: () => new shared.TlsHostnameError('hostname', { subject: 'CN=x' }, { cause }),
  IPC_TLS_PIN_MISMATCH: () => new shared.TlsPinMismatchError('pin', { subject: 'CN=x' }, { cause }),
  IPC_TLS_CLIENT_CERT_REQUIRED: () => new shared.TlsClientCertRequiredError('refused', undefined, { cause }),
  IPC_INHERITED_SOCKET: () => new shared.InheritedSocketError('/run/naaccord/service.sock', 3, 'not a socket', { cause }),
  IPC_SUPERVISOR: () => new shared.SupervisorError('no app command', { cause }),
}

describe('error codes', () => {
  it.each(Object.entries(all))('%s is documented in the README with its class', (code, cls) => {
    expect(documented.get(code)).toBe(cls.name)
  })

  it('the README documents no code that does not exist', () => {
    expect([...documented.keys()].filter((c) => !(c in all))).toEqual([])
  })

  it.each(Object.keys(ERROR_CODES) as IpcErrorCode[])('%s: a constructed instance has its code, class, statusCode (as documented) and cause', (code) => {
    const err = make[code]()
    const cls = ERROR_CODES[code] as unknown as AnyClass & { code: string }
    expect(err.code).toBe(code)
    expect(cls.code).toBe(code)
    expect(err).toBeInstanceOf(cls)
    expect(err).toBeInstanceOf(IpcError)
    expect(err).toBeInstanceOf(Error)
    expect(err.name).toBe(cls.name)
    expect(String(err)).toBe(`${code}: ${err.message}`)
    expect(isIpcError(err)).toBe(true)
    expect(isIpcError(err, code)).toBe(true)
    // The instance above answered 404, which a gateway passes through (documented as 4xx/502).
    expect(code === 'IPC_HTTP_STATUS' ? '4xx/502' : err.statusCode).toBe(documentedStatus.get(code))
    if (code === 'IPC_HTTP_STATUS') expect(err.statusCode).toBe(404)
    if (code !== 'IPC_HTTP_STATUS' && code !== 'IPC_SOCKET_PATH_TOO_LONG' && code !== 'IPC_TLS_REQUIRED') expect(err.cause).toBe(cause)
    // No other class claims it.
    for (const [other, otherCls] of Object.entries(ERROR_CODES)) {
      if (other !== code) expect(err instanceof (otherCls as unknown as AnyClass)).toBe(false)
    }
  })

  it.each(Object.entries(CERTS_ERROR_CODES).filter(([c]) => c !== 'IPC_INVALID_OPTION'))('%s (certs) is an IpcError with its code and documented statusCode', (code, cls) => {
    const err = new (cls as unknown as new (...a: string[]) => IpcError)('/tmp/pki', 'reason')
    expect(err.code).toBe(code)
    expect(err).toBeInstanceOf(IpcError)
    expect(err.statusCode).toBe(documentedStatus.get(code))
  })

  it('IPC_SYSTEMD_NOTIFY (peercred) is an IpcError with its code and documented statusCode, recognised by its code', () => {
    const cls = PEERCRED_ERROR_CODES.IPC_SYSTEMD_NOTIFY
    const err = new cls('sd_notify to /run/systemd/notify failed: ECONNREFUSED', { cause })
    expect(err.code).toBe('IPC_SYSTEMD_NOTIFY')
    expect(cls.code).toBe('IPC_SYSTEMD_NOTIFY')
    expect(err).toBeInstanceOf(IpcError)
    expect(err).toBeInstanceOf(cls)
    expect(err.cause).toBe(cause)
    expect(err.statusCode).toBe(documentedStatus.get('IPC_SYSTEMD_NOTIFY'))
    expect(make.IPC_TIMEOUT()).not.toBeInstanceOf(cls)
  })

  it('HttpStatusError passes a 4xx through as statusCode and turns a 5xx into 502; the message keeps no query', () => {
    expect(new shared.HttpStatusError('GET', '/a', 404, null).statusCode).toBe(404)
    expect(new shared.HttpStatusError('GET', '/a', 503, null).statusCode).toBe(502)
    expect(make.IPC_HTTP_STATUS().message).not.toContain('who=x')
  })

  it('isIpcError narrows to the class of the code', () => {
    const err: unknown = make.IPC_HTTP_STATUS()
    if (!isIpcError(err, 'IPC_HTTP_STATUS')) throw new Error('expected an HttpStatusError')
    expect(err.status).toBe(404) // compiles only because the code narrowed the type
    expect(isIpcError(new Error('x'))).toBe(false)
    expect(isIpcError({ code: 'IPC_TIMEOUT' })).toBe(false) // a look-alike without the brand
  })

  it('codes are stable properties of instances, and the cause is kept', () => {
    const err = new TimeoutError('/run/naaccord/service.sock', 250, 'request', { cause })
    expect(err.code).toBe('IPC_TIMEOUT')
    expect(err.cause).toBe(cause)
    expect(err.message).toContain('/run/naaccord/service.sock')
    expect(isIpcError(err, 'IPC_TIMEOUT')).toBe(true)
    expect(isIpcError(err, 'IPC_HTTP_STATUS')).toBe(false)
  })

  it('the client and server packages re-export every error class and isIpcError', () => {
    for (const pkg of [clientPkg, serverPkg] as Array<Record<string, unknown>>) {
      for (const cls of Object.values(ERROR_CODES)) expect(pkg[cls.name]).toBe(cls)
      expect(pkg.IpcError).toBe(IpcError)
      expect(pkg.isIpcError).toBe(isIpcError)
    }
  })

  it('errors from a second copy of the module are recognised both ways (branded, not prototype identity)', async () => {
    const t = tempDir()
    defer(t.cleanup)
    const copy = path.join(t.dir, 'errors-copy.ts')
    fs.copyFileSync(path.join(ROOT, 'packages/shared/src/errors.ts'), copy)
    const other = (await import(pathToFileURL(copy).href)) as typeof shared
    expect(other.TimeoutError).not.toBe(shared.TimeoutError) // really another copy
    const theirs = new other.TimeoutError(target, 100)
    const ours = new shared.ServiceUnavailableError(target, 'down')
    expect(theirs).toBeInstanceOf(shared.TimeoutError)
    expect(theirs).toBeInstanceOf(shared.IpcError)
    expect(theirs).not.toBeInstanceOf(shared.ServiceUnavailableError)
    expect(shared.isIpcError(theirs, 'IPC_TIMEOUT')).toBe(true)
    expect(ours).toBeInstanceOf(other.ServiceUnavailableError)
    expect(ours).toBeInstanceOf(other.IpcError)
    expect(other.isIpcError(ours, 'IPC_SERVICE_UNAVAILABLE')).toBe(true)
    expect(theirs.statusCode).toBe(504)
  })
})
