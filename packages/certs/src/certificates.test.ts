import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isIpcError } from '@naaccord/ipc-shared'
import { createCa } from './ca.js'
import { inspectCertificate } from './inspect.js'
import { issueCertificate } from './issue.js'
import type { CaPem } from './options.js'
import { spkiPin } from './spki-pin.js'

const run = promisify(execFile)
const DAY = 24 * 60 * 60 * 1000

let dir: string
let ca: CaPem

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'certs-'))
  ca = await createCa()
})

afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true })
})

async function write(name: string, text: string): Promise<string> {
  const file = path.join(dir, name)
  await fs.writeFile(file, text)
  return file
}

async function code(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise
  } catch (err) {
    return (err as { code?: string }).code
  }
  return undefined
}

describe('createCa', () => {
  it('makes a P-256 CA with pathlen 0, keyCertSign and cRLSign, valid ~1825 days', async () => {
    const info = inspectCertificate(ca.certPem)
    expect(info).toMatchObject({
      subject: 'CN=naaccord-ipc internal CA',
      commonName: 'naaccord-ipc internal CA',
      isCa: true,
      selfSigned: true,
      keyUsage: ['keyCertSign', 'cRLSign'],
      keyAlgorithm: 'ecdsa-p256',
    })
    expect(info.daysToExpiry).toBe(1824)
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/)

    const { stdout } = await run('openssl', ['x509', '-in', await write('ca.crt', ca.certPem), '-noout', '-text'])
    expect(stdout).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/)
    expect(stdout).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/)
    expect(stdout).toMatch(/Subject Key Identifier/)
  })

  it('takes a common name, a lifetime and a key algorithm', async () => {
    const rsa = await createCa({ commonName: 'NAACCORD-Internal-CA', days: 10, keyAlgorithm: 'rsa-2048' })
    expect(inspectCertificate(rsa.certPem)).toMatchObject({ commonName: 'NAACCORD-Internal-CA', daysToExpiry: 9, keyAlgorithm: 'rsa-2048' })
  })

  it('refuses unknown and malformed options with IPC_INVALID_OPTION', async () => {
    expect(await code(createCa({ days: 0 }))).toBe('IPC_INVALID_OPTION')
    expect(await code(createCa({ commonName: '' }))).toBe('IPC_INVALID_OPTION')
    expect(await code(createCa({ keyAlgorithm: 'dsa' as never }))).toBe('IPC_INVALID_OPTION')
    expect(await code(createCa({ dayz: 3 } as never))).toBe('IPC_INVALID_OPTION')
  })
})

describe('issueCertificate', () => {
  it('issues a server certificate that openssl verifies, with DNS and IP SANs and serverAuth', async () => {
    const server = await issueCertificate({ ca, kind: 'server', names: ['localhost', 'services.internal'] })
    const info = inspectCertificate(server.certPem)
    expect(info).toMatchObject({
      subject: 'CN=localhost',
      issuer: 'CN=naaccord-ipc internal CA',
      sans: { dns: ['localhost', 'services.internal'], ip: ['127.0.0.1', '::1'], uri: [] },
      isCa: false,
      keyUsage: ['digitalSignature'],
      extKeyUsage: ['serverAuth'],
    })
    expect(info.daysToExpiry).toBe(89)
    // Backdated for clock skew, by about five minutes.
    expect(Date.now() - info.notBefore.getTime()).toBeGreaterThan(4 * 60_000)
    expect(Date.now() - info.notBefore.getTime()).toBeLessThan(6 * 60_000)
    // Random, positive, 16 bytes.
    expect(info.serialNumber).toMatch(/^[4-7][0-9A-F]{31}$/)

    const caFile = await write('ca.crt', ca.certPem)
    const certFile = await write('server.crt', server.certPem)
    const { stdout } = await run('openssl', ['verify', '-CAfile', caFile, '-purpose', 'sslserver', certFile])
    expect(stdout.trim()).toBe(`${certFile}: OK`)
    const text = (await run('openssl', ['x509', '-in', certFile, '-noout', '-text'])).stdout
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/)
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature\n/)
    expect(text).toMatch(/Authority Key Identifier/)
  })

  it('issues a client certificate that openssl verifies, with a URI SAN and clientAuth', async () => {
    const client = await issueCertificate({ ca, kind: 'client', names: ['web-server'], days: 30 })
    const info = inspectCertificate(client.certPem)
    expect(info).toMatchObject({
      commonName: 'web-server',
      sans: { dns: ['web-server'], ip: [], uri: ['urn:naaccord:client:web-server'] },
      extKeyUsage: ['clientAuth'],
      daysToExpiry: 29,
    })
    const caFile = await write('ca.crt', ca.certPem)
    const certFile = await write('client.crt', client.certPem)
    const { stdout } = await run('openssl', ['verify', '-CAfile', caFile, '-purpose', 'sslclient', certFile])
    expect(stdout.trim()).toBe(`${certFile}: OK`)
  })

  it('makes a new key and serial each time', async () => {
    const a = await issueCertificate({ ca, kind: 'server', names: ['localhost'] })
    const b = await issueCertificate({ ca, kind: 'server', names: ['localhost'] })
    expect(spkiPin(a.certPem)).not.toBe(spkiPin(b.certPem))
    expect(inspectCertificate(a.certPem).serialNumber).not.toBe(inspectCertificate(b.certPem).serialNumber)
  })

  it('takes explicit dates, so a test can make an expired certificate', async () => {
    const notBefore = new Date(Date.now() - 10 * DAY)
    const notAfter = new Date(Date.now() - DAY)
    const expired = await issueCertificate({ ca, kind: 'client', names: ['web-server'], notBefore, notAfter })
    const info = inspectCertificate(expired.certPem)
    expect(info.notAfter.getTime()).toBe(Math.floor(notAfter.getTime() / 1000) * 1000)
    expect(info).toMatchObject({ expired: true, daysToExpiry: -2 })
    const caFile = await write('ca.crt', ca.certPem)
    const certFile = await write('expired.crt', expired.certPem)
    const result = await run('openssl', ['verify', '-CAfile', caFile, certFile]).catch((err: { stdout: string; stderr: string }) => err)
    expect(`${result.stdout}${result.stderr}`).toMatch(/certificate has expired/)
  })

  it('signs with a CA key written by the old openssl script (PKCS#1 RSA)', async () => {
    const key = path.join(dir, 'ca.key')
    const cert = path.join(dir, 'ca.crt')
    await run('openssl', ['genrsa', '-traditional', '-out', key, '2048'])
    await run('openssl', ['req', '-new', '-x509', '-days', '30', '-key', key, '-out', cert, '-subj', '/CN=NAACCORD-Internal-CA'])
    const old = { certPem: await fs.readFile(cert, 'utf8'), keyPem: await fs.readFile(key, 'utf8') }
    expect(old.keyPem).toMatch(/BEGIN RSA PRIVATE KEY/)
    const server = await issueCertificate({ ca: old, kind: 'server', names: ['localhost'], days: 7 })
    const { stdout } = await run('openssl', ['verify', '-CAfile', cert, await write('s.crt', server.certPem)])
    expect(stdout).toMatch(/: OK/)
  })

  it('refuses a CA key that does not match, a non-CA, an expired CA and a leaf outliving its CA', async () => {
    const other = await createCa()
    const leaf = await issueCertificate({ ca, kind: 'server', names: ['localhost'] })
    const expiredCa = await createCa({ notBefore: new Date(Date.now() - 2 * DAY), notAfter: new Date(Date.now() - DAY) })
    const shortCa = await createCa({ days: 10 })
    expect(await code(issueCertificate({ ca: { certPem: ca.certPem, keyPem: other.keyPem }, kind: 'server', names: ['x'] }))).toBe('IPC_CERTS_CA_UNUSABLE')
    expect(await code(issueCertificate({ ca: leaf, kind: 'server', names: ['x'] }))).toBe('IPC_CERTS_CA_UNUSABLE')
    expect(await code(issueCertificate({ ca: expiredCa, kind: 'server', names: ['x'] }))).toBe('IPC_CERTS_CA_UNUSABLE')
    expect(await code(issueCertificate({ ca: shortCa, kind: 'server', names: ['x'], days: 30 }))).toBe('IPC_CERTS_CA_UNUSABLE')
  })

  it('refuses bad options with IPC_INVALID_OPTION', async () => {
    expect(await code(issueCertificate({ ca, kind: 'peer' as never, names: ['x'] }))).toBe('IPC_INVALID_OPTION')
    expect(await code(issueCertificate({ ca, kind: 'server', names: [] }))).toBe('IPC_INVALID_OPTION')
    expect(await code(issueCertificate({ ca, kind: 'server', names: ['x'], days: 1.5 }))).toBe('IPC_INVALID_OPTION')
    expect(await code(issueCertificate({ ca: { certPem: 'nope', keyPem: ca.keyPem }, kind: 'server', names: ['x'] }))).toBe('IPC_INVALID_OPTION')
    expect(await code(issueCertificate({ ca, kind: 'server', names: ['x'], notBefore: new Date(), notAfter: new Date(Date.now() - DAY) }))).toBe('IPC_INVALID_OPTION')
  })
})

describe('inspectCertificate and spkiPin', () => {
  it('reports the fingerprint as Node does and the pin as openssl computes it', async () => {
    const server = await issueCertificate({ ca, kind: 'server', names: ['localhost'] })
    const file = await write('server.crt', server.certPem)
    const info = inspectCertificate(server.certPem)
    const node = new X509Certificate(server.certPem)
    expect(info.fingerprint256).toBe(node.fingerprint256)
    expect(info.serialNumber).toBe(node.serialNumber)

    const { stdout } = await run('sh', [
      '-c',
      'openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64',
      'sh',
      file,
    ])
    expect(spkiPin(server.certPem)).toBe(stdout.trim())
    expect(spkiPin(node)).toBe(stdout.trim())
    expect(spkiPin(Buffer.from(server.certPem))).toBe(stdout.trim())
    expect(info.spkiPin).toBe(stdout.trim())
  })

  it('refuses text without a certificate, pointing out a key', () => {
    let err: unknown
    try {
      inspectCertificate(ca.keyPem)
    } catch (e) {
      err = e
    }
    expect(isIpcError(err, 'IPC_INVALID_OPTION')).toBe(true)
    expect((err as Error).message).toMatch(/private key/)
  })
})
