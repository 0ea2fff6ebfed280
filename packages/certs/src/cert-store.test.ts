import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { initCa, issueToDir } from './cert-store.js'
import { inspectCertificate } from './inspect.js'

const run = promisify(execFile)

let tmp: string
let dir: string

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cert-store-'))
  dir = path.join(tmp, 'certs')
})

afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true })
})

async function mode(file: string): Promise<number> {
  return (await fs.stat(file)).mode & 0o777
}

async function code(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise
  } catch (err) {
    return (err as { code?: string }).code
  }
  return undefined
}

describe('initCa', () => {
  it('creates the folder 0700 (with parents), ca.key 0600 and ca.crt 0644', async () => {
    const nested = path.join(dir, 'a', 'b')
    const ca = await initCa({ dir: nested, commonName: 'NAACCORD-Internal-CA' })
    expect(ca).toMatchObject({ dir: nested, certPath: path.join(nested, 'ca.crt'), keyPath: path.join(nested, 'ca.key'), replaced: false })
    expect(await mode(nested)).toBe(0o700)
    expect(await mode(ca.keyPath)).toBe(0o600)
    expect(await mode(ca.certPath)).toBe(0o644)
    expect(await fs.readFile(ca.certPath, 'utf8')).toBe(ca.certPem)
    expect(inspectCertificate(ca.certPem).commonName).toBe('NAACCORD-Internal-CA')
    // No temporary file is left behind.
    expect((await fs.readdir(nested)).sort()).toEqual(['ca.crt', 'ca.key'])
  })

  it('sets 0700 whatever the umask', async () => {
    const old = process.umask(0)
    try {
      await initCa({ dir })
    } finally {
      process.umask(old)
    }
    expect(await mode(dir)).toBe(0o700)
    expect(await mode(path.join(dir, 'ca.key'))).toBe(0o600)
  })

  it('never replaces a CA without force', async () => {
    const first = await initCa({ dir })
    expect(await code(initCa({ dir }))).toBe('IPC_CERTS_EXISTS')
    expect(await fs.readFile(first.certPath, 'utf8')).toBe(first.certPem)
    const second = await initCa({ dir, force: true })
    expect(second.replaced).toBe(true)
    expect(second.certPem).not.toBe(first.certPem)
    expect(await mode(second.keyPath)).toBe(0o600)
  })

  it('refuses an existing folder writable by group or others, and a file in place of the folder', async () => {
    await fs.mkdir(dir)
    await fs.chmod(dir, 0o777)
    expect(await code(initCa({ dir }))).toBe('IPC_CERTS_UNSAFE_DIR')
    await fs.chmod(dir, 0o770)
    expect(await code(initCa({ dir }))).toBe('IPC_CERTS_UNSAFE_DIR')
    expect(await fs.readdir(dir)).toEqual([])
    const file = path.join(tmp, 'file')
    await fs.writeFile(file, '')
    expect(await code(initCa({ dir: file }))).toBe('IPC_CERTS_UNSAFE_DIR')
  })

  it('leaves the mode of a safe existing folder alone', async () => {
    await fs.mkdir(dir, { mode: 0o755 })
    await fs.chmod(dir, 0o755)
    await initCa({ dir })
    expect(await mode(dir)).toBe(0o755)
  })

  it('checks its options before touching the file system', async () => {
    expect(await code(initCa({ dir, days: -1 }))).toBe('IPC_INVALID_OPTION')
    await expect(fs.stat(dir)).rejects.toThrow()
  })
})

describe('issueToDir', () => {
  beforeEach(async () => {
    await initCa({ dir })
  })

  it('writes <name>.crt 0644 and <name>.key 0600 for server and client, verified by openssl', async () => {
    const server = await issueToDir({ dir, kind: 'server', names: ['localhost', 'services.internal'] })
    const client = await issueToDir({ dir, kind: 'client', names: ['web-server'] })
    expect(server.certPath).toBe(path.join(dir, 'localhost.crt'))
    expect(client.keyPath).toBe(path.join(dir, 'web-server.key'))
    for (const c of [server, client]) {
      expect(await mode(c.keyPath)).toBe(0o600)
      expect(await mode(c.certPath)).toBe(0o644)
      expect(await fs.readFile(c.keyPath, 'utf8')).toBe(c.keyPem)
    }
    const { stdout } = await run('openssl', ['verify', '-CAfile', path.join(dir, 'ca.crt'), server.certPath, client.certPath])
    expect(stdout).toBe(`${server.certPath}: OK\n${client.certPath}: OK\n`)
    expect((await fs.readdir(dir)).sort()).toEqual(['ca.crt', 'ca.key', 'localhost.crt', 'localhost.key', 'web-server.crt', 'web-server.key'])
  })

  it('names files after --file, or the sanitised first name', async () => {
    expect((await issueToDir({ dir, kind: 'server', names: ['*.services.internal'] })).certPath).toBe(path.join(dir, 'wildcard.services.internal.crt'))
    expect((await issueToDir({ dir, kind: 'server', names: ['localhost'], fileName: 'services' })).certPath).toBe(path.join(dir, 'services.crt'))
    expect(await code(issueToDir({ dir, kind: 'server', names: ['localhost'], fileName: '../x' }))).toBe('IPC_INVALID_OPTION')
    expect(await code(issueToDir({ dir, kind: 'server', names: ['ca'] }))).toBe('IPC_INVALID_OPTION')
  })

  it('does not replace a certificate without force', async () => {
    const first = await issueToDir({ dir, kind: 'client', names: ['web-server'] })
    expect(await code(issueToDir({ dir, kind: 'client', names: ['web-server'] }))).toBe('IPC_CERTS_EXISTS')
    const second = await issueToDir({ dir, kind: 'client', names: ['web-server'], force: true })
    expect(second.replaced).toBe(true)
    expect(second.keyPem).not.toBe(first.keyPem)
  })

  it('needs an existing folder with a CA', async () => {
    expect(await code(issueToDir({ dir: path.join(tmp, 'none'), kind: 'server', names: ['localhost'] }))).toBe('IPC_CERTS_BAD_FILE')
    await fs.rm(path.join(dir, 'ca.key'))
    expect(await code(issueToDir({ dir, kind: 'server', names: ['localhost'] }))).toBe('IPC_CERTS_BAD_FILE')
  })
})
