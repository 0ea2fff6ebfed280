import { execFile } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import type { Dispatcher } from 'undici'
import { describe, expect, it } from 'vitest'
import { CERTS_ERROR_CODES, initCa, rotate, writeFileAtomic, writeFilesAtomic } from '@naaccord/ipc-certs'
import { PEERCRED_ERROR_CODES } from '@naaccord/ipc-peercred'
import * as clientPkg from '@naaccord/ipc-client'
import * as serverPkg from '@naaccord/ipc-server'
import * as shared from '@naaccord/ipc-shared'
import { ENV, ERROR_CODES, ERROR_TABLE, IpcError, isIpcError, TimeoutError, type AnyIpcError, type IpcErrorCode } from '@naaccord/ipc-shared'
import { ROOT, deferCleanup, failure, tempDir } from './helpers.js'

const defer = deferCleanup()
const run = promisify(execFile)

const OPEN = '<!-- errors -->'
const CLOSE = '<!-- /errors -->'

/**
 * The docs table of error codes: the part of README.md, or of a page under docs/ once the README
 * is split, between the markers. Exactly one file holds them.
 */
function errorsTable(): { file: string; text: string } {
  const docs = path.join(ROOT, 'docs')
  const pages = fs.existsSync(docs)
    ? fs.readdirSync(docs, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.md')).map((f) => path.join(docs, f))
    : []
  const holders = [path.join(ROOT, 'README.md'), ...pages].filter((f) => fs.readFileSync(f, 'utf8').includes(OPEN))
  if (holders.length !== 1) throw new Error(`expected the ${OPEN} marker in exactly one of README.md and docs/**/*.md, found it in ${holders.length}: ${holders.join(', ')}`)
  const file = holders[0]!
  const whole = fs.readFileSync(file, 'utf8')
  const start = whole.indexOf(OPEN)
  const end = whole.indexOf(CLOSE, start)
  if (end < 0) throw new Error(`${file}: ${OPEN} without ${CLOSE} after it`)
  return { file, text: whole.slice(start, end) }
}

const table = errorsTable()
const rows = [...table.text.matchAll(/^\| `(IPC_[A-Z_]+)` \| `([A-Za-z]+)` \| (\d{3}|4xx\/502) \| (.*?) \| (.*) \|$/gm)]
const documented = new Map(rows.map((m) => [m[1]!, m[2]!]))
const documentedStatus = new Map(rows.map((m) => [m[1]!, m[3] === '4xx/502' ? m[3] : Number(m[3])]))
const documentedDescription = new Map(rows.map((m) => [m[1]!, m[4]!]))
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
  IPC_TCP_LISTEN: () => new shared.TcpListenError('127.0.0.1:8443', 'EADDRINUSE; another process listens there; stop it or choose another port', { cause }),
  IPC_PEER_CREDENTIALS_UNAVAILABLE: () => new shared.PeerCredentialsUnavailableError('no addon', { cause }),
  IPC_PEER_REJECTED: () => new shared.PeerRejectedError('uid 0 expected', { cause }),
  IPC_SERVICE_UNAVAILABLE: () => new shared.ServiceUnavailableError(target, 'ENOENT', { cause }),
  IPC_CONNECTION_LOST: () => new shared.ConnectionLostError(target, 'reset', { cause }),
  IPC_BAD_RESPONSE: () => new shared.BadResponseError(target, 'HPE_INVALID_CONSTANT', { cause }),
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
  IPC_SYSTEMD_NOTIFY: () => new shared.SystemdNotifyError('sd_notify to /run/systemd/notify failed: ECONNREFUSED', { cause }),
  IPC_FLOCK_UNAVAILABLE: () => new shared.FlockUnavailableError('flock is unavailable: no addon', { cause }),
  IPC_ABORTED: () => new shared.AbortedError(target, { cause }),
  IPC_USAGE: () => new shared.UsageError('unknown command "cert"', { cause }),
  IPC_CERTS_UNSAFE_DIR: () => new shared.CertsDirUnsafeError('/srv/certs', 'is writable by others', { cause }),
  IPC_CERTS_EXISTS: () => new shared.CertsFileExistsError('/srv/certs/ca.crt', 'use --force'),
  IPC_CERTS_BAD_FILE: () => new shared.CertsFileError('/srv/certs/x.crt', 'cannot be parsed', { cause }),
  IPC_CERTS_CA_UNUSABLE: () => new shared.CaUnusableError('the CA expired', { cause }),
  IPC_CERTS_WRITE: () => new shared.CertsWriteError('/srv/certs/x.crt', 'cannot create its temporary file (ENOSPC)', { cause }),
  IPC_CERTS_UNSUPPORTED_KEY: () => new shared.UnsupportedKeyError('ed25519'),
}

/** Instances whose constructor takes no cause. */
const NO_CAUSE = new Set<IpcErrorCode>(['IPC_HTTP_STATUS', 'IPC_SOCKET_PATH_TOO_LONG', 'IPC_TLS_REQUIRED', 'IPC_CERTS_EXISTS', 'IPC_CERTS_UNSUPPORTED_KEY'])

describe('error codes', () => {
  it('the docs table lies between its markers, in one file', () => {
    expect(rows.length).toBeGreaterThan(0)
    expect(path.relative(ROOT, table.file)).toMatch(/^(README\.md|docs\/.+\.md)$/)
  })

  it.each(Object.entries(all))('%s is documented in the README with its class', (code, cls) => {
    expect(documented.get(code)).toBe(cls.name)
  })

  it('the README documents no code that does not exist', () => {
    expect([...documented.keys()].filter((c) => !(c in all))).toEqual([])
  })

  it('the docs table lists the codes once each, in the order of ERROR_TABLE', () => {
    expect(rows.map((m) => m[1])).toEqual(Object.keys(ERROR_TABLE))
  })

  it.each(Object.keys(ERROR_TABLE) as IpcErrorCode[])('%s: the docs row shows the class, statusCode and description of ERROR_TABLE', (code) => {
    const row = ERROR_TABLE[code]
    expect(documented.get(code)).toBe(row.name)
    expect(documentedStatus.get(code)).toBe(code === 'IPC_HTTP_STATUS' ? '4xx/502' : row.statusCode)
    // On a mismatch, copy the description from packages/shared/src/error-table.ts (or change it there).
    expect(documentedDescription.get(code)).toBe(row.description)
  })

  it('ERROR_CODES has one class per row of ERROR_TABLE, named and coded by it; the certs and peercred maps are parts of it', () => {
    expect(Object.keys(ERROR_CODES)).toEqual(Object.keys(ERROR_TABLE))
    for (const [code, cls] of Object.entries(ERROR_CODES)) {
      expect(cls.name).toBe(ERROR_TABLE[code as IpcErrorCode].name)
      expect(cls.code).toBe(code)
    }
    for (const [code, cls] of Object.entries({ ...CERTS_ERROR_CODES, ...PEERCRED_ERROR_CODES })) expect(cls).toBe(ERROR_CODES[code as IpcErrorCode])
    expect(new Set(Object.values(ERROR_TABLE).map((r) => r.name)).size).toBe(Object.keys(ERROR_TABLE).length)
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
    if (!NO_CAUSE.has(code)) expect(err.cause).toBe(cause)
    else expect(err.cause).toBeUndefined()
    if (code !== 'IPC_HTTP_STATUS') expect(err.statusCode).toBe(ERROR_TABLE[code].statusCode)
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

  it('a switch on err.code narrows to the class of each code', () => {
    const describe = (err: AnyIpcError): string => {
      switch (err.code) {
        case 'IPC_HTTP_STATUS':
          return `status ${err.status}` // compiles only because the case narrowed the type
        case 'IPC_UNSAFE_PATH':
          return `${err.path} named by ${err.option}`
        case 'IPC_CERTS_WRITE':
          return err.file
        default:
          return err.code
      }
    }
    expect(describe(make.IPC_HTTP_STATUS())).toBe('status 404')
    expect(describe(make.IPC_UNSAFE_PATH())).toBe('/run/naaccord/service.sock.pid named by --pid-file')
    expect(describe(make.IPC_CERTS_WRITE())).toBe('/srv/certs/x.crt')
    expect(describe(make.IPC_TIMEOUT())).toBe('IPC_TIMEOUT')
  })

  it('the classes keep their constructor arguments as fields, and their messages', () => {
    const unsafe = make.IPC_UNSAFE_PATH()
    expect([unsafe.path, unsafe.option, unsafe.owner]).toEqual(['/run/naaccord/service.sock.pid', '--pid-file', 65534])
    expect(unsafe.message).toBe('/run/naaccord/service.sock.pid (--pid-file): owned by uid 65534')
    expect(make.IPC_SOCKET_IN_USE().message).toBe(`a live server already listens on ${target} (pid 4121); stop it or choose another socketPath`)
    expect(make.IPC_SOCKET_IN_USE().pid).toBe(4121)
    expect(make.IPC_TLS_EXPIRED().message).toBe('expired (certificate CN=x, valid to Jan 1 2020)')
    expect(make.IPC_TLS_EXPIRED().validTo).toBe('Jan 1 2020')
    expect(make.IPC_INHERITED_SOCKET().fd).toBe(3)
    expect(make.IPC_UNSAFE_SOCKET_PATH().owner).toBeUndefined()
    expect('owner' in make.IPC_UNSAFE_SOCKET_PATH()).toBe(true)
    expect(make.IPC_CERTS_UNSUPPORTED_KEY().message).toBe('unsupported key type ed25519; use an ECDSA (P-256, P-384, P-521) or RSA key')
    expect(new shared.UnsupportedKeyError('ec', 'secp256k1').message).toBe('unsupported key type ec (secp256k1); use an ECDSA (P-256, P-384, P-521) or RSA key')
    class Subclassed extends shared.TimeoutError {}
    const sub = new Subclassed(target, 5)
    expect(sub).toBeInstanceOf(shared.TimeoutError)
    expect(sub.name).toBe('Subclassed')
    expect(sub.timeoutMs).toBe(5)
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
      expect(pkg.ERROR_TABLE).toBe(ERROR_TABLE)
      expect(pkg.IpcError).toBe(IpcError)
      expect(pkg.isIpcError).toBe(isIpcError)
    }
  })

  it('errors from a second copy of the module are recognised both ways (branded, not prototype identity)', async () => {
    const t = tempDir()
    defer(t.cleanup)
    // The error modules, copied together (errors.ts imports the factory and the table beside it).
    for (const f of ['errors.ts', 'ipc-error.ts', 'error-table.ts']) fs.copyFileSync(path.join(ROOT, 'packages/shared/src', f), path.join(t.dir, f))
    const copy = path.join(t.dir, 'errors.ts')
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

/** An IpcError with this code, made by our classes (not a plain Error with a code copied on). */
function expectOurs(err: unknown, code: IpcErrorCode): void {
  expect(err).toBeInstanceOf(IpcError)
  expect(isIpcError(err, code)).toBe(true)
  expect(err).toBeInstanceOf(ERROR_CODES[code] as unknown as AnyClass)
}

describe('the public API throws only IpcErrors where it threw plain or raw system errors', () => {
  it('writeFileAtomic / writeFilesAtomic: a failed write is IPC_CERTS_WRITE with the fs error as cause', async () => {
    const t = tempDir()
    defer(t.cleanup)
    const missing = path.join(t.dir, 'missing', 'ca.crt')
    const one = await failure<shared.CertsWriteError>(writeFileAtomic(missing, 'x', 0o644))
    expectOurs(one, 'IPC_CERTS_WRITE')
    expect(one.file).toBe(missing)
    expect((one.cause as NodeJS.ErrnoException).code).toBe('ENOENT')
    fs.writeFileSync(path.join(t.dir, 'plain'), '')
    const notDir = path.join(t.dir, 'plain', 'a.key')
    const many = await failure<shared.CertsWriteError>(writeFilesAtomic([{ file: notDir, data: 'k', mode: 0o600 }]))
    expectOurs(many, 'IPC_CERTS_WRITE')
    expect((many.cause as NodeJS.ErrnoException).code).toBe('ENOTDIR')
    expect(fs.readdirSync(t.dir).sort()).toEqual(['plain']) // no temporary file left
  })

  it('rotate: a leaf with a key we cannot reissue (Ed25519, made by openssl) is IPC_CERTS_UNSUPPORTED_KEY', async () => {
    const t = tempDir()
    defer(t.cleanup)
    const dir = path.join(t.dir, 'certs')
    const ca = await initCa({ dir, commonName: 'Test CA' })
    const leaf = path.join(dir, 'edge')
    fs.writeFileSync(path.join(t.dir, 'ext.cnf'), 'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n')
    await run('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', `${leaf}.key`])
    await run('openssl', ['req', '-new', '-key', `${leaf}.key`, '-subj', '/CN=localhost', '-out', path.join(t.dir, 'edge.csr')])
    await run('openssl', ['x509', '-req', '-in', path.join(t.dir, 'edge.csr'), '-CA', ca.certPath, '-CAkey', path.join(dir, 'ca.key'), '-set_serial', '7', '-days', '5', '-extfile', path.join(t.dir, 'ext.cnf'), '-out', `${leaf}.crt`])
    const err = await failure<shared.UnsupportedKeyError>(rotate({ dir, all: true }))
    expectOurs(err, 'IPC_CERTS_UNSUPPORTED_KEY')
    expect(err.keyType).toBe('ed25519')
  })

  it('tryLockExclusive without the addon is IPC_FLOCK_UNAVAILABLE (a child process: the loader caches)', async () => {
    const t = tempDir()
    defer(t.cleanup)
    const script = `
      const m = await import('@naaccord/ipc-peercred')
      const s = await import('@naaccord/ipc-shared')
      try { m.tryLockExclusive(0); console.log('null') } catch (err) {
        console.log(JSON.stringify({ code: err.code, ours: s.isIpcError(err, 'IPC_FLOCK_UNAVAILABLE'), cls: err instanceof m.FlockUnavailableError, message: err.message }))
      }`
    const { stdout } = await run(process.execPath, ['--conditions=@naaccord/source', '--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      env: { ...process.env, [ENV.peerAddon]: path.join(t.dir, 'missing', 'peercred.node') },
    })
    const out = JSON.parse(stdout) as { code: string; ours: boolean; cls: boolean; message: string }
    expect(out).toMatchObject({ code: 'IPC_FLOCK_UNAVAILABLE', ours: true, cls: true })
    expect(out.message).toContain('flock is unavailable')
  })

  it('serve() on a TCP port another process holds is IPC_TCP_LISTEN with the address and Node\'s error as cause', async () => {
    const t = tempDir()
    defer(t.cleanup)
    const taken = net.createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    defer(() => new Promise((resolve) => taken.close(resolve)))
    const port = (taken.address() as net.AddressInfo).port
    const options = { socketPath: path.join(t.dir, 's.sock'), listen: [{ host: '127.0.0.1', port }], allowPlaintextTcp: true, logger: false as const, handleSignals: false }
    const err = await failure<shared.TcpListenError>(serverPkg.serve((_req, res) => res.end(), options))
    expectOurs(err, 'IPC_TCP_LISTEN')
    expect(err.address).toBe(`127.0.0.1:${port}`)
    expect((err.cause as NodeJS.ErrnoException).code).toBe('EADDRINUSE')
    expect(fs.readdirSync(t.dir)).toEqual([]) // the socket listener opened before it is closed again
  })

  it('a request its caller aborts without a reason fails with IPC_ABORTED (client.dispatcher, a real server)', async () => {
    const t = tempDir()
    defer(t.cleanup)
    const socketPath = path.join(t.dir, 's.sock')
    const server = http.createServer((_req, res) => res.end('ok'))
    await new Promise<void>((resolve) => server.listen(socketPath, resolve))
    defer(() => new Promise((resolve) => server.close(resolve)))
    const client = clientPkg.createClient({ socketPath, logger: false, acknowledgePlaintext: true })
    defer(() => client.close())
    const err = await new Promise<unknown>((resolve) => {
      const handler = {
        onConnect: (abort: (reason?: Error) => void) => abort(),
        onHeaders: () => true,
        onData: () => true,
        onComplete: () => resolve(undefined),
        onError: (e: Error) => resolve(e),
      }
      client.dispatcher.dispatch({ origin: 'http://localhost', path: '/', method: 'GET' }, handler as unknown as Dispatcher.DispatchHandler)
    })
    expectOurs(err, 'IPC_ABORTED')
    expect((err as shared.AbortedError).target).toBe(socketPath)
  })
})
