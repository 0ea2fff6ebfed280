import { execFile } from 'node:child_process'
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createCa } from './ca.js'
import { initCa, issueToDir } from './cert-store.js'
import { inspectCertificate } from './inspect.js'
import { issueCertificate } from './issue.js'
import { rotate } from './rotate.js'

const run = promisify(execFile)
const DAY = 24 * 60 * 60 * 1000

let tmp: string
let dir: string

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'rotate-'))
  dir = path.join(tmp, 'certs')
})

afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true })
})

const read = (name: string) => fs.readFile(path.join(dir, name), 'utf8')
const mode = async (name: string) => (await fs.stat(path.join(dir, name))).mode & 0o777

function keyMatchesCert(keyPem: string, certPem: string): boolean {
  const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' })
  return fromKey.equals(new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' }))
}

describe('rotate', () => {
  it('reissues only the leaves of this CA that expire soon, with new keys, same names, modes 0600/0644', async () => {
    await initCa({ dir })
    await issueToDir({ dir, kind: 'server', names: ['localhost', 'services.internal'] })
    await issueToDir({ dir, kind: 'client', names: ['web-server'], days: 10 })
    await issueToDir({ dir, kind: 'client', names: ['old-client'], notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) })
    await issueToDir({ dir, kind: 'server', names: ['orphan'], days: 5 })
    await fs.rm(path.join(dir, 'orphan.key'))
    const foreign = await issueCertificate({ ca: await createCa(), kind: 'client', names: ['foreign'], days: 5 })
    await fs.writeFile(path.join(dir, 'foreign.crt'), foreign.certPem)
    await fs.writeFile(path.join(dir, 'foreign.key'), foreign.keyPem, { mode: 0o600 })

    const before = Object.fromEntries(await Promise.all((await fs.readdir(dir)).map(async (f) => [f, await read(f)] as const)))
    const result = await rotate({ dir, withinDays: 30 })

    expect(result.dir).toBe(dir)
    expect(result.rotated.map((r) => [r.name, r.kind, r.names])).toEqual([
      ['old-client', 'client', ['old-client']],
      ['web-server', 'client', ['web-server']],
    ])
    expect(result.kept.map((k) => [k.name, k.reason])).toEqual([
      ['foreign', 'not issued by ca.crt'],
      ['localhost', 'expires in 89 days'],
      ['orphan', 'no orphan.key beside it'],
    ])

    for (const name of ['old-client', 'web-server']) {
      const certPem = await read(`${name}.crt`)
      const keyPem = await read(`${name}.key`)
      expect(keyPem).not.toBe(before[`${name}.key`])
      expect(certPem).not.toBe(before[`${name}.crt`])
      expect(keyMatchesCert(keyPem, certPem)).toBe(true)
      expect(await mode(`${name}.key`)).toBe(0o600)
      expect(await mode(`${name}.crt`)).toBe(0o644)
      expect(inspectCertificate(certPem)).toMatchObject({
        commonName: name,
        sans: { dns: [name], ip: [], uri: [`urn:naaccord:client:${name}`] },
        extKeyUsage: ['clientAuth'],
        daysToExpiry: 89,
      })
      const { stdout } = await run('openssl', ['verify', '-CAfile', path.join(dir, 'ca.crt'), path.join(dir, `${name}.crt`)])
      expect(stdout).toMatch(/: OK\n$/)
    }
    // Untouched: the CA, the leaves not due, the foreign pair; and no temporary file left over.
    for (const name of ['ca.crt', 'ca.key', 'localhost.crt', 'localhost.key', 'orphan.crt', 'foreign.crt', 'foreign.key']) {
      expect(await read(name)).toBe(before[name])
    }
    expect((await fs.readdir(dir)).filter((f) => f.startsWith('.'))).toEqual([])
  })

  it('keeps a server certificate\'s kind, SANs and key algorithm', async () => {
    await initCa({ dir })
    await issueToDir({ dir, kind: 'server', names: ['localhost', 'services.internal', '10.0.0.5'], days: 1, keyAlgorithm: 'ecdsa-p384' })
    const before = inspectCertificate(await read('localhost.crt'))
    const { rotated } = await rotate({ dir, days: 30 })
    expect(rotated).toHaveLength(1)
    const after = inspectCertificate(await read('localhost.crt'))
    expect(after.sans).toEqual(before.sans)
    expect(after).toMatchObject({ extKeyUsage: ['serverAuth'], keyAlgorithm: 'ecdsa-p384', daysToExpiry: 29 })
    expect(after.spkiPin).not.toBe(before.spkiPin)
  })

  it('reissues everything with all: true, and nothing when nothing is due', async () => {
    await initCa({ dir })
    await issueToDir({ dir, kind: 'server', names: ['localhost'] })
    expect((await rotate({ dir })).rotated).toEqual([])
    expect((await rotate({ dir, all: true })).rotated.map((r) => r.name)).toEqual(['localhost'])
  })

  it('changes no file when the CA cannot sign the new certificates', async () => {
    await initCa({ dir, days: 20 })
    await issueToDir({ dir, kind: 'client', names: ['a'], days: 5 })
    await issueToDir({ dir, kind: 'client', names: ['b'], days: 5 })
    const before = await read('a.key')
    await expect(rotate({ dir, days: 90 })).rejects.toMatchObject({ code: 'IPC_CERTS_CA_UNUSABLE' })
    expect(await read('a.key')).toBe(before)
  })

  it('refuses a missing folder and bad options', async () => {
    await expect(rotate({ dir })).rejects.toMatchObject({ code: 'IPC_CERTS_BAD_FILE' })
    await expect(rotate({ dir, withinDays: -1 })).rejects.toMatchObject({ code: 'IPC_INVALID_OPTION' })
    await expect(rotate({ dir, within: 3 } as never)).rejects.toMatchObject({ code: 'IPC_INVALID_OPTION' })
  })
})
