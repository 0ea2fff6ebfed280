// naaccord-ipc check-tls and naaccord-ipc doctor against real servers, sockets and certificates.
import { execFile, spawn } from 'node:child_process'
import { chmodSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { createTestPki, spkiPin, type TestPki } from '@naaccord/ipc-certs'
import { main } from '@naaccord/ipc-cli'
import { serve, type ServerOptions } from '@naaccord/ipc-server'
import { ROOT, deferCleanup, exited, spawnTs, tempDir, waitForLine } from './helpers.js'

const execFileAsync = promisify(execFile)
const defer = deferCleanup()

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const code = await main(argv, { stdout: (t) => void (out += t), stderr: (t) => void (err += t) })
  return { code, out, err }
}

interface Env {
  dir: string
  socketPath: string
  pki: TestPki
}

async function env(days = 90): Promise<Env> {
  const t = tempDir()
  defer(t.cleanup)
  const pki = await createTestPki({ dir: path.join(t.dir, 'pki'), days })
  return { dir: t.dir, socketPath: path.join(t.dir, 's.sock'), pki }
}

async function start(e: Env, options: ServerOptions = {}, tls = true) {
  const ipc = await serve((_req, res) => res.end('app'), {
    socketPath: e.socketPath,
    logger: false,
    handleSignals: false,
    requestLog: false,
    ...(tls ? { tls: { cert: e.pki.server.certPath, key: e.pki.server.keyPath, ca: e.pki.ca.certPath } } : { acknowledgePlaintextSocket: true }),
    ...options,
  })
  defer(() => ipc.close())
  return ipc
}

const mtls = (e: Env) => ['--ca', e.pki.ca.certPath, '--cert', e.pki.client.certPath, '--key', e.pki.client.keyPath]

interface Finding {
  check: string
  severity: string
  message: string
  fix?: string
}

describe('naaccord-ipc check-tls', () => {
  it('over the socket: verifies, prints version, cipher, subject, issuer, SANs, days and pin; exit 0', async () => {
    const e = await env(90)
    await start(e)
    const r = await run('check-tls', '--socket', e.socketPath, ...mtls(e), '--pin', spkiPin(e.pki.server.certPem), '--json')
    expect(r.code).toBe(0)
    const j = JSON.parse(r.out) as { status: string; connection: Record<string, unknown>; findings: Finding[] }
    expect(j.status).toBe('ok')
    expect(j.connection).toMatchObject({
      version: 'TLSv1.3',
      cipher: expect.stringMatching(/^TLS_/),
      subject: 'CN=localhost',
      issuer: 'CN=naaccord-ipc internal CA',
      sans: expect.arrayContaining(['DNS:localhost', 'IP Address:127.0.0.1']),
      daysToExpiry: 89,
      spkiPin: spkiPin(e.pki.server.certPem),
      http: 'HTTP/1.1 200 OK',
    })
    const text = await run('check-tls', '--socket', e.socketPath, ...mtls(e))
    expect(text.out).toMatch(/^OK check-tls/)
    expect(text.out).toContain('SPKI pin: sha256//')
  })

  it('over TCP, by IP: the name checked is the IP SAN', async () => {
    const e = await env(90)
    const ipc = await start(e, { listen: [{ host: '127.0.0.1', port: 0 }] })
    const port = ipc.listeners[0]!.address.split(':').pop()!
    const r = await run('check-tls', '--host', '127.0.0.1', '--port', port, ...mtls(e), '--json')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.out)).toMatchObject({ status: 'ok', servername: '127.0.0.1', connection: { subject: 'CN=localhost' } })
  })

  it.each([
    [10, 1, 'warning'],
    [3, 2, 'critical'],
  ])('a certificate valid %i days: exit %i (%s), with the rotate command as the fix', async (days, code, severity) => {
    const e = await env(days)
    await start(e)
    const r = await run('check-tls', '--socket', e.socketPath, ...mtls(e), '--json')
    expect(r.code).toBe(code)
    const expiry = (JSON.parse(r.out) as { findings: Finding[] }).findings.find((f) => f.check === 'expiry')!
    expect(expiry.severity).toBe(severity)
    expect(expiry.fix).toContain('naaccord-ipc certs rotate')
  })

  it.each([
    ['a CA that did not sign the server', (e: Env) => ['--ca', e.pki.otherCa.certPath, '--cert', e.pki.client.certPath, '--key', e.pki.client.keyPath], 'SELF_SIGNED_CERT_IN_CHAIN'],
    ['a name the certificate does not carry', (e: Env) => [...mtls(e), '--servername', 'services.internal'], 'ERR_TLS_CERT_ALTNAME_INVALID'],
    ['no client certificate', (e: Env) => ['--ca', e.pki.ca.certPath], 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'],
    ['a wrong pin', (e: Env) => [...mtls(e), '--pin', spkiPin(e.pki.otherServer.certPem)], 'pin'],
  ])('critical (exit 2) with %s, naming the failure and the fix', async (_what, args, expected) => {
    const e = await env(90)
    await start(e)
    const r = await run('check-tls', '--socket', e.socketPath, ...args(e), '--json')
    expect(r.code).toBe(2)
    const j = JSON.parse(r.out) as { status: string; findings: Finding[] }
    expect(j.status).toBe('critical')
    const bad = j.findings.filter((f) => f.severity === 'critical')
    expect(bad.map((f) => `${f.check} ${f.message}`).join('; ')).toContain(expected)
    expect(bad.every((f) => (f.fix ?? '').length > 10)).toBe(true)
  })

  it('has no unverified mode: --ca is required (exit 2, names the flag)', async () => {
    const r = await run('check-tls', '--socket', '/run/x.sock')
    expect(r.code).toBe(2)
    expect(r.err).toContain('--ca')
  })

  it('runs from the installed command (bin/naaccord-ipc.js), exit code included', async () => {
    const e = await env(10)
    await start(e)
    const bin = path.join(ROOT, 'packages', 'cli', 'bin', 'naaccord-ipc.js')
    const r = await execFileAsync(process.execPath, [bin, 'check-tls', '--socket', e.socketPath, ...mtls(e)]).then(
      () => ({ code: 0, stdout: '' }),
      (err: { code: number; stdout: string }) => err,
    )
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/^WARNING check-tls/)
  })
})

describe('naaccord-ipc doctor', () => {
  it('a healthy plaintext server: every finding ok, exit 0', async () => {
    const e = await env()
    await start(e, {}, false)
    const r = await run('doctor', '--socket', e.socketPath, '--mode', '0600', '--owner', String(process.getuid!()), '--json')
    const j = JSON.parse(r.out) as { status: string; findings: Finding[] }
    expect(j.findings.filter((f) => f.severity !== 'ok')).toEqual([])
    expect(r.code).toBe(0)
    expect(j.findings.map((f) => f.check)).toEqual(expect.arrayContaining(['path', 'socket', 'folder', 'lock', 'server', 'allow', 'health', 'security']))
  })

  it('with TLS: the TLS chain, name, days and pin are checked too; a mode other than configured is a warning (exit 1)', async () => {
    const e = await env(90)
    await start(e)
    const r = await run('doctor', '--socket', e.socketPath, '--mode', '0660', ...mtls(e), '--pin', spkiPin(e.pki.server.certPem), '--json')
    const j = JSON.parse(r.out) as { status: string; findings: Finding[]; tls: { daysToExpiry: number } }
    expect(j.findings.find((f) => f.check === 'mode')).toMatchObject({ severity: 'warning', fix: expect.stringContaining('socketMode') })
    expect(j.findings.filter((f) => f.check.startsWith('tls')).map((f) => [f.check, f.severity])).toEqual([
      ['tls expiry', 'ok'],
      ['tls pin', 'ok'],
      ['tls verify', 'ok'],
    ])
    expect(j.tls.daysToExpiry).toBe(89)
    expect(r.code).toBe(1)
  })

  it('no socket: critical (exit 2), says to check the server and socketPath', async () => {
    const e = await env()
    const r = await run('doctor', '--socket', e.socketPath, '--json')
    expect(r.code).toBe(2)
    const f = (JSON.parse(r.out) as { findings: Finding[] }).findings.find((x) => x.check === 'socket')!
    expect(f).toMatchObject({ severity: 'critical', message: expect.stringContaining('ENOENT'), fix: expect.stringContaining('socketPath') })
  })

  it('a stale socket left by a killed process: nobody listens, no lock owner; exit 2', async () => {
    const e = await env()
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(e.socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`])
    await exited(child)
    const r = await run('doctor', '--socket', e.socketPath, '--json')
    expect(r.code).toBe(2)
    const j = JSON.parse(r.out) as { findings: Finding[] }
    expect(j.findings.find((f) => f.check === 'server')).toMatchObject({ severity: 'critical', message: expect.stringContaining('ECONNREFUSED'), fix: expect.stringContaining('stale') })
    expect(j.findings.find((f) => f.check === 'lock')).toMatchObject({ severity: 'warning' })
  })

  it('a server killed with SIGKILL: its lock holder is gone and nobody listens; both critical', async () => {
    const e = await env()
    const child = spawnTs('server.ts', [e.socketPath])
    defer(() => child.kill('SIGKILL'))
    const pid = Number((await waitForLine(child, 'ready')).split(' ')[1])
    const alive = await run('doctor', '--socket', e.socketPath, '--json')
    expect((JSON.parse(alive.out) as { findings: Finding[] }).findings.find((f) => f.check === 'lock')).toMatchObject({ severity: 'ok', message: `held by pid ${pid}, alive` })
    child.kill('SIGKILL')
    await exited(child)
    const r = await run('doctor', '--socket', e.socketPath, '--json')
    expect(r.code).toBe(2)
    const j = JSON.parse(r.out) as { findings: Finding[] }
    expect(j.findings.find((f) => f.check === 'lock')).toMatchObject({ severity: 'critical', message: expect.stringContaining(`pid ${pid}`), fix: expect.stringContaining('restart the server') })
    expect(j.findings.find((f) => f.check === 'server')).toMatchObject({ severity: 'critical', message: expect.stringContaining('ECONNREFUSED') })
  })

  it('a socket path longer than sun_path holds: critical, says to shorten it', async () => {
    const r = await run('doctor', '--socket', `/tmp/${'x'.repeat(120)}.sock`, '--json')
    expect(r.code).toBe(2)
    expect((JSON.parse(r.out) as { findings: Finding[] }).findings).toEqual([
      expect.objectContaining({ check: 'path', severity: 'critical', fix: expect.stringContaining('shorter socketPath') }),
    ])
  })

  it('our uid outside the allow policy: critical, says which uid to add', async () => {
    const e = await env()
    await start(e, { allow: { uids: [65534] } }, false)
    const r = await run('doctor', '--socket', e.socketPath, '--json')
    expect(r.code).toBe(2)
    expect((JSON.parse(r.out) as { findings: Finding[] }).findings.find((f) => f.check === 'allow')).toMatchObject({
      severity: 'critical',
      fix: expect.stringContaining(`add uid ${process.getuid!()}`),
    })
  })

  it('a socket folder that others may write: critical, with the chmod to run', async () => {
    const e = await env()
    await start(e, {}, false)
    chmodSync(e.dir, 0o777)
    const r = await run('doctor', '--socket', e.socketPath, '--json')
    expect(r.code).toBe(2)
    expect((JSON.parse(r.out) as { findings: Finding[] }).findings.find((f) => f.check === 'folder' && f.severity === 'critical')).toMatchObject({
      message: expect.stringContaining(e.dir),
      fix: `anyone who can write it can replace the socket: chmod go-w ${e.dir}`,
    })
  })

  it('a TLS server asked in plaintext: critical, says to pass --ca', async () => {
    const e = await env()
    await start(e)
    const r = await run('doctor', '--socket', e.socketPath, '--json')
    expect(r.code).toBe(2)
    const bad = (JSON.parse(r.out) as { findings: Finding[] }).findings.filter((f) => f.severity === 'critical')
    expect(bad.some((f) => (f.fix ?? '').includes('--ca'))).toBe(true)
  })
})
