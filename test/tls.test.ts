import { execFile, spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { chmodSync, existsSync } from 'node:fs'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import tls from 'node:tls'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { createTestPki, issueToDir, spkiPin, writeFilesAtomic, type TestPki, type TestPkiEntry } from '@naaccord/ipc-certs'
import { createClient, resolveClientOptions, type ClientOptions, type IpcClient } from '@naaccord/ipc-client'
import { serve, type IpcServer, type ServerOptions, type ServerTlsOptions } from '@naaccord/ipc-server'
import { bundleFixture, spawnBundle } from './bundle.js'
import { deferCleanup, freePort, isRoot, memoryLogger, NOBODY, runToEnd, tempDir } from './helpers.js'
import { waitUntil } from './wait.js'

const execFileAsync = promisify(execFile)

const defer = deferCleanup()

interface Setup {
  dir: string
  socketPath: string
  pki: TestPki
}

/** A temp folder with a socket path and a test PKI inside it. */
async function setup(pkiOptions: Parameters<typeof createTestPki>[0] = {}): Promise<Setup> {
  const t = tempDir()
  defer(t.cleanup)
  const pki = await createTestPki({ ...pkiOptions, dir: path.join(t.dir, 'pki') })
  return { dir: t.dir, socketPath: path.join(t.dir, 's.sock'), pki }
}

/** Answers with who the server thinks is connected. */
const whoami: http.RequestListener = (req, res) => {
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify({ url: req.url, peer: req.peer }))
}

type StartOptions = Omit<ServerOptions, 'tls'> & { tls?: Partial<ServerTlsOptions> }

async function start(s: Setup, extra: StartOptions = {}, handler: http.RequestListener = whoami): Promise<IpcServer> {
  const ipc = await serve(handler, {
    socketPath: s.socketPath,
    logger: false,
    handleSignals: false,
    ...extra,
    tls: { cert: s.pki.server.certPath, key: s.pki.server.keyPath, ca: s.pki.ca.certPath, ...extra.tls },
  })
  defer(() => ipc.close())
  return ipc
}

function client(s: Setup, extra: ClientOptions = {}): IpcClient {
  const c = createClient({
    socketPath: extra.url === undefined ? s.socketPath : undefined,
    logger: false,
    retries: 0,
    ...extra,
    tls: { ca: s.pki.ca.certPath, cert: s.pki.client.certPath, key: s.pki.client.keyPath, ...extra.tls },
  } as ClientOptions)
  defer(() => c.destroy())
  return c
}

const errorOf = (p: Promise<unknown>): Promise<unknown> => p.then(
  () => {
    throw new Error('expected a rejection')
  },
  (e: unknown) => e,
)

const tcpPort = (ipc: IpcServer): number => Number(ipc.listeners.find((l) => l.transport === 'tcp')!.address.split(':').pop())

interface Whoami {
  url: string
  peer: { transport: string; uid?: number; certificate?: { commonName?: string; uris: string[]; fingerprint256: string } }
}

describe('mutual TLS happy path', () => {
  it('serves the same app over the socket and over TCP, with the client certificate on req.peer', async () => {
    const s = await setup()
    const ipc = await start(s, { listen: [{ socketPath: s.socketPath }, { host: '127.0.0.1', port: 0 }] })
    expect(ipc.listeners.map((l) => [l.transport, l.tls])).toEqual([
      ['unix', true],
      ['tcp', true],
    ])
    const overSocket = await client(s).get<Whoami>('/who')
    expect(overSocket.peer.transport).toBe('unix')
    expect(overSocket.peer.certificate?.commonName).toBe('web-server')
    // The kernel peer check still runs under TLS: the uid comes from SO_PEERCRED.
    expect(overSocket.peer.uid).toBe(process.getuid!())

    const port = tcpPort(ipc)
    const overTcp = await client(s, { url: `https://localhost:${port}` }).get<Whoami>('/who')
    expect(overTcp.peer.transport).toBe('tcp')
    expect(overTcp.peer.certificate?.commonName).toBe('web-server')
    expect(overTcp.peer.certificate?.uris).toEqual(['urn:naaccord:client:web-server'])
    expect(overTcp.peer.uid).toBeUndefined()
  })
})

describe('peer check under TLS', () => {
  it.skipIf(!isRoot)('a uid outside the allow policy is cut off before the handshake (needs root to run a client as uid 65534)', async () => {
    const s = await setup()
    chmodSync(s.dir, 0o711) // nobody may reach the socket, whose mode lets it connect
    const { logger, lines } = memoryLogger()
    await start(s, { logger, socketMode: 0o666 })
    // The client fixture reads its TLS material from the environment (PEM text: nobody cannot read
    // the key files), and runs as a plain .mjs bundle in a 0711 temp folder: uid 65534 must not
    // need to read the checkout (which may sit in a 0700 folder such as /root).
    const fixture = await bundleFixture('client.ts')
    defer(fixture.cleanup)
    const out = await runToEnd(
      spawnBundle(fixture, [s.socketPath], {
        cwd: '/',
        uid: NOBODY,
        gid: NOBODY,
        env: { NAACCORD_TLS_CA: s.pki.ca.certPem, NAACCORD_TLS_CERT: s.pki.client.certPem, NAACCORD_TLS_KEY: s.pki.client.keyPem },
      }),
    )
    expect(JSON.parse(out.stdout)).toMatchObject({ ok: false, code: 'IPC_CONNECTION_LOST' })
    expect(lines.some((l) => String(l.msg).startsWith(`refused connection from uid ${NOBODY}`))).toBe(true)
    expect(lines.some((l) => l.msg === 'TLS handshake failed')).toBe(false) // no handshake was started
  })
})

describe('refused handshakes', () => {
  it('a client without a certificate -> IPC_TLS_CLIENT_CERT_REQUIRED', async () => {
    const s = await setup()
    await start(s)
    const c = client(s, { tls: { ca: s.pki.ca.certPath, cert: undefined, key: undefined } })
    const err = await errorOf(c.get('/who'))
    expect(err).toMatchObject({ code: 'IPC_TLS_CLIENT_CERT_REQUIRED' })
  })

  it('a client certificate from another CA is refused, and the server logs the failed handshake', async () => {
    const s = await setup()
    const { logger, lines } = memoryLogger()
    await start(s, { logger })
    const c = client(s, { tls: { cert: s.pki.otherClient.certPath, key: s.pki.otherClient.keyPath } })
    const err = await errorOf(c.get('/who'))
    // Node's server closes without a TLS alert here: only an alert proves a refusal, so this is a
    // lost connection (retried when safe) whose message points at the client certificate.
    expect(err).toMatchObject({ code: 'IPC_CONNECTION_LOST' })
    expect((err as Error).message).toContain('client certificate')
    const failed = lines.find((l) => l.msg === 'TLS handshake failed')
    expect(failed?.clientCertificate).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE') // why, not just "socket hang up"
  })

  it('a server certificate from another CA -> IPC_TLS_UNTRUSTED naming the subject', async () => {
    const s = await setup()
    // The server's own certificate must chain to its CA bundle, so it trusts both CAs here.
    await start(s, { tls: { cert: s.pki.otherServer.certPath, key: s.pki.otherServer.keyPath, ca: s.pki.ca.certPem + s.pki.otherCa.certPem } })
    const err = await errorOf(client(s).get('/who'))
    expect(err).toMatchObject({ code: 'IPC_TLS_UNTRUSTED', subject: 'CN=localhost' })
    expect((err as Error).message).toContain('CN=localhost')
  })

  it('serve() refuses an expired certificate at start; a client meeting one -> IPC_TLS_EXPIRED', async () => {
    const s = await setup()
    await expect(start(s, { tls: { cert: s.pki.expiredServer.certPath, key: s.pki.expiredServer.keyPath, ca: s.pki.ca.certPath } })).rejects.toMatchObject({
      code: 'IPC_TLS_CONFIG',
    })
    // Another server stack can still present one: a raw https server.
    const server = https.createServer({ cert: s.pki.expiredServer.certPem, key: s.pki.expiredServer.keyPem }, (_req, res) => res.end('no'))
    server.listen(s.socketPath)
    await once(server, 'listening')
    defer(() => new Promise((r) => server.close(r)))
    const err = await errorOf(client(s).get('/who'))
    expect(err).toMatchObject({ code: 'IPC_TLS_EXPIRED', subject: 'CN=localhost' })
  })

  it('a servername the certificate does not carry -> IPC_TLS_HOSTNAME', async () => {
    const s = await setup()
    await start(s)
    const err = await errorOf(client(s, { tls: { servername: 'services.internal' } }).get('/who'))
    expect(err).toMatchObject({ code: 'IPC_TLS_HOSTNAME' })
  })
})

/** A server whose every answer closes the connection, so each request is a new TLS connection; records resumption. */
async function startClosing(s: Setup, extra: StartOptions = {}): Promise<{ ipc: IpcServer; reused: boolean[] }> {
  const reused: boolean[] = []
  const ipc = await start(s, extra, (req, res) => {
    res.setHeader('connection', 'close')
    whoami(req, res)
  })
  ipc.server.on('connection', (socket: tls.TLSSocket) => reused.push(socket.isSessionReused()))
  return { ipc, reused }
}

describe('pinning', () => {
  it('a matching pin is accepted on a full handshake and on a resumed session', async () => {
    const s = await setup()
    const { reused } = await startClosing(s)
    const c = client(s, { tls: { pin: spkiPin(s.pki.server.certPem) } })
    // That a bad resumed session is refused is proven in client-tls.test.ts.
    const first = await c.get<Whoami>('/1')
    const second = await c.get<Whoami>('/2')
    expect(reused).toEqual([false, true])
    expect(second.peer.certificate?.commonName).toBe('web-server') // the resumed session still carries the client identity
    expect(first.peer.certificate?.fingerprint256).toBe(second.peer.certificate?.fingerprint256)
  })

  it('a wrong pin fails every connection with IPC_TLS_PIN_MISMATCH', async () => {
    const s = await setup()
    const { ipc } = await startClosing(s)
    let connections = 0
    ipc.netServers[0]!.on('connection', () => connections++) // raw connections: the client gives up before HTTP
    const c = client(s, { tls: { pin: spkiPin(s.pki.otherServer.certPem) } })
    expect(await errorOf(c.get('/1'))).toMatchObject({ code: 'IPC_TLS_PIN_MISMATCH', subject: 'CN=localhost' })
    expect(await errorOf(c.get('/2'))).toMatchObject({ code: 'IPC_TLS_PIN_MISMATCH' })
    expect(connections).toBe(2)
  })

  it('a client pinned to the old key refuses the server once it has a new key', async () => {
    const s = await setup()
    const ipc = await start(s)
    const oldPin = spkiPin(s.pki.server.certPem)
    const next = await issueToDir({ dir: s.pki.dir, kind: 'server', names: ['localhost'], fileName: 'server', force: true, days: 1 })
    await until(() => ipc.certificate?.fingerprint256 === new X509Certificate(next.certPem).fingerprint256)
    expect(await errorOf(client(s, { tls: { pin: oldPin } }).get('/'))).toMatchObject({ code: 'IPC_TLS_PIN_MISMATCH' })
    // Both pins during a planned rotation: accepted.
    expect(await client(s, { tls: { pin: [oldPin, spkiPin(next.certPem)] } }).get<Whoami>('/')).toMatchObject({ url: '/' })
  })
})

describe('allowClients', () => {
  it('refuses a client whose certificate is not listed', async () => {
    const s = await setup()
    const { logger, lines } = memoryLogger()
    await start(s, { logger, tls: { allowClients: ['reports-worker'] } })
    // The server closes without a TLS alert (Node has no API to send one): a lost connection.
    expect(await errorOf(client(s).get('/'))).toMatchObject({ code: 'IPC_CONNECTION_LOST' })
    expect(lines.some((l) => l.msg === 'refused TLS client')).toBe(true)
  })

  it('a refused client that writes a request at once never reaches the app, over the socket and TCP', async () => {
    const s = await setup()
    let hits = 0
    const ipc = await start(s, { listen: [{ socketPath: s.socketPath }, { host: '127.0.0.1', port: 0 }], tls: { allowClients: ['reports-worker'] } }, (_req, res) => {
      hits++
      res.end('ran')
    })
    for (const where of [{ path: s.socketPath }, { host: '127.0.0.1', port: tcpPort(ipc) }]) {
      for (let i = 0; i < 10; i++) {
        const sock = tls.connect({ ...where, servername: 'localhost', ca: s.pki.ca.certPem, cert: s.pki.client.certPem, key: s.pki.client.keyPem })
        sock.on('error', () => {})
        sock.once('secureConnect', () => sock.write('POST /delete-everything HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'))
        await once(sock, 'close')
      }
    }
    expect(hits).toBe(0)
  })

  it.each([
    ['its CN', () => 'web-server'],
    ['its URI SAN', () => 'urn:naaccord:client:web-server'],
    ['its SHA-256 fingerprint', (s: Setup) => new X509Certificate(s.pki.client.certPem).fingerprint256],
  ])('admits a client listed by %s', async (_what, entry) => {
    const s = await setup()
    await start(s, { tls: { allowClients: ['reports-worker', entry(s)] } })
    expect((await client(s).get<Whoami>('/')).peer.certificate?.commonName).toBe('web-server')
  })
})

/** Poll until `check()` is true (file watchers are asynchronous and debounced). */
const until = (check: () => boolean | Promise<boolean>, timeoutMs = 5_000) => waitUntil('condition', check, { timeoutMs })

/** The certificate a fresh TLS connection to the socket is shown. */
async function presentedCertificate(s: Setup): Promise<string> {
  const socket = tls.connect({ path: s.socketPath, servername: 'localhost', ca: s.pki.ca.certPem, cert: s.pki.client.certPem, key: s.pki.client.keyPem })
  await once(socket, 'secureConnect')
  const fingerprint = socket.getPeerCertificate().fingerprint256
  socket.end()
  return fingerprint
}

/** Send requests back to back from `c` until stopped; count what succeeded and what failed. */
function loadLoop(c: IpcClient, path = '/'): { stop: () => Promise<{ ok: number; failed: unknown[] }> } {
  let running = true
  defer(() => (running = false)) // a test that fails before stop() must not leave it spinning on a destroyed client
  const failed: unknown[] = []
  let ok = 0
  const worker = async () => {
    while (running) {
      try {
        await c.get(path)
        ok++
      } catch (err) {
        failed.push(err)
      }
    }
  }
  const workers = Array.from({ length: 4 }, worker)
  return {
    async stop() {
      running = false
      await Promise.all(workers)
      return { ok, failed }
    },
  }
}

describe('server certificate rotation', () => {
  it('swaps the certificate under load: zero failed requests, new connections see the new certificate', async () => {
    const s = await setup()
    const { logger, lines } = memoryLogger()
    // Every 10th answer closes its connection, so new connections are made all along.
    let n = 0
    const ipc = await start(s, { logger, requestLog: false }, (req, res) => {
      if (++n % 10 === 0) res.setHeader('connection', 'close')
      whoami(req, res)
    })
    const before = ipc.certificate!.fingerprint256
    expect(await presentedCertificate(s)).toBe(before)
    // What the server presented on each connection of the loaded client (retries: 0, so no failure hides).
    const presented: string[] = []
    ipc.server.on('connection', (socket: tls.TLSSocket) => presented.push(socket.getX509Certificate()!.fingerprint256))
    const load = loadLoop(client(s, { tls: { watch: false } }))
    await sleep(200)
    const next = await issueToDir({ dir: s.pki.dir, kind: 'server', names: ['localhost'], fileName: 'server', force: true, days: 1 })
    const after = new X509Certificate(next.certPem).fingerprint256
    await until(() => ipc.certificate?.fingerprint256 === after)
    await sleep(200)
    const { ok, failed } = await load.stop()
    expect(failed).toEqual([])
    expect(ok).toBeGreaterThan(50)
    expect(presented[0]).toBe(before)
    expect(presented.at(-1)).toBe(after) // the client's connections after the swap got the new certificate
    expect(await presentedCertificate(s)).toBe(after)
    expect(await client(s, { tls: { pin: spkiPin(next.certPem) } }).get<Whoami>('/')).toMatchObject({ url: '/' })
    expect(lines.some((l) => l.msg === 'TLS certificate reloaded')).toBe(true)
    // The new context still requires client certificates.
    expect(await errorOf(client(s, { tls: { cert: undefined, key: undefined } }).get('/'))).toMatchObject({ code: 'IPC_TLS_CLIENT_CERT_REQUIRED' })
  })

  it.each([
    ['garbage in the certificate file', (s: Setup) => writeAtomic(s.pki.server.certPath, 'not a certificate\n')],
    ['a PEM block that is not a certificate', (s: Setup) => writeAtomic(s.pki.server.certPath, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')],
    ['a key that does not match the certificate', (s: Setup) => writeAtomic(s.pki.server.keyPath, s.pki.otherServer.keyPem)],
    ['a certificate from another CA', (s: Setup) => writePair(s.pki.server, s.pki.otherServer)],
    ['an expired certificate', (s: Setup) => writePair(s.pki.server, s.pki.expiredServer)],
  ])('keeps the old certificate serving after %s', async (_what, corrupt) => {
    const s = await setup()
    const { logger, lines } = memoryLogger()
    const ipc = await start(s, { logger, requestLog: false })
    const before = ipc.certificate!.fingerprint256
    const c = client(s, { tls: { watch: false } })
    await c.get('/')
    await corrupt(s)
    await until(() => lines.some((l) => l.msg === 'new TLS files rejected; the current certificate stays in use'))
    await sleep(400) // longer than the watcher's debounce: any later event has been handled too
    expect(lines.some((l) => l.msg === 'TLS certificate reloaded')).toBe(false)
    expect(ipc.certificate!.fingerprint256).toBe(before)
    expect(await presentedCertificate(s)).toBe(before)
    expect(await c.get<Whoami>('/')).toMatchObject({ url: '/' }) // the kept-alive connection
    expect(await client(s).get<Whoami>('/')).toMatchObject({ url: '/' }) // and a new one
  })
})

/** Replace one file the way rotation tools do: write beside it, then rename over it. */
async function writeAtomic(file: string, data: string): Promise<void> {
  const tmp = `${file}.tmp`
  await writeFile(tmp, data, { mode: 0o600 })
  await rename(tmp, file)
}

/** Replace a certificate and its key with another pair, key first (as `certs rotate` does). */
function writePair(target: TestPkiEntry, pair: TestPkiEntry): Promise<void> {
  return writeFilesAtomic([
    { file: target.keyPath, data: pair.keyPem, mode: 0o600 },
    { file: target.certPath, data: pair.certPem, mode: 0o644 },
  ])
}

describe('client certificate rotation', () => {
  it('swaps the dispatcher when its files change, without dropping in-flight requests', async () => {
    const s = await setup()
    // /slow is answered only once the test says so: it is in flight for the whole swap.
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    let slowArrived = false
    await start(s, { requestLog: false }, (req, res) => {
      if (req.url !== '/slow') return whoami(req, res)
      slowArrived = true
      void released.then(() => whoami(req, res))
    })
    const c = client(s)
    const oldFingerprint = new X509Certificate(s.pki.client.certPem).fingerprint256
    expect((await c.get<Whoami>('/')).peer.certificate?.fingerprint256).toBe(oldFingerprint)
    const slow = c.get<Whoami>('/slow')
    await until(() => slowArrived)
    const load = loadLoop(c)
    const next = await issueToDir({ dir: s.pki.dir, kind: 'client', names: ['web-server'], fileName: 'client', force: true, days: 1 })
    const newFingerprint = new X509Certificate(next.certPem).fingerprint256
    await until(async () => (await c.get<Whoami>('/')).peer.certificate?.fingerprint256 === newFingerprint)
    const { ok, failed } = await load.stop()
    expect(failed).toEqual([])
    expect(ok).toBeGreaterThan(10)
    // The request in flight during the swap finishes on its old connection, with the old certificate.
    release()
    expect((await slow).peer.certificate?.fingerprint256).toBe(oldFingerprint)
  })
})

describe('plaintext and verification escape hatches', () => {
  it('refuses a TCP listener without TLS: IPC_TLS_REQUIRED', async () => {
    const s = await setup()
    await expect(
      serve(whoami, { socketPath: s.socketPath, logger: false, handleSignals: false, listen: [{ host: '127.0.0.1', port: 0 }] }),
    ).rejects.toMatchObject({ code: 'IPC_TLS_REQUIRED' })
  })

  it('refuses a plaintext URL to a non-loopback host before connecting: IPC_TLS_REQUIRED', () => {
    // Thrown by createClient itself: nothing is ever sent to 10.1.2.3.
    expect(() => createClient({ url: 'http://10.1.2.3:8000', logger: false })).toThrow(expect.objectContaining({ code: 'IPC_TLS_REQUIRED' }))
  })

  it('refuses insecureSkipVerify with NODE_ENV=production: IPC_INVALID_OPTION', () => {
    expect(() => resolveClientOptions({ socketPath: '/run/x.sock', logger: false, tls: { insecureSkipVerify: true } }, { NODE_ENV: 'production' })).toThrow(
      expect.objectContaining({ code: 'IPC_INVALID_OPTION', option: 'tls.insecureSkipVerify' }),
    )
  })

  it('with insecureSkipVerify (not production), connects to an untrusted server and logs a warning', async () => {
    const s = await setup()
    await start(s, { tls: { cert: s.pki.otherServer.certPath, key: s.pki.otherServer.keyPath, ca: s.pki.ca.certPem + s.pki.otherCa.certPem } })
    const { logger, lines } = memoryLogger()
    const c = client(s, { logger, tls: { ca: undefined, insecureSkipVerify: true } })
    expect(lines.some((l) => l.level === 40 && String(l.msg).includes('insecureSkipVerify'))).toBe(true)
    expect((await c.get<Whoami>('/')).peer.certificate?.commonName).toBe('web-server')
  })
})

interface HealthBody {
  status: string
  connection: {
    transport: string
    tls: {
      version: string
      cipher: string
      serverCertificate: { subject: string; daysToExpiry: number }
      peerCertificate: { subject: string; daysToExpiry: number }
    }
  }
  warnings: string[]
}

describe('health over TLS', () => {
  it('reports version, cipher, both certificates and days to expiry', async () => {
    const s = await setup({ days: 90 })
    await start(s)
    const health = await client(s).get<HealthBody>('/healthz')
    expect(health.status).toBe('ok')
    expect(health.connection.transport).toBe('unix')
    expect(health.connection.tls.version).toBe('TLSv1.3')
    expect(health.connection.tls.cipher).toMatch(/^TLS_/)
    expect(health.connection.tls.serverCertificate).toMatchObject({ subject: 'CN=localhost', daysToExpiry: 89 })
    expect(health.connection.tls.peerCertificate).toMatchObject({ subject: 'CN=web-server', daysToExpiry: 89 })
    expect(health.warnings).toEqual([])
  })

  it("warns when a certificate has less than 30 days left", async () => {
    const s = await setup({ days: 1 })
    await start(s)
    const health = await client(s).get<HealthBody>('/healthz')
    expect(health.status).toBe('warning')
    expect(health.connection.tls.serverCertificate.daysToExpiry).toBe(0)
    expect(health.warnings).toHaveLength(2) // server and client certificates
  })
})

describe('TLS versions', () => {
  const connect12 = (s: Setup) =>
    new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ path: s.socketPath, servername: 'localhost', ca: s.pki.ca.certPem, cert: s.pki.client.certPem, key: s.pki.client.keyPem, maxVersion: 'TLSv1.2' })
      socket.once('secureConnect', () => {
        resolve(socket.getProtocol() ?? '')
        socket.end()
      })
      socket.once('error', reject)
    })

  it('refuses a TLS 1.2 client by default', async () => {
    const s = await setup()
    await start(s)
    expect(await errorOf(connect12(s))).toMatchObject({ code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' })
  })

  it('admits TLS 1.2 when asked with minVersion', async () => {
    const s = await setup()
    await start(s, { tls: { minVersion: 'TLSv1.2' } })
    expect(await connect12(s)).toBe('TLSv1.2')
  })
})

describe('independent tools', () => {
  it('curl --unix-socket with the client certificate gets /healthz; without it, it is refused', async () => {
    const s = await setup()
    await start(s)
    const base = ['-sS', '--max-time', '5', '--unix-socket', s.socketPath, '--cacert', s.pki.ca.certPath]
    const { stdout } = await execFileAsync('curl', [...base, '--cert', s.pki.client.certPath, '--key', s.pki.client.keyPath, 'https://localhost/healthz'])
    expect(JSON.parse(stdout)).toMatchObject({ connection: { tls: { version: 'TLSv1.3', peerCertificate: { subject: 'CN=web-server' } } } })
    // curl reports the server's alert, or a broken pipe when its request raced the close.
    const refused = await errorOf(execFileAsync('curl', [...base, 'https://localhost/healthz']))
    expect((refused as { code: number }).code).toBeGreaterThan(0)
  })
})

const NGINX = '/usr/sbin/nginx'
const hasNginx = existsSync(NGINX)

/** A free TCP port on 127.0.0.1 (closed again at once: nginx binds it next). */
describe('behind nginx', () => {
  it.skipIf(!hasNginx)(`nginx terminates mutual TLS on TCP and proxies to the socket (needs ${NGINX}: apt-get install nginx-light)`, async () => {
    const s = await setup()
    // Behind the proxy the socket carries plaintext: nginx is the TLS end, the peer check still runs.
    const ipc = await serve(
      (req, res) => {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ url: req.url, peer: req.peer, clientSubject: req.headers['x-client-subject'] }))
      },
      { socketPath: s.socketPath, logger: false, handleSignals: false, acknowledgePlaintextSocket: true },
    )
    defer(() => ipc.close())
    const port = await freePort()
    const prefix = path.join(s.dir, 'nginx')
    await mkdir(prefix)
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `${k}_temp_path ${prefix}/${k};`).join('\n  ')
    const conf = `
daemon off;
master_process off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log;
events { worker_connections 64; }
http {
  access_log off;
  ${temp}
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate ${s.pki.server.certPath};
    ssl_certificate_key ${s.pki.server.keyPath};
    ssl_client_certificate ${s.pki.ca.certPath};
    ssl_verify_client on;
    location / {
      proxy_pass http://unix:${s.socketPath}:;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Client-Subject $ssl_client_s_dn;
    }
  }
}
`
    await writeFile(path.join(prefix, 'nginx.conf'), conf)
    const nginx = spawn(NGINX, ['-p', prefix, '-e', path.join(prefix, 'error.log'), '-c', path.join(prefix, 'nginx.conf')], { stdio: 'ignore' })
    defer(async () => {
      if (nginx.exitCode === null && nginx.signalCode === null) {
        nginx.kill('SIGTERM')
        await once(nginx, 'exit')
      }
    })
    await until(async () => {
      if (nginx.exitCode !== null) throw new Error(`nginx exited (${nginx.exitCode}): ${await readFile(path.join(prefix, 'error.log'), 'utf8').catch(() => '')}`)
      const probe = net.connect(port, '127.0.0.1')
      return once(probe, 'connect').then(
        () => (probe.destroy(), true),
        () => false,
      )
    })

    const viaNginx = await client(s, { url: `https://localhost:${port}`, tls: { pin: spkiPin(s.pki.server.certPem) } }).get<{ url: string; peer: Whoami['peer']; clientSubject: string }>('/via')
    expect(viaNginx.url).toBe('/via')
    expect(viaNginx.clientSubject).toBe('CN=web-server')
    expect(viaNginx.peer.transport).toBe('unix') // nginx's connection to the socket, checked by uid
    expect(viaNginx.peer.uid).toBe(process.getuid!())
    // nginx answers a missing client certificate with HTTP 400, not a TLS alert.
    const noCert = client(s, { url: `https://localhost:${port}`, tls: { cert: undefined, key: undefined } })
    expect(await errorOf(noCert.get('/via'))).toMatchObject({ code: 'IPC_HTTP_STATUS', status: 400 })
  })
})
