import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import tls from 'node:tls'
import express from 'express'
import { describe, expect, it } from 'vitest'
import { createTestPki, type TestPki } from '@naaccord/ipc-certs'
import { createClient } from '@naaccord/ipc-client'
import { serve, type IpcServer, type ServerOptions } from '@naaccord/ipc-server'
import { FIXTURES, deferCleanup, exited, isRoot, rawExchange, runToEnd, socketTestKit, spawnTs, tempDir, waitForLine } from './helpers.js'
import { waitUntil } from './wait.js'

const defer = deferCleanup()
const kit = socketTestKit(defer, 'nipc-net-')

function dir(): string {
  const t = tempDir()
  defer(t.cleanup)
  return t.dir
}

async function start(handler: http.RequestListener, options: ServerOptions): Promise<IpcServer> {
  const ipc = await serve(handler, { logger: false, handleSignals: false, ...options })
  defer(() => ipc.close())
  return ipc
}

const ok: http.RequestListener = (_req, res) => res.end('ok')
const fdCount = () => fs.readdirSync('/proc/self/fd').length

/** Poll until `check()` holds (bounded). */
const until = (check: () => boolean, timeoutMs: number, what: string) => waitUntil(what, check, { timeoutMs, everyMs: 20 })

/** Start a flood of `count` connections from another process; resolves once they are open. */
async function flood(target: string, count: number, mode: 'stall' | 'slowloris' | 'reconnect' = 'stall'): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, [path.join(FIXTURES, 'flood.mjs'), target, String(count), mode], { stdio: ['ignore', 'pipe', 'pipe'] })
  defer(async () => {
    child.kill('SIGKILL')
    await exited(child)
  })
  const line = await waitForLine(child, 'connected')
  return { child, line }
}

const raw = rawExchange

async function pki(d: string): Promise<TestPki> {
  return createTestPki({ dir: path.join(d, 'pki') })
}

/**
 * One GET over a fresh mutual-TLS connection (an independent client: node:tls, not ours), to the
 * socket or a TCP port; resolves with everything read until the server closes. Without
 * `keepAlive` it asks for `Connection: close`. Rejects on a connection error before any answer,
 * or after `timeoutMs`.
 */
function tlsGet(where: { path: string } | { port: number }, p: TestPki, url = '/', { keepAlive = false, timeoutMs = 2000 } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ ...where, ...('port' in where ? { host: '127.0.0.1' } : {}), servername: 'localhost', ca: p.ca.certPem, cert: p.client.certPem, key: p.client.keyPem })
    let data = ''
    const timer = setTimeout(() => {
      sock.destroy()
      reject(new Error(`no answer within ${timeoutMs} ms`))
    }, timeoutMs)
    sock.on('secureConnect', () => sock.write(`GET ${url} HTTP/1.1\r\nHost: x\r\n${keepAlive ? '' : 'Connection: close\r\n'}\r\n`))
    sock.on('data', (c: Buffer) => (data += c.toString()))
    sock.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      if (data) resolve(data)
      else reject(err)
    })
    sock.on('close', () => {
      clearTimeout(timer)
      if (data) resolve(data)
      else reject(new Error('closed without an answer'))
    })
  })
}

/** Make requests one after another for `ms`; count the 200s and keep what went wrong otherwise. */
async function during(ms: number, request: () => Promise<string>): Promise<{ served: number; failed: string[] }> {
  const end = Date.now() + ms
  let served = 0
  const failed: string[] = []
  while (Date.now() < end) {
    try {
      const answer = await request()
      if (/^HTTP\/1.1 200 /.test(answer)) served++
      else failed.push(answer.split('\r\n')[0] ?? answer)
    } catch (err) {
      failed.push((err as NodeJS.ErrnoException).code ?? (err as Error).message)
    }
  }
  return { served, failed }
}

/** How many descriptors process `pid` holds (ours or a child's: same uid). */
const fdsOf = (pid: number): number => fs.readdirSync(`/proc/${pid}/fd`).length

const tcpPort = (ipc: IpcServer): number => Number(ipc.listeners.find((l) => l.transport === 'tcp')!.address.split(':').pop())

describe('stalled TLS handshakes (8.6)', () => {
  it('300 TCP connections that send nothing are closed at the handshake timeout: descriptors back to baseline', async () => {
    const d = dir()
    const p = await pki(d)
    const ipc = await start(ok, {
      socketPath: path.join(d, 's.sock'),
      listen: [{ host: '127.0.0.1', port: 0 }],
      limits: { headersTimeoutMs: 1000 },
      // Room for the whole flood: this is about the handshake timeout, not the budget.
      maxUnauthenticated: 400,
      tls: { cert: p.server.certPath, key: p.server.keyPath, ca: p.ca.certPath },
    })
    await sleep(100)
    const baseline = fdCount()
    await flood(`127.0.0.1:${tcpPort(ipc)}`, 300)
    await until(() => fdCount() >= baseline + 290, 5000, 'the server holds the flood')
    const t0 = Date.now()
    await until(() => fdCount() <= baseline + 5, 5000, `descriptors back to ${baseline}`)
    expect(Date.now() - t0).toBeLessThan(3000) // the handshake timeout (1 s) plus a check cycle
    // A real mutual-TLS client is served right after.
    const c = createClient({ url: `https://localhost:${tcpPort(ipc)}`, logger: false, retries: 0, tls: { ca: p.ca.certPath, cert: p.client.certPath, key: p.client.keyPath } })
    defer(() => c.destroy())
    expect(await c.get('/')).toBe('ok')
  })

  it('close() with stalled handshakes cuts them at once and gives socket and lock back', async () => {
    const d = dir()
    const p = await pki(d)
    const socketPath = path.join(d, 's.sock')
    const ipc = await serve(ok, {
      socketPath,
      logger: false,
      handleSignals: false,
      listen: [{ socketPath }, { host: '127.0.0.1', port: 0 }],
      limits: { headersTimeoutMs: 60_000, requestTimeoutMs: 120_000 },
      // Not what ends them: nothing that carries no request waits for the deadline.
      shutdownTimeoutMs: 30_000,
      tls: { cert: p.server.certPath, key: p.server.keyPath, ca: p.ca.certPath },
    })
    await sleep(100)
    const baseline = fdCount()
    await flood(`127.0.0.1:${tcpPort(ipc)}`, 100)
    await flood(socketPath, 100)
    await until(() => fdCount() >= baseline + 190, 5000, 'the server holds the flood')
    const t0 = Date.now()
    await ipc.close()
    expect(Date.now() - t0).toBeLessThan(1000)
    expect(fs.existsSync(socketPath)).toBe(false)
    expect(fs.existsSync(`${socketPath}.lock`)).toBe(false)
    expect(fdCount()).toBeLessThanOrEqual(baseline + 5)
  })

  it('slowloris on a plaintext socket is cut at headersTimeoutMs, the server keeps serving', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    const ipc = await start(ok, { socketPath, limits: { headersTimeoutMs: 1000 } })
    await sleep(100)
    const baseline = fdCount()
    await flood(socketPath, 100, 'slowloris')
    await until(() => fdCount() >= baseline + 90, 5000, 'the server holds the flood')
    // 408 at the headers timeout; a peer that does not read it is cut a second later.
    await until(() => ipc.connections === 0, 5000, 'every slowloris connection closed')
    await until(() => fdCount() <= baseline + 5, 2000, `descriptors back to ${baseline}`)
    expect(await raw({ path: socketPath }, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1.1 200 /)
  })
})

describe('header and request timeouts (8.7)', () => {
  it('headersTimeoutMs: 2000 answers 408 after about 2 s, not on a 30 s cycle', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    await start(ok, { socketPath, limits: { headersTimeoutMs: 2000 } })
    const t0 = Date.now()
    const answer = await Promise.race([raw({ path: socketPath }, 'GET / HTTP/1.1\r\nHost: x\r\n'), sleep(6000, 'no answer within 6 s')])
    const elapsed = Date.now() - t0
    expect(answer).toMatch(/^HTTP\/1.1 408 /)
    expect(elapsed).toBeGreaterThanOrEqual(1900)
    expect(elapsed).toBeLessThan(3200)
  })
})

describe('body limit (8.8)', () => {
  it('a 1 MiB chunked body under a 1024-byte limit: 413, and the app never gets more than the limit', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    let received = 0
    let appSawEnd = false
    await start(
      (req, res) => {
        req.on('data', (c: Buffer) => (received += c.length))
        req.on('end', () => {
          appSawEnd = true
          res.end(`got ${received}`)
        })
        req.on('error', () => {})
      },
      { socketPath, limits: { maxBodyBytes: 1024 } },
    )
    const upload = spawn(process.execPath, [path.join(FIXTURES, 'chunked-upload.mjs'), socketPath, String(1024 * 1024)], { stdio: ['ignore', 'pipe', 'pipe'] })
    const { stdout: answer } = await runToEnd(upload, 10_000)
    expect(answer).toMatch(/^HTTP\/1.1 413 /)
    expect(answer).toMatch(/connection: close/i)
    expect(received).toBeLessThanOrEqual(1024)
    expect(appSawEnd).toBe(false) // a cut body is never handed over as a whole one
  })

  it('holds for an Express app too (Express swaps the request prototype): express.json never sees the body', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    let parsed = false
    const app = express()
    app.use(express.json({ limit: '10mb' }))
    app.post('/', (_req, res) => {
      parsed = true
      res.json({ ok: true })
    })
    await start(app, { socketPath, limits: { maxBodyBytes: 1024 } })
    const body = JSON.stringify({ pad: 'a'.repeat(4000) })
    const chunked = `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`
    const answer = await raw({ path: socketPath }, `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`)
    expect(answer).toMatch(/^HTTP\/1.1 413 /)
    expect(parsed).toBe(false)
  })

  it('a chunked body within the limit reaches the app whole', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    await start(
      (req, res) => {
        let n = 0
        req.on('data', (c: Buffer) => (n += c.length))
        req.on('end', () => res.end(`got ${n}`))
      },
      { socketPath, limits: { maxBodyBytes: 1024 } },
    )
    const body = 'a'.repeat(1000)
    const answer = await raw({ path: socketPath }, `POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n${(1000).toString(16)}\r\n${body}\r\n0\r\n\r\n`)
    expect(answer).toMatch(/^HTTP\/1.1 200 /)
    expect(answer.endsWith('got 1000')).toBe(true)
  })
})

describe('health (8.9)', () => {
  const appSays = (req: http.IncomingMessage, res: http.ServerResponse) => res.end(`app ${req.url}`)

  it('with clientAuth "optional", a TCP client without a certificate gets the app, never the report; with one, the report', async () => {
    const d = dir()
    const p = await pki(d)
    const ipc = await start(appSays, {
      socketPath: path.join(d, 's.sock'),
      listen: [{ host: '127.0.0.1', port: 0 }],
      tls: { cert: p.server.certPath, key: p.server.keyPath, ca: p.ca.certPath, clientAuth: 'optional' },
    })
    const anonymous = createClient({ url: `https://localhost:${tcpPort(ipc)}`, logger: false, retries: 0, tls: { ca: p.ca.certPath } })
    defer(() => anonymous.destroy())
    expect(await anonymous.get('/healthz')).toBe('app /healthz')
    const known = createClient({ url: `https://localhost:${tcpPort(ipc)}`, logger: false, retries: 0, tls: { ca: p.ca.certPath, cert: p.client.certPath, key: p.client.keyPath } })
    defer(() => known.destroy())
    expect(await known.get('/healthz')).toMatchObject({ pid: process.pid, connection: { transport: 'tcp' } })
  })

  it('health: false leaves every path to the app; health.path moves the report', async () => {
    const d = dir()
    const off = await start(appSays, { socketPath: path.join(d, 'a.sock'), health: false })
    const moved = await start(appSays, { socketPath: path.join(d, 'b.sock'), health: { path: '/_ipc/health' } })
    const get = (ipc: IpcServer, p: string) => raw({ path: ipc.socketPath! }, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`).then((a) => a.split('\r\n\r\n')[1])
    expect(await get(off, '/healthz')).toBe('app /healthz')
    expect(await get(moved, '/healthz')).toBe('app /healthz')
    expect(await get(moved, '/_ipc/health')).toContain(`"pid":${process.pid},`)
  })
})

describe('the app is left as given (8.11)', () => {
  it("does not change the app's x-powered-by setting; no answer carries X-Powered-By", async () => {
    const d = dir()
    const app = express()
    app.get('/', (_req, res) => res.send('hi'))
    const ipc = await start(app, { socketPath: path.join(d, 's.sock') })
    expect(app.enabled('x-powered-by')).toBe(true)
    const answer = await raw({ path: ipc.socketPath! }, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    expect(answer).toMatch(/^HTTP\/1.1 200 /)
    expect(answer).not.toMatch(/x-powered-by/i)
  })
})

describe('maxConnections', () => {
  it('a flood beyond maxConnections is refused fast; an existing client keeps being served', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    const ipc = await start(ok, { socketPath, maxConnections: 20, requestLog: false })
    const c = createClient({ socketPath, logger: false, retries: 0, connections: 2 })
    defer(() => c.destroy())
    expect(await c.get('/')).toBe('ok')
    let running = true
    let served = 0
    const failed: unknown[] = []
    const load = (async () => {
      while (running) {
        try {
          await c.get('/')
          served++
        } catch (err) {
          failed.push(err)
        }
      }
    })()
    // The load loop stops whatever happens: a flood that fails to start must fail the test, not
    // leave the loop spinning on a destroyed client (it never yields, and the file hangs).
    defer(() => (running = false))
    const { line } = await flood(socketPath, 300)
    const refused = Number(/refused (\d+)/.exec(line)![1])
    expect(refused).toBeGreaterThanOrEqual(270) // 300 minus at most 20 slots (one held by the client)
    expect(ipc.connections).toBeLessThanOrEqual(20)
    const before = served
    await sleep(300)
    running = false
    await load
    expect(failed).toEqual([])
    expect(served).toBeGreaterThan(before)
  })
})

describe('a connection that never sends a byte', () => {
  it('is cut at limits.headersTimeoutMs, while a handler slower than that still answers', async () => {
    const socketPath = path.join(dir(), 's.sock')
    await start(
      (req, res) => {
        if (req.url === '/slow') setTimeout(() => res.end('slow done'), 1500)
        else res.end('ok')
      },
      { socketPath, limits: { headersTimeoutMs: 500, requestTimeoutMs: 5000 } },
    )
    const silent = net.connect(socketPath)
    const t0 = Date.now()
    const closedAfter = await new Promise<number>((resolve) => {
      silent.on('error', () => {})
      silent.on('close', () => resolve(Date.now() - t0))
      setTimeout(() => resolve(-1), 4000).unref()
    })
    expect(closedAfter, 'the silent connection was never closed').toBeGreaterThan(300)
    expect(closedAfter).toBeLessThan(2000)
    expect(await raw({ path: socketPath }, 'GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/slow done$/)
  })
})

describe('shutdown hands over at once and drains politely (issue 9)', () => {
  it('close() gives socket and lock back first: a successor starts while the old server drains', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    let inHandler!: () => void
    const arrived = new Promise<void>((r) => (inHandler = r))
    const old = await serve(
      (_req, res) => {
        inHandler()
        setTimeout(() => res.end('old done'), 800)
      },
      { socketPath, logger: false, handleSignals: false },
    )
    const c = createClient({ socketPath, logger: false, retries: 0 })
    defer(() => c.destroy())
    const slow = c.request({ path: '/slow' })
    await arrived
    const closing = old.close()
    const t0 = Date.now()
    const successor = await start((_req, res) => res.end('new'), { socketPath })
    expect(Date.now() - t0).toBeLessThan(500)
    expect(successor.socketPath).toBe(socketPath)
    const res = await slow
    expect(res.headers.connection).toBe('close')
    expect(await res.text()).toBe('old done')
    await closing
    expect(await raw({ path: socketPath }, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/new$/)
  })

  it('while draining (default closeIdleOnShutdown: false), an idle keep-alive connection is not closed at once; its next request is answered with Connection: close', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    const ipc = await serve(ok, { socketPath, logger: false, handleSignals: false, shutdownTimeoutMs: 5000 })
    const sock = net.connect(socketPath)
    let data = ''
    let closed = false
    sock.on('data', (c) => (data += c.toString()))
    sock.on('close', () => (closed = true))
    sock.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\n')
    await until(() => data.endsWith('ok'), 2000, 'first answer')
    expect(data).toMatch(/connection: keep-alive/i)
    const closing = ipc.close()
    await sleep(300)
    expect(closed).toBe(false) // idle, but the client closes it, not us
    data = ''
    sock.write('GET /2 HTTP/1.1\r\nHost: x\r\n\r\n')
    await until(() => closed, 2000, 'the connection closed after the answer')
    expect(data).toMatch(/^HTTP\/1.1 200 /)
    expect(data).toMatch(/connection: close/i)
    await closing
  })
})

describe('a connection budget per listener, and a smaller one for unauthenticated connections', () => {
  it('a TCP handshake flood that reconnects as fast as it is cut does not starve socket clients', async () => {
    const d = dir()
    const p = await pki(d)
    const socketPath = path.join(d, 's.sock')
    const ipc = await start(ok, {
      socketPath,
      listen: [{ socketPath }, { host: '127.0.0.1', port: 0 }],
      maxConnections: 100,
      requestLog: false,
      tls: { cert: p.server.certPath, key: p.server.keyPath, ca: p.ca.certPath },
    })
    await flood(`127.0.0.1:${tcpPort(ipc)}`, 300, 'reconnect')
    // Every socket request on a new connection: each one has to be admitted during the flood.
    const socket = await during(1500, () => tlsGet({ path: socketPath }, p))
    expect({ served: socket.served >= 10, failed: socket.failed.length, first: socket.failed.slice(0, 3) }).toEqual({ served: true, failed: 0, first: [] })
    // The flood holds the TCP listener's unauthenticated budget (a quarter of 100), nothing more.
    const [unix, tcp] = ipc.connectionCounts
    expect(tcp!.unauthenticated).toBeLessThanOrEqual(25)
    expect(tcp!.open).toBeLessThanOrEqual(25)
    expect(unix!.open).toBeLessThanOrEqual(2)
  })

  it.skipIf(!isRoot)(
    'refused peers (uid 65534) reconnecting in a loop on an open socket hold only its unauthenticated budget: allowed clients are all served (needs root to run the flood as uid 65534)',
    async () => {
      const d = kit.dir()
      fs.chmodSync(d, 0o711)
      const socketPath = path.join(d, 's.sock')
      const ipc = await start(ok, { socketPath, socketMode: 0o666, maxConnections: 50, requestLog: false, acknowledgePlaintextSocket: true })
      const attacker = kit.runAsNobody(kit.foreignScript(fs.readFileSync(path.join(FIXTURES, 'flood.mjs'), 'utf8')), [socketPath, '300', 'linger'])
      await waitForLine(attacker, 'connected')
      const allowed = await during(1500, () => raw({ path: socketPath }, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))
      expect({ served: allowed.served >= 10, failed: allowed.failed.length, first: allowed.failed.slice(0, 3) }).toEqual({ served: true, failed: 0, first: [] })
      expect(ipc.connectionCounts[0]!.unauthenticated).toBeLessThanOrEqual(12) // a quarter of 50
    },
  )
})

describe('shutdown cuts what carries no request', () => {
  it('SIGTERM with 2,000 stalled TLS handshakes: the request in flight finishes, and the process exits within 1 s of it', async () => {
    const d = dir()
    const p = await pki(d)
    const socketPath = path.join(d, 's.sock')
    // Budgets wide enough that the server really holds all 2,000: this is about shutdown, not budgets.
    const server = spawnTs('tls-socket-and-tcp-server.ts', [socketPath, p.server.certPath, p.server.keyPath, p.ca.certPath], {
      env: { NAACCORD_MAX_CONNECTIONS: '4096', NAACCORD_MAX_UNAUTHENTICATED: '4096' },
    })
    defer(async () => {
      server.kill('SIGKILL')
      await exited(server)
    })
    const port = Number((await waitForLine(server, 'ready')).split(' ')[1])
    const baseline = fdsOf(server.pid!)
    await flood(`127.0.0.1:${port}`, 2000)
    await until(() => fdsOf(server.pid!) >= baseline + 1990, 10_000, 'the server holds the flood')
    const slowStarted = waitForLine(server, 'slow started')
    const answer = tlsGet({ path: socketPath }, p, '/slow', { keepAlive: true, timeoutMs: 10_000 })
    await slowStarted
    const exitedAt = exited(server).then(() => Date.now())
    server.kill('SIGTERM')
    const res = await answer
    const answeredAt = Date.now()
    expect(res).toMatch(/^HTTP\/1.1 200 /)
    expect(res).toMatch(/connection: close/i)
    expect(res.endsWith('slow done')).toBe(true)
    const exitAfterAnswerMs = (await Promise.race([exitedAt, sleep(15_000).then(() => Number.POSITIVE_INFINITY)])) - answeredAt
    expect(exitAfterAnswerMs).toBeLessThan(1000)
  }, 40_000)

  it('closeIdleOnShutdown: true closes idle keep-alive connections at once; a request in flight still finishes', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    const ipc = await serve(
      (req, res) => {
        if (req.url === '/slow') setTimeout(() => res.end('slow done'), 500)
        else res.end('ok')
      },
      { socketPath, logger: false, handleSignals: false, closeIdleOnShutdown: true, shutdownTimeoutMs: 5000 },
    )
    const idle = net.connect(socketPath)
    let idleData = ''
    let idleClosed = false
    idle.on('data', (c) => (idleData += c.toString()))
    idle.on('close', () => (idleClosed = true))
    idle.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\n')
    await until(() => idleData.endsWith('ok'), 2000, 'first answer')
    const busy = raw({ path: socketPath }, 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
    await until(() => ipc.connections === 2, 2000, 'the slow request arrived')
    await sleep(50)
    const t0 = Date.now()
    const closing = ipc.close()
    await until(() => idleClosed, 300, 'the idle connection closed at once')
    const slow = await busy
    expect(slow).toMatch(/^HTTP\/1.1 200 /)
    expect(slow).toMatch(/connection: close/i)
    expect(slow.endsWith('slow done')).toBe(true)
    await closing
    expect(Date.now() - t0).toBeLessThan(1500)
  })
})

describe('pipelining depth', () => {
  it('10 pipelined requests are all answered; 200 pipelined by a peer that never reads: at most 32 reach the app and the connection is closed; the server serves on', async () => {
    const socketPath = path.join(dir(), 's.sock')
    let calls = 0
    const ipc = await start((_req, res) => {
      calls++
      res.end(Buffer.alloc(64 * 1024, 'y'))
    }, { socketPath })
    const ten = await new Promise<string>((resolve, reject) => {
      const s = net.connect(socketPath)
      let data = ''
      s.on('data', (c) => (data += c.toString('latin1')))
      s.on('error', reject)
      s.on('close', () => resolve(data))
      s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(9) + 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    })
    expect(ten.match(/HTTP\/1\.1 200/g)?.length).toBe(10)
    await until(() => ipc.connections === 0, 2000, 'the first connection to close')
    calls = 0
    const flood = net.connect(socketPath)
    flood.on('error', () => {})
    flood.on('connect', () => {
      flood.pause() // never reads
      flood.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(200))
    })
    defer(() => flood.destroy())
    await until(() => calls > 0, 2000, 'the flood to reach the app')
    await until(() => ipc.connections === 0, 3000, 'the server to close the pipelining connection')
    expect(calls).toBeLessThanOrEqual(32)
    expect(await raw({ path: socketPath }, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1.1 200/)
  })
})

describe('a keep-alive connection after its answer', () => {
  it('is cut keepAliveTimeoutMs + headersTimeoutMs after the answer, even if it sends a blank line every 200 ms', async () => {
    const socketPath = path.join(dir(), 's.sock')
    await start(ok, { socketPath, limits: { keepAliveTimeoutMs: 500, headersTimeoutMs: 500, requestTimeoutMs: 5000 } })
    const s = net.connect(socketPath)
    s.on('error', () => {})
    let data = ''
    let closedAt = 0
    s.on('data', (c) => (data += c.toString()))
    s.on('close', () => (closedAt = Date.now()))
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    await until(() => data.endsWith('ok'), 2000, 'the first answer')
    const answeredAt = Date.now()
    const trickle = setInterval(() => s.writable && s.write('\r\n'), 200)
    defer(() => clearInterval(trickle))
    await until(() => closedAt > 0, 5000, 'the trickling connection to be cut')
    clearInterval(trickle)
    expect(closedAt - answeredAt).toBeLessThan(2500)
  })
})
