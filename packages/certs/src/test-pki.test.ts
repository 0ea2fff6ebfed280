import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { inspectCertificate } from './inspect.js'
import { createTestPki } from './test-pki.js'

let tmp: string

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'test-pki-'))
})

afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true })
})

describe('createTestPki', () => {
  it('writes every entry to its own folder and removes it on cleanup', async () => {
    const pki = await createTestPki()
    const entries = ['ca', 'server', 'client', 'expiredServer', 'expiredClient', 'otherCa', 'otherServer', 'otherClient'] as const
    for (const name of entries) {
      const entry = pki[name]
      expect(path.dirname(entry.certPath)).toBe(pki.dir)
      expect(await fs.readFile(entry.certPath, 'utf8')).toBe(entry.certPem)
      expect((await fs.stat(entry.keyPath)).mode & 0o777).toBe(0o600)
    }
    expect(inspectCertificate(pki.server.certPem)).toMatchObject({ commonName: 'localhost', sans: { ip: ['127.0.0.1', '::1'] }, issuer: 'CN=naaccord-ipc internal CA' })
    expect(inspectCertificate(pki.client.certPem)).toMatchObject({ commonName: 'web-server', extKeyUsage: ['clientAuth'] })
    expect(inspectCertificate(pki.expiredClient.certPem).expired).toBe(true)
    expect(inspectCertificate(pki.expiredServer.certPem).expired).toBe(true)
    expect(inspectCertificate(pki.otherClient.certPem).issuer).toBe('CN=naaccord-ipc other CA')
    await pki.cleanup()
    await expect(fs.stat(pki.dir)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('writes into a given folder, with given names, and leaves the folder to its owner', async () => {
    const dir = path.join(tmp, 'pki')
    const pki = await createTestPki({ dir, serverNames: ['services.internal'], clientName: 'worker', days: 30 })
    expect(pki.dir).toBe(dir)
    expect((await fs.stat(dir)).mode & 0o777).toBe(0o700)
    expect(inspectCertificate(pki.server.certPem)).toMatchObject({ commonName: 'services.internal', daysToExpiry: 29 })
    expect(inspectCertificate(pki.client.certPem).sans.uri).toEqual(['urn:naaccord:client:worker'])
    await pki.cleanup()
    expect((await fs.readdir(dir)).length).toBe(16)
  })
})
