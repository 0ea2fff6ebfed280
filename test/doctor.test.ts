// naaccord-ipc doctor trusts what the client trusts, sends nothing to a socket another user could
// have placed, follows root's own links (/var/run -> /run) silently, and prints what a server or
// the filesystem supplied with its control characters escaped. The attacker is uid 65534.
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import tls from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestPki } from '@naaccord/ipc-certs'
import { serve } from '@naaccord/ipc-server'
import { main } from '@naaccord/ipc-cli'
import { bundleFixture, spawnBundle } from './bundle.js'
import { NOBODY, deferCleanup, isRoot, socketTestKit, waitForLine } from './helpers.js'

const defer = deferCleanup()
const { dir, nobodyFolder, countingListener: attackerListener, moveIntoRootFolder } = socketTestKit(defer, 'nipc-doc-')
const NEEDS_ROOT = 'needs root: the attacker runs as uid 65534'
const me = process.getuid?.() ?? -1

interface Finding {
  check: string
  severity: string
  message: string
  fix?: string
}

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const code = await main(argv, { stdout: (t) => void (out += t), stderr: (t) => void (err += t) })
  return { code, out, err }
}

async function doctorJson(...argv: string[]): Promise<{ code: number; findings: Finding[] }> {
  const r = await run('doctor', ...argv, '--json')
  return { code: r.code, findings: (JSON.parse(r.out) as { findings: Finding[] }).findings }
}

const notOk = (findings: Finding[]) => findings.filter((f) => f.severity !== 'ok')

async function plainServer(socketPath: string) {
  const ipc = await serve((_req, res) => res.end('app'), { socketPath, logger: false, handleSignals: false, requestLog: false, acknowledgePlaintextSocket: true })
  defer(() => ipc.close())
  return ipc
}

describe.skipIf(!isRoot)(`doctor sends nothing to a socket another user could have placed (${NEEDS_ROOT})`, () => {
  let bundle: Awaited<ReturnType<typeof bundleFixture>>
  beforeAll(async () => {
    bundle = await bundleFixture('server.ts')
  })
  afterAll(() => bundle.cleanup())

  it("uid 65534's socket in that user's own folder, without --owner: critical naming the folder, its owner and --owner; exit 2; not even a connection", async () => {
    const own = nobodyFolder()
    const listener = await attackerListener(path.join(own, 's.sock'))
    const { code, findings } = await doctorJson('--socket', path.join(own, 's.sock'))
    await new Promise((r) => setTimeout(r, 100))
    expect(listener.bytes()).toBe(0)
    expect(listener.connections()).toBe(0)
    expect(code).toBe(2)
    const bad = findings.find((f) => f.severity === 'critical')!
    expect(bad).toMatchObject({ check: 'folder', message: expect.stringContaining(own) })
    expect(bad.message).toContain(`uid ${NOBODY}`)
    expect(bad.fix).toContain(`--owner ${NOBODY}`)
    expect(findings.map((f) => f.check)).not.toContain('server')
  })

  it("--owner 65534 names the services user: its folder, socket and process are ok and doctor asks the server", async () => {
    const own = nobodyFolder()
    const socketPath = path.join(own, 's.sock')
    const child = spawnBundle(bundle, [socketPath, 'root-may-call'], { uid: NOBODY, gid: NOBODY })
    defer(() => child.kill('SIGKILL'))
    await waitForLine(child, 'ready')
    const { code, findings } = await doctorJson('--socket', socketPath, '--owner', String(NOBODY), '--mode', '0600')
    for (const check of ['path', 'folder', 'socket', 'process', 'lock', 'server', 'allow', 'health']) {
      expect(findings.filter((f) => f.check === check).map((f) => f.severity), check).toEqual(['ok'])
    }
    expect(findings.find((f) => f.check === 'process')!.message).toContain(`uid ${NOBODY}`)
    // What is left are the server's own declared weakenings (root in allow, the addon test hook).
    expect(notOk(findings).map((f) => f.check)).toEqual(notOk(findings).map(() => 'security'))
    expect(code).toBe(notOk(findings).length > 0 ? 1 : 0)
  })

  it('a root-owned socket in a root folder with a uid-65534 process listening: critical (process), nothing sent', async () => {
    const own = nobodyFolder()
    const listener = await attackerListener(path.join(own, 's.sock'))
    // Root moves the socket into its own folder and owns the file: only the kernel's
    // credentials of the listening process still tell who is there (as with a passed descriptor).
    const moved = moveIntoRootFolder(path.join(own, 's.sock'))
    const { code, findings } = await doctorJson('--socket', moved)
    await new Promise((r) => setTimeout(r, 100))
    expect(listener.bytes()).toBe(0)
    expect(code).toBe(2)
    expect(findings.find((f) => f.check === 'process')).toMatchObject({
      severity: 'critical',
      message: expect.stringMatching(new RegExp(`runs as uid ${NOBODY} \\(pid \\d+\\)`)),
      fix: expect.stringContaining(`--owner ${NOBODY}`),
    })
  })
})

describe('doctor asks a trusted socket within --timeout-ms', () => {
  it('a listener of our own that never answers: critical (server, ETIMEDOUT), bounded by --timeout-ms', async () => {
    const socketPath = path.join(dir(), 's.sock')
    const server = net.createServer((s) => s.on('error', () => {}).resume())
    await new Promise<void>((resolve) => server.listen(socketPath, resolve))
    defer(() => new Promise((resolve) => server.close(resolve)))
    const started = Date.now()
    const { code, findings } = await doctorJson('--socket', socketPath, '--timeout-ms', '300')
    expect(Date.now() - started).toBeLessThan(3_000)
    expect(code).toBe(2)
    expect(findings.find((f) => f.check === 'process')).toMatchObject({ severity: 'ok', message: expect.stringContaining(`uid ${me}`) })
    expect(findings.find((f) => f.check === 'server')).toMatchObject({ severity: 'critical', message: expect.stringContaining('ETIMEDOUT') })
  })
})

describe('doctor follows links that root (or we) own, silently', () => {
  it('a socket reached through a root-owned symlinked folder (<tmp>/varrun -> <tmp>/run): no warning, exit 0', async () => {
    const d = dir()
    fs.mkdirSync(path.join(d, 'run'), { mode: 0o755 })
    fs.symlinkSync(path.join(d, 'run'), path.join(d, 'varrun'))
    const socketPath = path.join(d, 'varrun', 'naaccord', 's.sock')
    await plainServer(socketPath)
    const { code, findings } = await doctorJson('--socket', socketPath, '--mode', '0600', '--owner', String(me))
    expect(notOk(findings)).toEqual([])
    expect(code).toBe(0)
    expect(findings.find((f) => f.check === 'folder')!.message).toContain(path.join(d, 'run', 'naaccord', 's.sock'))
  })

  const varRunIsLink = (() => {
    try {
      return fs.lstatSync('/var/run').isSymbolicLink()
    } catch {
      return false
    }
  })()
  it.skipIf(!isRoot || !varRunIsLink)('the default layout, /var/run/<folder>/service.sock with /var/run -> /run: no warning, exit 0 (needs root and a /var/run link)', async () => {
    const top = fs.mkdtempSync('/var/run/nipc-doc-')
    defer(() => fs.rmSync(top, { recursive: true, force: true }))
    const socketPath = path.join(top, 'naaccord', 'service.sock')
    await plainServer(socketPath)
    const { code, findings } = await doctorJson('--socket', socketPath)
    expect(notOk(findings)).toEqual([])
    expect(code).toBe(0)
  })
})

/** Any control character but the newline that lays out the report (C0, DEL, C1). */
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/
const TITLE = '\x1b]0;pwned\x07'
const CLEAR = '\x1b[2J'

describe('doctor and check-tls print what a server or the filesystem supplied with control characters escaped', () => {
  it('health warnings, status and security entries from /healthz', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    const server = http.createServer((_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(
        JSON.stringify({
          status: `degraded${CLEAR}`,
          warnings: [TITLE, CLEAR, 'c1 \u009b2J', 'bidi \u202e'],
          security: [{ setting: `socketMode${TITLE}`, value: CLEAR, source: 'env:X\x07', weakens: true, why: 'because\r\n  [ok] folder: forged line' }],
        }),
      )
    })
    await new Promise<void>((resolve) => server.listen(socketPath, resolve))
    defer(() => new Promise((resolve) => server.close(resolve)))

    const text = await run('doctor', '--socket', socketPath)
    expect(text.out).not.toMatch(RAW_CONTROL)
    expect(text.out).not.toContain('\u202e')
    expect(text.out).toContain('\\x1b]0;pwned\\x07')
    expect(text.out).toContain('\\x1b[2J')
    expect(text.out).toContain('\\x9b2J')
    expect(text.out).toContain('\\u202e')
    expect(text.out).toContain('because\\r\\n  [ok] folder: forged line')
    expect(text.code).toBe(1)

    const json = await run('doctor', '--socket', socketPath, '--json')
    expect(json.out).not.toMatch(RAW_CONTROL)
    expect(json.out).not.toContain('\u202e')
    const findings = (JSON.parse(json.out) as { findings: Finding[] }).findings
    expect(findings.find((f) => f.check === 'health')!.message).toContain('\\x1b]0;pwned\\x07')
    expect(findings.find((f) => f.check === 'security')!.fix).toContain('X\\x07')
  })

  it('a path from a link on the way (a missing folder named with escapes)', async () => {
    const d = dir()
    fs.symlinkSync(path.join(d, `gone${CLEAR}`), path.join(d, 'link'))
    const text = await run('doctor', '--socket', path.join(d, 'link', 's.sock'))
    expect(text.code).toBe(2)
    expect(text.out).not.toMatch(RAW_CONTROL)
    expect(text.out).toContain(`gone\\x1b[2J`)
  })

  it("check-tls: the server's HTTP answer line", async () => {
    const d = dir()
    const pki = await createTestPki({ dir: path.join(d, 'pki'), days: 90 })
    const socketPath = path.join(d, 's.sock')
    const server = tls.createServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (s) => {
      s.on('error', () => {})
      // One byte 0x9b: the C1 CSI of an 8-bit terminal (check-tls reads the answer as latin1).
      s.once('data', () => s.end(Buffer.from(`HTTP/1.1 200 ${TITLE}\u009b2J\r\n\r\n`, 'latin1')))
    })
    await new Promise<void>((resolve) => server.listen(socketPath, resolve))
    defer(() => new Promise((resolve) => server.close(resolve)))
    const text = await run('check-tls', '--socket', socketPath, '--ca', pki.ca.certPath)
    expect(text.code).toBe(0)
    expect(text.out).not.toMatch(RAW_CONTROL)
    expect(text.out).toContain('HTTP/1.1 200 \\x1b]0;pwned\\x07\\x9b2J')
    const json = await run('check-tls', '--socket', socketPath, '--ca', pki.ca.certPath, '--json')
    expect(json.out).not.toMatch(RAW_CONTROL)
    expect((JSON.parse(json.out) as { connection: { http: string } }).connection.http).toBe(`HTTP/1.1 200 ${TITLE}\u009b2J`)
  })
})

describe.skipIf(!isRoot)(`operator tools read files and sockets through the safe path too (${NEEDS_ROOT})`, () => {
  it('check-tls --socket sends not even a ClientHello to a socket in a folder of uid 65534', async () => {
    const pki = await createTestPki()
    defer(() => pki.cleanup())
    const own = nobodyFolder()
    const listener = await attackerListener(path.join(own, 's.sock'))
    const r = await run('check-tls', '--socket', path.join(own, 's.sock'), '--ca', pki.ca.certPath, '--json')
    expect(r.code, r.out + r.err).not.toBe(0)
    expect(r.out + r.err).toContain('IPC_UNSAFE_SOCKET_PATH')
    await new Promise((res) => setTimeout(res, 100))
    expect(listener.connections()).toBe(0)
  })

  it('doctor --ca naming a FIFO in a folder of uid 65534 is refused at once, not read (no hang)', async () => {
    const own = nobodyFolder()
    const fifo = path.join(own, 'ca.crt')
    const { execFileSync } = await import('node:child_process')
    execFileSync('mkfifo', [fifo])
    const socketPath = path.join(dir(), 's.sock')
    await plainServer(socketPath)
    const t0 = Date.now()
    const r = await run('doctor', '--socket', socketPath, '--ca', fifo, '--timeout-ms', '1000', '--json')
    expect(Date.now() - t0).toBeLessThan(3000)
    expect(r.code, r.out + r.err).not.toBe(0)
    expect(r.out + r.err).toContain('IPC_UNSAFE_PATH')
  })

  it('certs inspect prints a subject carrying escape sequences escaped, in text and JSON', async () => {
    const t = dir()
    const cert = path.join(t, 'evil.crt')
    const { execFileSync } = await import('node:child_process')
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(t, 'evil.key'), '-out', cert, '-days', '2', '-utf8', '-subj', `/CN=a\x1b]0;PWNED\x07b\u009b2J\u202ec`], { stdio: 'ignore' })
    for (const json of [false, true]) {
      const r = await run('certs', 'inspect', cert, ...(json ? ['--json'] : []))
      expect(r.code, r.err).toBe(0)
      expect(r.out).not.toMatch(/[\x1b\x07\u009b\u202e]/)
      expect(r.out).toContain('PWNED')
    }
  })
})
