// Reverse proxies that terminate mutual TLS on TCP and forward to the services socket, passing
// the verified client subject in a header that the services server believes only from the
// proxy's uid (trustedProxy). Real haproxy and nginx, started per test.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { createTestPki, spkiPin, type TestPki } from '@naaccord/ipc-certs'
import { createClient, type ClientOptions } from '@naaccord/ipc-client'
import { serve, type Peer } from '@naaccord/ipc-server'
import { deferCleanup, exited, freePort, isRoot, NOBODY, rawExchange, ROOT, tempDir } from './helpers.js'

const execFileAsync = promisify(execFile)
const defer = deferCleanup()
const HAPROXY = '/usr/sbin/haproxy'
const NGINX = '/usr/sbin/nginx'
const HEADER = 'x-client-cert-subject'

interface Echo {
  url: string
  peer: Peer
  header: string | null
}

interface Setup {
  dir: string
  socketPath: string
  pki: TestPki
}

/** A folder nobody may traverse (0711), a PKI, and a services server that trusts `proxyUid`'s header. */
async function setup(proxyUid: number): Promise<Setup> {
  const t = tempDir()
  defer(t.cleanup)
  chmodSync(t.dir, 0o711)
  const pki = await createTestPki({ dir: path.join(t.dir, 'pki') })
  const socketPath = path.join(t.dir, 's.sock')
  const ipc = await serve(
    (req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ url: req.url, peer: req.peer, header: req.headers[HEADER] ?? null }))
    },
    {
      socketPath,
      socketMode: 0o666,
      allow: { uids: [0, NOBODY] },
      trustedProxy: { uids: [proxyUid] },
      logger: false,
      handleSignals: false,
      acknowledgePlaintextSocket: true,
    },
  )
  defer(() => ipc.close())
  return { dir: t.dir, socketPath, pki }
}

/** Wait (bounded) until the proxy accepts TCP on `port`; fail at once if it exited. */
async function waitForPort(child: ChildProcess, port: number, describeExit: () => Promise<string>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`proxy exited (${child.exitCode ?? child.signalCode}): ${await describeExit()}`)
    const probe = net.connect(port, '127.0.0.1')
    const up = await once(probe, 'connect').then(
      () => true,
      () => false,
    )
    probe.destroy()
    if (up) return
    if (Date.now() > end) throw new Error(`proxy not listening on ${port} within ${timeoutMs} ms: ${await describeExit()}`)
    await sleep(25)
  }
}

function stopOnCleanup(child: ChildProcess): void {
  defer(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const done = await Promise.race([exited(child).then(() => true), sleep(5_000).then(() => false)])
      if (!done) {
        child.kill('SIGKILL')
        await exited(child)
      }
    }
  })
}

function client(s: Setup, port: number, extra: ClientOptions['tls'] = {}) {
  const c = createClient({
    url: `https://localhost:${port}`,
    logger: false,
    retries: 0,
    tls: { ca: s.pki.ca.certPath, cert: s.pki.client.certPath, key: s.pki.client.keyPath, pin: spkiPin(s.pki.server.certPem), ...extra },
  })
  defer(() => c.destroy())
  return c
}

const errorOf = (p: Promise<unknown>): Promise<unknown> => p.then(
  () => {
    throw new Error('expected a rejection')
  },
  (e: unknown) => e,
)

/** The header sent straight to the socket by a process that is not the proxy, with curl as uid `uid`. */
async function directWithHeader(s: Setup, uid: number): Promise<Echo> {
  const { stdout } = await execFileAsync('curl', ['-sS', '--max-time', '5', '--unix-socket', s.socketPath, '-H', `${HEADER}: CN=admin`, 'http://localhost/direct'], {
    uid,
    gid: uid,
    cwd: '/',
  })
  return JSON.parse(stdout) as Echo
}

/** The checks common to both proxies. */
async function expectTrustedHeaderOnlyFromProxy(s: Setup, port: number, proxyUid: number, otherUid: number): Promise<void> {
  const via = await client(s, port).get<Echo>('/via')
  expect(via.peer).toMatchObject({ transport: 'unix', uid: proxyUid, forwardedIdentity: 'CN=web-server' })
  expect(via.header).toBeNull() // the app reads req.peer.forwardedIdentity, never the raw header

  // A client claiming another identity through the proxy: the proxy replaces the header.
  const claimed = createClient({
    url: `https://localhost:${port}`,
    logger: false,
    retries: 0,
    headers: { [HEADER]: 'CN=admin' },
    tls: { ca: s.pki.ca.certPath, cert: s.pki.client.certPath, key: s.pki.client.keyPath },
  })
  defer(() => claimed.destroy())
  expect((await claimed.get<Echo>('/claim')).peer.forwardedIdentity).toBe('CN=web-server')

  // Straight to the socket from another allowed uid: the header is removed and not believed.
  const direct = await directWithHeader(s, otherUid)
  expect(direct.peer.uid).toBe(otherUid)
  expect(direct.peer.forwardedIdentity).toBeUndefined()
  expect(direct.header).toBeNull()
}

describe('behind HAProxy', () => {
  it.skipIf(!existsSync(HAPROXY) || !isRoot)(
    `haproxy (as uid ${NOBODY}) terminates mutual TLS and forwards to the socket; its identity header is believed from its uid only (needs root and ${HAPROXY}: apt-get install haproxy)`,
    async () => {
      const s = await setup(NOBODY)
      const port = await freePort()
      // The recipe in deploy/haproxy, with this test's paths, port and user.
      const pem = path.join(s.pki.dir, 'haproxy.pem')
      await writeFile(pem, s.pki.server.certPem + s.pki.server.keyPem, { mode: 0o600 })
      const recipe = await readFile(path.join(ROOT, 'deploy', 'haproxy', 'haproxy.cfg'), 'utf8')
      const conf = recipe
        .replace('user haproxy', `uid ${NOBODY}`)
        .replace('group haproxy', `gid ${NOBODY}`)
        .replace('127.0.0.1:8443', `127.0.0.1:${port}`)
        .replace('/etc/naaccord/certs/haproxy.pem', pem)
        .replace('/etc/naaccord/certs/ca.crt', s.pki.ca.certPath)
        .replace('/run/naaccord/service.sock', s.socketPath)
      expect(conf).not.toContain('/etc/naaccord')
      const cfg = path.join(s.dir, 'haproxy.cfg')
      await writeFile(cfg, conf)
      let stderr = ''
      const haproxy = spawn(HAPROXY, ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] })
      haproxy.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      stopOnCleanup(haproxy)
      await waitForPort(haproxy, port, async () => stderr)

      await expectTrustedHeaderOnlyFromProxy(s, port, NOBODY, 0)
      // Without a client certificate, haproxy refuses the handshake (verify required).
      const noCert = client(s, port, { cert: undefined, key: undefined })
      expect(await errorOf(noCert.get('/'))).toMatchObject({ code: expect.stringMatching(/^IPC_(TLS_CLIENT_CERT_REQUIRED|CONNECTION_LOST)$/) })
      // And one from another CA too.
      const otherCa = client(s, port, { cert: s.pki.otherClient.certPath, key: s.pki.otherClient.keyPath })
      expect(await errorOf(otherCa.get('/'))).toMatchObject({ code: expect.stringMatching(/^IPC_(TLS_CLIENT_CERT_REQUIRED|CONNECTION_LOST)$/) })
    },
    20_000,
  )
})

describe('behind nginx', () => {
  it.skipIf(!existsSync(NGINX) || !isRoot)(
    `nginx terminates mutual TLS and forwards to the socket; its identity header is believed from its uid only (needs root and ${NGINX}: apt-get install nginx-light)`,
    async () => {
      // nginx runs as root here (master_process off keeps it in this process): the direct peer is nobody.
      const s = await setup(0)
      const port = await freePort()
      const prefix = path.join(s.dir, 'nginx')
      await mkdir(prefix)
      const recipe = await readFile(path.join(ROOT, 'deploy', 'nginx', 'services-mtls.conf'), 'utf8')
      const site = recipe
        .replace('127.0.0.1:8443', `127.0.0.1:${port}`)
        .replace('/etc/naaccord/certs/localhost.crt', s.pki.server.certPath)
        .replace('/etc/naaccord/certs/localhost.key', s.pki.server.keyPath)
        .replace('/etc/naaccord/certs/ca.crt', s.pki.ca.certPath)
        .replace('/run/naaccord/service.sock', s.socketPath)
      expect(site).not.toContain('/etc/naaccord')
      const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `${k}_temp_path ${prefix}/${k};`).join('\n  ')
      const conf = `daemon off;\nmaster_process off;\npid ${prefix}/nginx.pid;\nerror_log ${prefix}/error.log;\nevents { worker_connections 64; }\nhttp {\n  access_log off;\n  ${temp}\n${site}\n}\n`
      await writeFile(path.join(prefix, 'nginx.conf'), conf)
      const nginx = spawn(NGINX, ['-p', prefix, '-e', path.join(prefix, 'error.log'), '-c', path.join(prefix, 'nginx.conf')], { stdio: 'ignore' })
      stopOnCleanup(nginx)
      await waitForPort(nginx, port, () => readFile(path.join(prefix, 'error.log'), 'utf8').catch(() => ''))

      await expectTrustedHeaderOnlyFromProxy(s, port, 0, NOBODY)
    },
    20_000,
  )
})

describe('the identity header in a chunked trailer (no proxy needed)', () => {
  /** POST a chunked body whose trailer section carries the identity header; resolves the app's view of it. */
  function postWithTrailer(socketPath: string): Promise<{ trailers: Record<string, string>; rawTrailers: string[]; distinct: Record<string, string[]>; fwd: string | null }> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(socketPath)
      let data = ''
      sock.on('data', (c: Buffer) => (data += c.toString()))
      sock.on('error', reject)
      sock.on('close', () => {
        try {
          resolve(JSON.parse(data.split('\r\n\r\n')[1] ?? ''))
        } catch {
          reject(new Error(`not a JSON answer: ${data}`))
        }
      })
      sock.write(
        'POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nTrailer: X-Client-Cert-Subject, X-Other\r\n\r\n' +
          `5\r\nhello\r\n0\r\n${HEADER.toUpperCase()}: CN=admin\r\nX-Other: kept\r\n\r\n`,
      )
    })
  }

  it.each([
    ['the trusted proxy uid', true, false],
    ['the trusted proxy uid, the app reading req.trailers before the body', true, true],
    ['another uid', false, false],
    ['another uid, the app reading req.trailers before the body', false, true],
  ])('from %s: never in req.trailers, rawTrailers or trailersDistinct, never believed', async (_, trusted, early) => {
    const t = tempDir()
    defer(t.cleanup)
    const socketPath = path.join(t.dir, 's.sock')
    const ipc = await serve(
      (req, res) => {
        if (early) void [req.trailers, req.trailersDistinct]
        req.resume()
        req.on('end', () => {
          res.setHeader('content-type', 'application/json')
          res.end(JSON.stringify({ trailers: req.trailers, rawTrailers: req.rawTrailers, distinct: req.trailersDistinct, fwd: req.peer?.forwardedIdentity ?? null }))
        })
      },
      {
        socketPath,
        trustedProxy: { uids: [trusted ? process.getuid!() : NOBODY] },
        logger: false,
        handleSignals: false,
        acknowledgePlaintextSocket: true,
      },
    )
    defer(() => ipc.close())
    const seen = await postWithTrailer(socketPath)
    expect(seen.rawTrailers).toEqual(['X-Other', 'kept'])
    expect(seen.trailers).toEqual({ 'x-other': 'kept' })
    expect(seen.distinct[HEADER]).toBeUndefined()
    expect(seen.fwd).toBeNull()
  })
})

describe('the identity header in the request head (no proxy needed)', () => {
  it.each([
    ['the trusted proxy uid', true],
    ['another uid', false],
  ])('from %s: req.headersDistinct stays readable (a handler reading it never throws) and never holds it', async (_, trusted) => {
    const t = tempDir()
    defer(t.cleanup)
    const socketPath = path.join(t.dir, 's.sock')
    const ipc = await serve(
      (req, res) => {
        // A plain handler: a throw here would end the process.
        const distinct = req.headersDistinct
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ distinct, fwd: req.peer?.forwardedIdentity ?? null }))
      },
      { socketPath, trustedProxy: { uids: [trusted ? process.getuid!() : NOBODY] }, logger: false, handleSignals: false, acknowledgePlaintextSocket: true },
    )
    defer(() => ipc.close())
    const answer = await rawExchange({ path: socketPath }, `GET / HTTP/1.1\r\nHost: x\r\nX-Other: kept\r\n${HEADER}: CN=admin\r\nConnection: close\r\n\r\n`)
    const seen = JSON.parse(answer.split('\r\n\r\n')[1] ?? '') as { distinct: Record<string, string[]>; fwd: string | null }
    expect(seen.distinct[HEADER]).toBeUndefined()
    expect(seen.distinct['x-other']).toEqual(['kept'])
    expect(seen.fwd).toBe(trusted ? 'CN=admin' : null)
  })
})

describe('the identity header past the thousandth header (no proxy needed)', () => {
  it('is removed from rawHeaders too, though Node leaves it out of req.headers', async () => {
    const t = tempDir()
    defer(t.cleanup)
    const socketPath = path.join(t.dir, 's.sock')
    const ipc = await serve(
      (req, res) => {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ raw: req.rawHeaders.filter((h) => h.toLowerCase() === HEADER), fwd: req.peer?.forwardedIdentity ?? null }))
      },
      { socketPath, trustedProxy: { uids: [NOBODY] }, logger: false, handleSignals: false, acknowledgePlaintextSocket: true },
    )
    defer(() => ipc.close())
    const junk = Array.from({ length: 1005 }, (_, i) => `X-J${i}: 1\r\n`).join('')
    const answer = await rawExchange({ path: socketPath }, `GET / HTTP/1.1\r\nHost: x\r\n${junk}${HEADER}: CN=admin\r\nConnection: close\r\n\r\n`)
    expect(answer).toMatch(/^HTTP\/1.1 200/)
    expect(JSON.parse(answer.split('\r\n\r\n')[1] ?? '')).toEqual({ raw: [], fwd: null })
  })
})
