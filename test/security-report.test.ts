// The start-up security report: every setting that weakens the default is said at warn, naming the
// setting and where it came from (option, environment variable, default), whatever the log level;
// /healthz carries the report and `naaccord-ipc doctor` shows each weakening as a warning.
// Reproduces an outside probe's findings: NAACCORD_TRUSTED_PROXY_UIDS=65534 let uid 65534 claim
// any forwardedIdentity, NAACCORD_SOCKET_MODE=666 and NAACCORD_PEERCRED_ADDON were silent, and
// NAACCORD_LOG_LEVEL=error hid the one warning there was.
import { execFile, type ChildProcess } from 'node:child_process'
import { chmodSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { promisify } from 'node:util'
import { pino, type Logger } from 'pino'
import { describe, expect, it } from 'vitest'
import { createTestPki } from '@naaccord/ipc-certs'
import { createClient } from '@naaccord/ipc-client'
import { resolveServerOptions, securityContext, serve, serverSecurityReport, type SecuritySetting } from '@naaccord/ipc-server'
import { diagnoseSocket } from '@naaccord/ipc-cli'
import { supervise } from '@naaccord/ipc-server/supervisor'
import { NOBODY, ROOT, deferCleanup, exited, isRoot, spawnTs, tempDir } from './helpers.js'

const execFileAsync = promisify(execFile)
const defer = deferCleanup()
const ok = (_req: unknown, res: { end(body: string): void }) => res.end('{}')
type Line = Record<string, unknown>

/** A pino logger at `level` that keeps its lines in memory. */
function levelLogger(level: string): { logger: Logger; lines: Line[] } {
  const lines: Line[] = []
  return { logger: pino({ level }, { write: (l: string) => void lines.push(JSON.parse(l) as Line) }), lines }
}

/** The warn lines (level 40) whose message names `setting` and `source`. */
const warnsOf = (lines: Line[], setting: string, source: string) =>
  lines.filter((l) => l.level === 40 && String(l.msg).includes(` ${setting} = `) && String(l.msg).includes(`(from ${source})`))

function socketDir(): string {
  const t = tempDir()
  defer(t.cleanup)
  chmodSync(t.dir, 0o711) // uid 65534 may reach the socket inside
  return t.dir
}

/** Start test/fixtures/env-server.ts with `env`; resolves its stdout lines (JSON) once it is ready. */
async function envServer(socketPath: string, env: Record<string, string>): Promise<{ child: ChildProcess; lines: Line[] }> {
  const child = spawnTs('env-server.ts', [socketPath], { env })
  defer(async () => {
    child.kill('SIGTERM')
    await exited(child)
  })
  let out = ''
  let err = ''
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready in 15 s; stdout: ${out}; stderr: ${err}`)), 15_000)
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (/^ready \d+$/m.test(out)) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`exited (${code}) before ready; stdout: ${out}; stderr: ${err}`))
    })
  })
  return { child, lines: out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line) }
}

describe.skipIf(process.platform !== 'linux')('start-up security report: weakenings are said whatever the level', () => {
  it('a serve() configured by its environment at NAACCORD_LOG_LEVEL=error warns of the trusted proxy uid, the socket mode and the allowed uid, naming each variable', async () => {
    const socketPath = path.join(socketDir(), 's.sock')
    const { lines } = await envServer(socketPath, {
      NAACCORD_LOG_LEVEL: 'error',
      NAACCORD_TRUSTED_PROXY_UIDS: String(NOBODY),
      NAACCORD_SOCKET_MODE: '666',
      NAACCORD_ALLOW_UIDS: `0,${NOBODY}`,
    })
    expect(warnsOf(lines, 'trustedProxy.uids', 'env:NAACCORD_TRUSTED_PROXY_UIDS')).toEqual([
      expect.objectContaining({ setting: 'trustedProxy.uids', value: [NOBODY], source: 'env:NAACCORD_TRUSTED_PROXY_UIDS', msg: expect.stringContaining('x-client-cert-subject') }),
    ])
    expect(warnsOf(lines, 'socketMode', 'env:NAACCORD_SOCKET_MODE')).toEqual([expect.objectContaining({ setting: 'socketMode', value: '0666' })])
    expect(warnsOf(lines, 'allow.uids', 'env:NAACCORD_ALLOW_UIDS')).toHaveLength(1)
    // Level error: nothing else of the start (no info report line, no "listening").
    expect(lines.filter((l) => Number(l.level) < 40)).toEqual([])
    if (isRoot) {
      // What the setting does, now said at start: uid 65534 claims any identity.
      const { stdout } = await execFileAsync('curl', ['-sS', '--max-time', '5', '--unix-socket', socketPath, '-H', 'x-client-cert-subject: CN=admin', 'http://localhost/'], { uid: NOBODY, gid: NOBODY, cwd: '/' })
      expect(JSON.parse(stdout).peer).toMatchObject({ uid: NOBODY, forwardedIdentity: 'CN=admin' })
    }
  })

  it('NAACCORD_PEERCRED_ADDON at NAACCORD_LOG_LEVEL=error: a warn line names the addon file and the variable', async () => {
    const addon = createRequire(import.meta.url)('node-gyp-build').path(path.join(ROOT, 'packages', 'peercred')) as string
    const { lines } = await envServer(path.join(socketDir(), 's.sock'), { NAACCORD_LOG_LEVEL: 'error', NAACCORD_PEERCRED_ADDON: addon })
    expect(warnsOf(lines, 'peerCredentialsAddon', 'env:NAACCORD_PEERCRED_ADDON')).toEqual([expect.objectContaining({ value: addon, msg: expect.stringContaining(addon) })])
  })

  it('socketMode 0o666 by option, with a logger at level "error": one warn line naming socketMode and "option"; /healthz and the doctor carry it', async () => {
    const socketPath = path.join(socketDir(), 's.sock')
    const { logger, lines } = levelLogger('error')
    const ipc = await serve(ok, { socketPath, socketMode: 0o666, logger, handleSignals: false, acknowledgePlaintextSocket: true })
    defer(() => ipc.close())
    expect(warnsOf(lines, 'socketMode', 'option')).toEqual([expect.objectContaining({ setting: 'socketMode', value: '0666', source: 'option' })])
    expect(lines.filter((l) => l.level === 40)).toHaveLength(1) // nothing else weakens; no duplicate
    expect(ipc.security.filter((s) => s.weakens).map((s) => s.setting)).toEqual(['socketMode'])

    const client = createClient({ socketPath, logger: false, retries: 0, acknowledgePlaintext: true })
    defer(() => client.close())
    const health = await client.get<{ status: string; security: SecuritySetting[] }>('/healthz')
    expect(health.status).toBe('ok') // weakenings are not the service's health
    expect(health.security).toEqual(ipc.security)

    const { findings } = await diagnoseSocket({ socketPath })
    expect(findings.filter((f) => f.check === 'security')).toEqual([
      expect.objectContaining({ severity: 'warning', message: expect.stringMatching(/socketMode = 0666 \(from option\)/), fix: expect.stringContaining('socketMode') }),
    ])
  })

  it('with logger: false each weakening is a process warning (code IPC_SECURITY_WEAKENED)', async () => {
    const warnings: Array<Error & { code?: string }> = []
    const onWarning = (w: Error & { code?: string }) => void warnings.push(w)
    process.on('warning', onWarning)
    defer(() => process.off('warning', onWarning))
    const ipc = await serve(ok, { socketPath: path.join(socketDir(), 's.sock'), socketMode: 0o666, allow: false, logger: false, handleSignals: false })
    defer(() => ipc.close())
    await new Promise((r) => setImmediate(r))
    const ours = warnings.filter((w) => w.code === 'IPC_SECURITY_WEAKENED')
    expect(ours.map((w) => /security weakened: (\S+) /.exec(w.message)?.[1])).toEqual(['socketMode', 'allow', 'acknowledgePlaintextSocket'])
    expect(ours[1]!.message).toContain('(from option)')
  })

  it('a server at safe settings warns of nothing, and its info line lists every setting with its source', async () => {
    const { logger, lines } = levelLogger('info')
    const ipc = await serve(ok, { socketPath: path.join(socketDir(), 's.sock'), logger, handleSignals: false, acknowledgePlaintextSocket: true })
    defer(() => ipc.close())
    expect(lines.filter((l) => l.level === 40)).toEqual([])
    const report = lines.find((l) => l.msg === 'security settings in force')!.security as SecuritySetting[]
    expect(report).toEqual(ipc.security)
    expect(report.find((s) => s.setting === 'socketMode')).toEqual(expect.objectContaining({ value: '0600', source: 'default', weakens: false }))
    expect(report.find((s) => s.setting === 'acknowledgePlaintextSocket')).toEqual(expect.objectContaining({ value: true, source: 'option', weakens: false }))
  })

  it('the supervisor (naaccord-ipc run) warns of the mode of the socket it holds, whatever the level', async () => {
    const { logger, lines } = levelLogger('error')
    const sup = await supervise({
      command: [process.execPath, '-e', 'setTimeout(() => {}, 60_000)'],
      socketPath: path.join(socketDir(), 's.sock'),
      socketMode: '0666',
      readyTimeoutMs: 1,
      logger,
    })
    defer(() => sup.stop())
    expect(warnsOf(lines, 'socketMode', 'option')).toEqual([expect.objectContaining({ value: '0666', msg: expect.stringContaining("the app's allow policy") })])
  })

  it('the client warns of its downgrades at creation whatever the level', () => {
    const { logger, lines } = levelLogger('error')
    createClient({ socketPath: '/run/naaccord-none/s.sock', logger, tls: { insecureSkipVerify: true } }).destroy()
    createClient({ url: 'http://127.0.0.1:9', logger }).destroy()
    createClient({ socketPath: '/run/naaccord-none/s.sock', logger }).destroy()
    expect(lines.map((l) => [l.level, String(l.msg).split(' (')[0]])).toEqual([
      [40, 'TLS VERIFICATION IS OFF for this client'],
      [40, 'plaintext HTTP over TCP to http://127.0.0.1:9'],
      [40, 'plaintext HTTP over the Unix socket'],
    ])
  })
})

describe('start-up security report: TLS and TCP settings', () => {
  it('clientAuth not required, TLS 1.2 and plaintext TCP weaken; the defaults do not', async () => {
    const t = tempDir()
    defer(t.cleanup)
    const pki = await createTestPki({ dir: path.join(t.dir, 'pki') })
    const ctx = { uid: process.getuid!(), peerCredentialsAddon: undefined }
    const socketPath = path.join(t.dir, 's.sock')
    const weak = (r: SecuritySetting[]) => r.filter((s) => s.weakens).map((s) => `${s.setting}=${JSON.stringify(s.value)} ${s.source}`)
    const tls = { cert: pki.server.certPath, key: pki.server.keyPath, ca: pki.ca.certPath }
    expect(weak(serverSecurityReport(resolveServerOptions({ socketPath, logger: false, tls }, {}), ctx))).toEqual([])
    expect(weak(serverSecurityReport(resolveServerOptions({ socketPath, logger: false, tls: { ...tls, clientAuth: 'optional', minVersion: 'TLSv1.2' } }, {}), ctx))).toEqual([
      'tls.clientAuth="optional" option',
      'tls.minVersion="TLSv1.2" option',
    ])
    const tcp = resolveServerOptions({ logger: false, listen: [{ host: '127.0.0.1', port: 8080 }], allowPlaintextTcp: true }, {})
    expect(weak(serverSecurityReport(tcp, ctx))).toEqual(['allowPlaintextTcp=true option'])
    expect(serverSecurityReport(tcp, securityContext()).find((s) => s.setting === 'allowPlaintextTcp')!.why).toContain('127.0.0.1:8080')
  })
})
