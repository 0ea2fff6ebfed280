import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import express from 'express'
import { describe, expect, it } from 'vitest'
import { createTestPki, type TestPki } from '@naaccord/ipc-certs'
import { createClient } from '@naaccord/ipc-client'
import { serve, type IpcServer, type ServerOptions } from '@naaccord/ipc-server'
import { FIXTURES, deferCleanup, exited, runToEnd, tempDir, waitForLine } from './helpers.js'
import { waitUntil } from './wait.js'

const defer = deferCleanup()

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
async function flood(target: string, count: number, mode: 'stall' | 'slowloris' = 'stall'): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, [path.join(FIXTURES, 'flood.mjs'), target, String(count), mode], { stdio: ['ignore', 'pipe', 'pipe'] })
  defer(async () => {
    child.kill('SIGKILL')
    await exited(child)
  })
  const line = await waitForLine(child, 'connected')
  return { child, line }
}

/** Write `text` on a fresh connection; resolve with everything read until the server closes. */
function raw(where: { path: string } | { port: number }, text: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(where as net.NetConnectOpts)
    let data = ''
    sock.on('data', (c) => (data += c.toString()))
    sock.on('error', (err: NodeJS.ErrnoException) => (data ? resolve(data) : reject(err)))
    sock.on('close', () => resolve(data))
    sock.write(text)
  })
}

async function pki(d: string): Promise<TestPki> {
  return createTestPki({ dir: path.join(d, 'pki') })
}

const tcpPort = (ipc: IpcServer): number => Number(ipc.listeners.find((l) => l.transport === 'tcp')!.address.split(':').pop())

describe('stalled TLS handshakes (8.6)', () => {
  it('300 TCP connections that send nothing are closed at the handshake timeout: descriptors back to baseline', async () => {
    const d = dir()
    const p = await pki(d)
    const ipc = await start(ok, {
      socketPath: path.join(d, 's.sock'),
      listen: [{ host: '127.0.0.1', port: 0 }],
      limits: { headersTimeoutMs: 1000 },
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

  it('close() with stalled handshakes finishes at the shutdown timeout and gives socket and lock back', async () => {
    const d = dir()
    const p = await pki(d)
    const socketPath = path.join(d, 's.sock')
    const ipc = await serve(ok, {
      socketPath,
      logger: false,
      handleSignals: false,
      listen: [{ socketPath }, { host: '127.0.0.1', port: 0 }],
      limits: { headersTimeoutMs: 60_000, requestTimeoutMs: 120_000 },
      shutdownTimeoutMs: 500,
      tls: { cert: p.server.certPath, key: p.server.keyPath, ca: p.ca.certPath },
    })
    await sleep(100)
    const baseline = fdCount()
    await flood(`127.0.0.1:${tcpPort(ipc)}`, 100)
    await flood(socketPath, 100)
    await until(() => fdCount() >= baseline + 190, 5000, 'the server holds the flood')
    const t0 = Date.now()
    await ipc.close()
    expect(Date.now() - t0).toBeLessThan(2000)
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

  it('while draining, an idle keep-alive connection is not closed at once; its next request is answered with Connection: close', async () => {
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
