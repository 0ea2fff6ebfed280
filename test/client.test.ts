import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { request as undiciRequest } from 'undici'
import { describe, expect, it } from 'vitest'
import { createClient, resolveClientOptions, type IpcClient } from '@naaccord/ipc-client'
import { serve, type Handler, type IpcServer } from '@naaccord/ipc-server'
import { NOBODY, deferCleanup, isRoot, runToEnd, spawnTs, tempDir } from './helpers.js'

const defer = deferCleanup()

function sock(): string {
  const t = tempDir()
  defer(t.cleanup)
  return path.join(t.dir, 's.sock')
}

async function start(socketPath: string, handler: Handler): Promise<IpcServer> {
  const ipc = await serve(handler, { socketPath, logger: false, handleSignals: false })
  defer(() => ipc.close())
  return ipc
}

function client(socketPath: string, extra: Parameters<typeof createClient>[0] = {}): IpcClient {
  const c = createClient({ socketPath, logger: false, ...extra })
  defer(() => c.destroy())
  return c
}

const json = (res: http.ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

describe('errors', () => {
  it('missing socket -> IPC_SERVICE_UNAVAILABLE naming the path (after its retries)', async () => {
    const p = sock()
    const err = await client(p, { retries: 1, retryDelayMs: 10 }).get('/x').catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'IPC_SERVICE_UNAVAILABLE' })
    expect((err as Error).message).toContain(p)
  })

  it('refused connection (a dead socket file) -> IPC_SERVICE_UNAVAILABLE', async () => {
    const p = sock()
    const live = path.join(path.dirname(p), 'live.sock')
    const server = net.createServer().listen(live)
    await new Promise((r) => server.once('listening', r))
    fs.linkSync(live, p) // a second name for the socket that outlives the listener
    await new Promise((r) => server.close(r))
    const err = await client(p, { retries: 0 }).get('/x').catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'IPC_SERVICE_UNAVAILABLE' })
    expect(((err as Error).cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED')
  })

  it('timeout -> IPC_TIMEOUT', async () => {
    const p = sock()
    await start(p, () => {})
    const t0 = Date.now()
    const err = await client(p, { timeoutMs: 200, retries: 0 }).get('/hang').catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'IPC_TIMEOUT', timeoutMs: 200 })
    expect(Date.now() - t0).toBeLessThan(3000)
  })

  it('non-2xx -> IPC_HTTP_STATUS with status and parsed body; request() resolves instead', async () => {
    const p = sock()
    await start(p, (_req, res) => json(res, 404, { error: 'not_found' }))
    const c = client(p)
    await expect(c.get('/nope')).rejects.toMatchObject({ code: 'IPC_HTTP_STATUS', status: 404, body: { error: 'not_found' } })
    const res = await c.request({ path: '/nope' })
    expect(res.status).toBe(404)
    expect(await res.json()).toEqual({ error: 'not_found' })
  })

  it.skipIf(!isRoot)('a client as another uid without permission -> IPC_PERMISSION_DENIED (needs root to spawn as uid 65534)', async () => {
    const t = tempDir()
    defer(t.cleanup)
    fs.chmodSync(t.dir, 0o711) // nobody may traverse, but the socket itself stays 0600
    const p = path.join(t.dir, 's.sock')
    await start(p, (_req, res) => res.end('never'))
    const out = await runToEnd(spawnTs('client.ts', [p], { uid: NOBODY, gid: NOBODY }))
    expect(JSON.parse(out.stdout)).toMatchObject({ ok: false, code: 'IPC_PERMISSION_DENIED' })
  })

  it('request after close -> IPC_CLIENT_CLOSED', async () => {
    const p = sock()
    await start(p, (_req, res) => res.end('ok'))
    const c = client(p)
    await c.close()
    await expect(c.get('/')).rejects.toMatchObject({ code: 'IPC_CLIENT_CLOSED' })
  })

  it("the caller's own abort passes through as an AbortError", async () => {
    const p = sock()
    await start(p, () => {})
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 50)
    await expect(client(p).request({ path: '/', signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' })
  })
})

describe('retries', () => {
  it('a GET survives a server restart', async () => {
    const p = sock()
    const a = await serve((_req, res) => json(res, 200, { server: 'a' }), { socketPath: p, logger: false, handleSignals: false })
    const c = client(p, { retries: 5, retryDelayMs: 50, maxRetryDelayMs: 200 })
    expect(await c.get('/')).toEqual({ server: 'a' })
    await a.close()
    setTimeout(() => {
      void start(p, (_req, res) => json(res, 200, { server: 'b' }))
    }, 150)
    expect(await c.get('/')).toEqual({ server: 'b' })
  })

  it('a GET whose connection drops mid-request is retried', async () => {
    const p = sock()
    let hits = 0
    await start(p, (req, res) => {
      if (++hits === 1) return void req.socket.destroy()
      json(res, 200, { hits })
    })
    expect(await client(p, { retryDelayMs: 10 }).get('/')).toEqual({ hits: 2 })
  })

  it('a POST is never replayed', async () => {
    const p = sock()
    let hits = 0
    await start(p, (req) => {
      hits++
      req.socket.destroy()
    })
    const err = await client(p, { retries: 3, retryDelayMs: 10 }).post('/reports', { a: 1 }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'IPC_CONNECTION_LOST' })
    await new Promise((r) => setTimeout(r, 100))
    expect(hits).toBe(1)
  })

  it('a POST to a server that is not there yet is sent once it is (nothing was sent before)', async () => {
    const p = sock()
    let hits = 0
    setTimeout(() => void start(p, (_req, res) => json(res, 201, { hits: ++hits })), 150)
    expect(await client(p, { retries: 5, retryDelayMs: 50 }).post('/reports', {})).toEqual({ hits: 1 })
  })
})

describe('keep-alive, request ids and the dispatcher', () => {
  it('keeps connections alive: 50 sequential requests open at most two', async () => {
    const p = sock()
    const ipc = await start(p, (_req, res) => res.end('ok'))
    let connections = 0
    ipc.server.on('connection', () => connections++)
    const c = client(p)
    for (let i = 0; i < 50; i++) await (await c.request({ path: '/' })).text()
    // undici may open a second connection while the first is still marked busy for a tick.
    expect(connections).toBeGreaterThanOrEqual(1)
    expect(connections).toBeLessThanOrEqual(2)
  })

  it("propagates the caller's x-request-id and makes one when absent", async () => {
    const p = sock()
    const seen: string[] = []
    await start(p, (req, res) => {
      seen.push(String(req.headers['x-request-id']))
      res.end('ok')
    })
    const c = client(p)
    const res = await c.request({ path: '/', headers: { 'x-request-id': 'web-123' } })
    expect(res.headers['x-request-id']).toBe('web-123')
    await res.dump()
    await (await c.request({ path: '/' })).dump()
    expect(seen[0]).toBe('web-123')
    expect(seen[1]).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('exposes a dispatcher that fetch and undici.request use over the socket', async () => {
    const p = sock()
    await start(p, (req, res) => json(res, 200, { url: req.url }))
    const c = client(p)
    const viaFetch = await fetch('http://localhost/f?x=1', { dispatcher: c.dispatcher } as unknown as RequestInit)
    expect(await viaFetch.json()).toEqual({ url: '/f?x=1' })
    const viaUndici = await undiciRequest('http://localhost/u', { dispatcher: c.dispatcher })
    expect(await viaUndici.body.json()).toEqual({ url: '/u' })
  })

  it('close() lets in-flight requests finish; destroy() aborts them', async () => {
    const p = sock()
    await start(p, (_req, res) => setTimeout(() => res.end('late'), 200))
    const a = client(p)
    const pending = a.request({ path: '/' })
    await new Promise((r) => setTimeout(r, 50))
    const closing = a.close()
    expect(await (await pending).text()).toBe('late')
    await closing
    const b = client(p, { retries: 0 })
    const aborted = b.request({ path: '/' }).catch((e: unknown) => e)
    await new Promise((r) => setTimeout(r, 50))
    await b.destroy()
    expect(await aborted).toBeInstanceOf(Error)
  })
})

describe('options', () => {
  it('explicit option beats the environment, which beats the default', () => {
    const env = { NAACCORD_SOCKET_PATH: '/run/env.sock', NAACCORD_RETRIES: '4' }
    expect(resolveClientOptions({ socketPath: '/run/explicit.sock', logger: false }, env).socketPath).toBe('/run/explicit.sock')
    const fromEnv = resolveClientOptions({ logger: false }, env)
    expect(fromEnv.socketPath).toBe('/run/env.sock')
    expect(fromEnv.retries).toBe(4)
    expect(resolveClientOptions({ logger: false }, {}).socketPath).toBe('/var/run/naaccord/service.sock')
  })

  it.each([
    [{ sokcetPath: '/x' }, 'sokcetPath'],
    [{ retries: -1 }, 'retries'],
    [{ timeoutMs: 'soon' }, 'timeoutMs'],
    [{ socketPath: '/x', url: 'http://127.0.0.1' }, 'url'],
    [{ expectServer: { uid: 'root' } }, 'expectServer.uid'],
  ])('refuses %j with IPC_INVALID_OPTION naming %s', (opts, name) => {
    expect(() => resolveClientOptions({ logger: false, ...(opts as object) }, {})).toThrow(expect.objectContaining({ code: 'IPC_INVALID_OPTION', option: name }))
  })

  it('refuses a malformed environment variable, naming the option', () => {
    expect(() => resolveClientOptions({ logger: false }, { NAACCORD_RETRIES: 'many' })).toThrow(expect.objectContaining({ code: 'IPC_INVALID_OPTION', option: 'retries' }))
  })
})
