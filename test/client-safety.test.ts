// The client never sends a byte of a request to a socket another user could have placed or
// redirected: the safe-path walk of the socket path, the kernel check of the server process, and
// both before TLS. The attacker is uid 65534; the client runs as root with its defaults.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClient } from '@naaccord/ipc-client'
import { createTestPki } from '@naaccord/ipc-certs'
import { serve } from '@naaccord/ipc-server'
import { bundleFixture } from './bundle.js'
import { NOBODY, deferCleanup, exited, isRoot, runToEnd, socketTestKit, waitForLine } from './helpers.js'

const defer = deferCleanup()
const { dir, stickyFolder, foreignScript, runAsNobody, nobodyFolder: attackerFolder, countingListener: attackerListener, moveIntoRootFolder } = socketTestKit(defer, 'nipc-cs-')
const NEEDS_ROOT = 'needs root: the attacker runs as uid 65534'

async function refusal(socketPath: string, options: Parameters<typeof createClient>[0] = {}): Promise<{ code?: string; message: string; owner?: number; path?: string }> {
  const client = createClient({ socketPath, logger: false, retries: 0, acknowledgePlaintext: true, headers: { authorization: 'Bearer secret' }, ...options })
  defer(() => client.destroy())
  return (await client.post('/records', { ssn: '123-45-6789' }).then(
    () => ({ message: 'delivered' }),
    (e: unknown) => e,
  )) as { code?: string; message: string }
}

describe.skipIf(!isRoot)(`the client refuses a socket another user could have placed (${NEEDS_ROOT})`, () => {
  it("does not follow uid 65534's symlink in a shared folder to that user's socket", async () => {
    const shared = stickyFolder()
    const theirs = path.join(attackerFolder(), 'evil.sock')
    const listener = await attackerListener(theirs)
    const link = path.join(shared, 'service.sock')
    await runToEnd(runAsNobody(foreignScript(`import fs from 'node:fs'; fs.symlinkSync(process.argv[2], process.argv[3]); console.log('linked')`), [theirs, link]))
    expect(fs.lstatSync(link).uid).toBe(NOBODY)
    const err = await refusal(link)
    expect(err.code, err.message).toBe('IPC_UNSAFE_SOCKET_PATH')
    // The shared folder itself is refused first: another user can place anything in it.
    expect(err.message).toContain(shared)
    expect(listener.bytes()).toBe(0)
  })

  it("does not connect to uid 65534's socket in that user's own folder, naming the folder and its owner", async () => {
    const own = attackerFolder()
    const theirs = path.join(own, 'evil.sock')
    const listener = await attackerListener(theirs)
    const err = await refusal(theirs)
    expect(err.code, err.message).toBe('IPC_UNSAFE_SOCKET_PATH')
    expect(err.owner).toBe(NOBODY)
    expect(err.path).toBe(own)
    expect(listener.bytes()).toBe(0)
  })

  it('does not connect to a socket uid 65534 planted directly in a shared (1777) folder', async () => {
    const shared = stickyFolder()
    const planted = path.join(shared, 'service.sock')
    const listener = await attackerListener(planted)
    const err = await refusal(planted)
    expect(err.code, err.message).toBe('IPC_UNSAFE_SOCKET_PATH')
    expect(err.path).toBe(shared)
    expect(err.message).toMatch(/writable by others/)
    expect(listener.bytes()).toBe(0)
  })

  it("expectServer: { uid: 0 } is not steered by uid 65534's link to a different root server", async () => {
    const d = dir()
    fs.chmodSync(d, 0o711)
    const real = path.join(d, 'real.sock')
    const decoy = path.join(d, 'decoy.sock')
    const served: string[] = []
    for (const [p, name] of [[real, 'real'], [decoy, 'decoy']] as const) {
      const ipc = await serve((_req, res) => {
        served.push(name)
        res.end(name)
      }, { socketPath: p, logger: false, handleSignals: false, acknowledgePlaintextSocket: true })
      defer(() => ipc.close())
    }
    const own = attackerFolder()
    const link = path.join(own, 'service.sock')
    await runToEnd(runAsNobody(foreignScript(`import fs from 'node:fs'; fs.symlinkSync(process.argv[2], process.argv[3]); console.log('linked')`), [decoy, link]))
    const err = await refusal(link, { expectServer: { uid: 0 } })
    expect(err.code, err.message).toBe('IPC_UNSAFE_SOCKET_PATH')
    expect(served).toEqual([])
  })

  it('checks the server process before TLS: a uid-65534 listener moved into a root folder sees no ClientHello', async () => {
    const own = attackerFolder()
    const listener = await attackerListener(path.join(own, 's.sock'))
    // Root itself moves the socket into its own folder and owns the file: only the kernel's
    // credentials of the listening process still tell who is there (as with a passed descriptor).
    const moved = moveIntoRootFolder(path.join(own, 's.sock'))
    const pki = await createTestPki()
    defer(() => pki.cleanup())
    const err = await refusal(moved, { tls: { ca: pki.ca.certPem } })
    expect(err.code, err.message).toBe('IPC_PEER_REJECTED')
    expect(err.message).toMatch(/runs as uid 65534 \(pid \d+\), expected uid 0/)
    expect(err.message).toContain('expectServer: { uid: 65534 }')
    // Nothing at all was written: the TLS handshake never started.
    await new Promise((r) => setTimeout(r, 100))
    expect(listener.bytes()).toBe(0)
  })

  it("the services user's socket works when it is named (the README recipe)", async () => {
    const own = attackerFolder() // here uid 65534 plays the services user, in a folder of its own
    const socketPath = path.join(own, 's.sock')
    const script = foreignScript(fs.readFileSync(path.join(import.meta.dirname, 'fixtures', 'plain-server.mjs'), 'utf8'))
    const child = runAsNobody(script, [socketPath])
    await waitForLine(child, 'ready')
    const plain = createClient({ socketPath, logger: false, retries: 0, acknowledgePlaintext: true })
    defer(() => plain.destroy())
    const refused = await plain.get('/').catch((e: { code?: string }) => e)
    expect((refused as { code?: string }).code).toBe('IPC_UNSAFE_SOCKET_PATH')
    const named = createClient({ socketPath, logger: false, retries: 0, acknowledgePlaintext: true, expectServer: { uid: NOBODY } })
    defer(() => named.destroy())
    expect(await named.get('/')).toMatchObject({ uid: NOBODY })
  })
})

describe.skipIf(!isRoot)(`NAACCORD_PEERCRED_ADDON is loaded only through the safe path (${NEEDS_ROOT})`, () => {
  let fixture: Awaited<ReturnType<typeof bundleFixture>>
  beforeAll(async () => {
    fixture = await bundleFixture('client.ts')
  })
  afterAll(() => fixture.cleanup())

  it("an addon file owned by uid 65534 is refused (IPC_UNSAFE_PATH) and nothing is sent to the attacker's socket", async () => {
    const own = attackerFolder()
    // The file itself is uid 65534's, in a folder of root's that nobody else can write.
    const rootFolder = dir()
    fs.chmodSync(rootFolder, 0o755)
    const fake = path.join(rootFolder, 'peercred.node')
    fs.copyFileSync(fixture.env.NAACCORD_PEERCRED_ADDON!, fake)
    fs.chownSync(fake, NOBODY, NOBODY)
    // The attacker's socket in a root folder, owned by root: only the process check could tell.
    const listener = await attackerListener(path.join(own, 's.sock'))
    const moved = moveIntoRootFolder(path.join(own, 's.sock'))
    const out = await runToEnd(
      spawn(process.execPath, [fixture.script, moved], { cwd: '/', env: { ...process.env, ...fixture.env, NAACCORD_PEERCRED_ADDON: fake }, stdio: ['ignore', 'pipe', 'pipe'] }),
    )
    const result = JSON.parse(out.stdout) as { ok: boolean; code?: string; message?: string }
    expect(result.code, result.message).toBe('IPC_UNSAFE_PATH')
    expect(result.message).toContain(fake)
    expect(result.message).toContain('owned by uid 65534')
    expect(listener.bytes()).toBe(0)
  })
})


describe.skipIf(!isRoot)(`certificate files are read only through the safe path (${NEEDS_ROOT})`, () => {
  it("a CA bundle owned by uid 65534, or in a shared folder, is refused by client and server (IPC_UNSAFE_PATH naming it)", async () => {
    const pki = await createTestPki()
    defer(() => pki.cleanup())
    // The attacker's CA in a root folder (the file is theirs), and a copy in a shared 1777 folder.
    const rootFolder = dir()
    fs.chmodSync(rootFolder, 0o755)
    const theirs = path.join(rootFolder, 'ca.crt')
    fs.copyFileSync(pki.otherCa.certPath, theirs)
    fs.chownSync(theirs, NOBODY, NOBODY)
    const shared = path.join(stickyFolder(), 'ca.crt')
    fs.copyFileSync(pki.ca.certPath, shared)
    for (const ca of [theirs, shared]) {
      let clientErr: { code?: string; message: string; option?: string } | undefined
      try {
        createClient({ socketPath: path.join(dir(), 's.sock'), logger: false, tls: { ca } })
      } catch (e) {
        clientErr = e as typeof clientErr
      }
      expect(clientErr?.code, clientErr?.message).toBe('IPC_UNSAFE_PATH')
      expect(clientErr?.option).toBe('tls.ca')
      const serverErr = await serve(() => {}, {
        socketPath: path.join(dir(), 's.sock'),
        logger: false,
        handleSignals: false,
        tls: { cert: pki.server.certPath, key: pki.server.keyPath, ca },
      }).then(
        (ipc) => ipc.close().then(() => ({ code: 'started', message: 'started' })),
        (e: { code?: string; message: string }) => e,
      )
      expect(serverErr.code, serverErr.message).toBe('IPC_UNSAFE_PATH')
    }
  })
})

describe.skipIf(!isRoot)(`a socket handed over to the services user (systemd's way) keeps working for its callers (${NEEDS_ROOT})`, () => {
  it('before the service listens the kernel reports root, after it the services uid: expectServer: { uid } accepts both, the default refuses the second', async () => {
    const d = dir()
    fs.chmodSync(d, 0o711)
    const socketPath = path.join(d, 's.sock')
    // The real systemd-socket-activate (root) binds and listens, and starts the service as the
    // services user (setpriv) on the first connection, handing it the socket as fd 3.
    const script = foreignScript(`
      import http from 'node:http'
      http.createServer((_req, res) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ uid: process.getuid() }))).listen({ fd: 3 }, () => console.log('adopted'))
    `)
    const child = spawn(
      'systemd-socket-activate',
      ['-l', socketPath, 'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, script],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    defer(async () => {
      child.kill('SIGKILL')
      await exited(child)
    })
    const deadline = Date.now() + 5000
    while (!fs.existsSync(socketPath) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(fs.lstatSync(socketPath).uid).toBe(0)
    const services = createClient({ socketPath, logger: false, retries: 0, acknowledgePlaintext: true, expectServer: { uid: NOBODY } })
    defer(() => services.destroy())
    const plain = createClient({ socketPath, logger: false, retries: 0, acknowledgePlaintext: true })
    defer(() => plain.destroy())
    // The first call's connection is checked against root's listen(2), then starts the service.
    const early = services.get<{ uid: number }>('/')
    await waitForLine(child, 'adopted')
    expect(await early).toEqual({ uid: NOBODY })
    // New connections now see the services uid as the listener.
    const later = createClient({ socketPath, logger: false, retries: 0, acknowledgePlaintext: true, expectServer: { uid: NOBODY } })
    defer(() => later.destroy())
    expect(await later.get('/')).toEqual({ uid: NOBODY })
    const refused = await plain.get('/').catch((e: { code?: string; message: string }) => e)
    expect((refused as { code?: string }).code).toBe('IPC_PEER_REJECTED')
    expect((refused as Error).message).toContain(`expectServer: { uid: ${NOBODY} }`)
  })
})

describe('a file trusted through a path must be writable by its owner only (and a key readable by no other user)', () => {
  it('a CA bundle or addon override of ours that others (or the group) may write, and a world-readable key, are refused', async () => {
    const pki = await createTestPki()
    defer(() => pki.cleanup())
    const t = dir()
    fs.chmodSync(t, 0o755)
    for (const mode of [0o666, 0o664]) {
      const ca = path.join(t, `ca-${mode.toString(8)}.crt`)
      fs.copyFileSync(pki.ca.certPath, ca)
      fs.chmodSync(ca, mode)
      let err: { code?: string; message: string } | undefined
      try {
        createClient({ socketPath: path.join(t, 's.sock'), logger: false, tls: { ca } })
      } catch (e) {
        err = e as typeof err
      }
      expect(err?.code, err?.message).toBe('IPC_UNSAFE_PATH')
      expect(err?.message).toMatch(/writable by (others|its group)/)
    }
    const key = path.join(t, 'server.key')
    fs.copyFileSync(pki.server.keyPath, key)
    fs.chmodSync(key, 0o644)
    const started = await serve(() => {}, { socketPath: path.join(t, 's.sock'), logger: false, handleSignals: false, tls: { cert: pki.server.certPath, key, ca: pki.ca.certPath } }).then(
      (ipc) => ipc.close().then(() => ({ code: 'started', message: '' })),
      (e: { code?: string; message: string }) => e,
    )
    expect(started.code, started.message).toBe('IPC_UNSAFE_PATH')
    expect(started.message).toContain('readable by every user')
    // 0640 (shared with one service group) is the usual way, and is accepted.
    fs.chmodSync(key, 0o640)
    const ok = await serve(() => {}, { socketPath: path.join(t, 's.sock'), logger: false, handleSignals: false, tls: { cert: pki.server.certPath, key, ca: pki.ca.certPath } })
    await ok.close()
  })
})

describe('a weakening is said even with logger: false and process warnings turned off wholesale', () => {
  it('NODE_NO_WARNINGS=1: the line goes to stderr directly', async () => {
    const socketPath = path.join(dir(), 's.sock')
    const script = `
      import { serve } from '@naaccord/ipc-server'
      const ipc = await serve((_q, r) => r.end(), { socketPath: ${JSON.stringify(socketPath)}, logger: false, handleSignals: false, socketMode: 0o666, acknowledgePlaintextSocket: true })
      await ipc.close()
    `
    const out = await runToEnd(
      spawn(process.execPath, ['--import', 'tsx', '--conditions=@naaccord/source', '--input-type=module', '-e', script], {
        cwd: path.resolve(import.meta.dirname, '..'),
        env: { ...process.env, NODE_NO_WARNINGS: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    )
    expect(out.stderr).toContain('IPC_SECURITY_WEAKENED')
    expect(out.stderr).toContain('socketMode')
  })
})
