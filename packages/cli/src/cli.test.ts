import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { main } from './cli.js'
import { spkiPin } from '@naaccord/ipc-certs'

const execFileAsync = promisify(execFile)
const packageRoot = fileURLToPath(new URL('..', import.meta.url))

let tmp: string
let dir: string

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'certs-cli-'))
  dir = path.join(tmp, 'certs')
})

afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true })
})

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await main(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) })
  return { code, stdout, stderr }
}

const mode = async (file: string) => (await fs.stat(path.join(dir, file))).mode & 0o777

describe('naaccord-ipc certs (in process)', () => {
  it('init, issue server, issue client, inspect, rotate', async () => {
    const init = await cli('certs', 'init', '--dir', dir, '--cn', 'NAACCORD-Internal-CA', '--days', '3650')
    expect(init).toMatchObject({ code: 0, stderr: '' })
    expect(init.stdout).toMatch(/created CA "CN=NAACCORD-Internal-CA"/)
    expect(await mode('.')).toBe(0o700)
    expect(await mode('ca.key')).toBe(0o600)

    const server = await cli('certs', 'issue', 'server', '--name', 'localhost', '--name', 'services.internal', '--dir', dir)
    expect(server).toMatchObject({ code: 0, stderr: '' })
    expect(server.stdout).toMatch(/issued server certificate "CN=localhost" \(DNS:localhost, DNS:services.internal, IP:127.0.0.1, IP:::1\)/)
    const client = await cli('certs', 'issue', 'client', '--name', 'web-server', '--dir', dir, '--days', '20')
    expect(client).toMatchObject({ code: 0, stderr: '' })
    expect(await mode('localhost.key')).toBe(0o600)
    expect(await mode('web-server.key')).toBe(0o600)
    expect(await mode('web-server.crt')).toBe(0o644)

    const pin = spkiPin(await fs.readFile(path.join(dir, 'localhost.crt')))
    const text = await cli('certs', 'inspect', path.join(dir, 'localhost.crt'))
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^subject: +CN=localhost$/m)
    expect(text.stdout).toMatch(/^issuer: +CN=NAACCORD-Internal-CA$/m)
    expect(text.stdout).toMatch(/^expires in: +89 days$/m)
    expect(text.stdout).toMatch(/^SHA-256: +([0-9A-F]{2}:){31}[0-9A-F]{2}$/m)
    expect(text.stdout).toContain(`sha256//${pin}`)

    const json = await cli('certs', 'inspect', path.join(dir, 'web-server.crt'), '--json')
    expect(json.code).toBe(0)
    expect(JSON.parse(json.stdout)).toMatchObject({
      commonName: 'web-server',
      sans: { dns: ['web-server'], uri: ['urn:naaccord:client:web-server'] },
      daysToExpiry: 19,
      extKeyUsage: ['clientAuth'],
    })

    const rotated = await cli('certs', 'rotate', '--dir', dir, '--within-days', '30')
    expect(rotated.code).toBe(0)
    expect(rotated.stdout).toMatch(/^rotated  web-server \(client\)/m)
    expect(rotated.stdout).toMatch(/^kept     localhost: expires in 89 days$/m)
    expect(await mode('web-server.key')).toBe(0o600)
    const rotatedJson = JSON.parse((await cli('certs', 'rotate', '--dir', dir, '--json')).stdout)
    expect(rotatedJson).toMatchObject({ rotated: [], kept: [{ name: 'localhost' }, { name: 'web-server' }] })
  })

  it.each([
    [['certs', 'init', '--dir', 'x', '--bogus'], /certs init: Unknown option '--bogus'; it takes .*--dir/],
    [['certs', 'init', '--days', 'soon'], /--days: must be a whole number from 1 to 36500, got "soon"/],
    [['certs', 'init', '--days'], /Option '--days <value>' argument missing/],
    [['certs', 'issue', '--name', 'x'], /say which kind/],
    [['certs', 'issue', 'peer', '--name', 'x'], /certs issue <kind>: must be one of "server", "client", got "peer"/],
    [['certs', 'issue', 'server'], /give at least one --name/],
    [['certs', 'issue', 'server', '--name', 'no such host'], /--name: "no such host" is not a valid host name/],
    [['certs', 'issue', 'client', '--name', 'x', '--key-algorithm', 'dsa'], /--key-algorithm: must be one of/],
    [['certs', 'inspect'], /give the certificate file/],
    [['certs', 'rotate', '--within-days=-3'], /--within-days: must be a whole number from 0/],
    [['certs', 'rotate', '--within-days', '-3'], /Option '--within-days' argument is ambiguous/],
    [['certs', 'inspect', 'a.crt', 'b.crt'], /certs inspect: unexpected argument "b.crt"/],
    [['certs', 'frobnicate'], /unknown command "certs frobnicate"/],
    [['cert'], /unknown command "cert"/],
    [[], /^Usage: naaccord-ipc certs/],
  ])('%j exits 2 with a message and no stack', async (argv, message) => {
    const result = await cli(...argv)
    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toMatch(message)
    expect(result.stderr).not.toMatch(/\n\s+at /)
  })

  it('refuses, with exit 2, to replace a CA, to write into a world-writable folder, and to inspect what is not a certificate', async () => {
    expect((await cli('certs', 'init', '--dir', dir)).code).toBe(0)
    const again = await cli('certs', 'init', '--dir', dir)
    expect(again.code).toBe(2)
    expect(again.stderr).toMatch(/IPC_CERTS_EXISTS: .*ca.crt already exists; use --force/)
    expect((await cli('certs', 'init', '--dir', dir, '--force')).stdout).toMatch(/^replaced CA/)

    const open = path.join(tmp, 'open')
    await fs.mkdir(open)
    await fs.chmod(open, 0o777)
    const unsafe = await cli('certs', 'init', '--dir', open)
    expect(unsafe).toMatchObject({ code: 2 })
    expect(unsafe.stderr).toMatch(/IPC_CERTS_UNSAFE_DIR: .*writable by group or others \(mode 0777\)/)

    const missing = await cli('certs', 'inspect', path.join(tmp, 'nope.crt'))
    expect(missing).toMatchObject({ code: 2 })
    expect(missing.stderr).toMatch(/IPC_CERTS_BAD_FILE: .*nope.crt: cannot be read \(ENOENT\); check the path/)
    const key = await cli('certs', 'inspect', path.join(dir, 'ca.key'))
    expect(key.stderr).toMatch(/IPC_CERTS_BAD_FILE: .*ca.key: holds no "-----BEGIN CERTIFICATE-----" block \(it holds a private key/)

    const noCa = await cli('certs', 'issue', 'server', '--name', 'localhost', '--dir', path.join(tmp, 'empty'))
    expect(noCa.code).toBe(2)
    expect(noCa.stderr).toMatch(/does not exist; create the CA first/)
  })

  it('prints help with exit 0', async () => {
    const help = await cli('certs', '--help')
    expect(help).toMatchObject({ code: 0, stderr: '' })
    expect(help.stdout).toMatch(/naaccord-ipc certs issue server\|client --name NAME/)
    const issueHelp = await cli('certs', 'issue', '--help')
    expect(issueHelp.stdout).toMatch(/^Usage: naaccord-ipc certs issue/)
    expect(issueHelp.stdout).toMatch(/--name NAME/)
  })
})

describe('naaccord-ipc as a program', () => {
  const node = (args: string[]) =>
    execFileAsync(process.execPath, args, { cwd: packageRoot, timeout: 20_000 }).then(
      (r) => ({ code: 0, ...r }),
      (err: { code: number; stdout: string; stderr: string }) => err,
    )

  it('runs src/cli.ts through tsx and exits 0, then 2 on a bad flag', async () => {
    const source = ['--conditions=@naaccord/source', '--import', 'tsx', path.join(packageRoot, 'src/cli.ts')]
    const ok = await node([...source, 'certs', 'init', '--dir', dir])
    expect(ok).toMatchObject({ code: 0, stderr: '' })
    expect(await mode('ca.key')).toBe(0o600)
    const bad = await node([...source, 'certs', 'issue', 'server', '--nmae', 'localhost'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/Unknown option '--nmae'/)
  })

  it('runs through the bin launcher (dist when built, else the source via tsx)', async () => {
    const bin = path.join(packageRoot, 'bin/naaccord-ipc.js')
    const help = await node([bin, 'certs', '--help'])
    expect(help).toMatchObject({ code: 0 })
    expect(help.stdout).toMatch(/^Usage: naaccord-ipc certs/)
    const bad = await node([bin, 'certs', 'rotate', '--within-days', 'x'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--within-days: must be a whole number/)
  })
})
