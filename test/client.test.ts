import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { request as undiciRequest } from 'undici'
import { describe, expect, it } from 'vitest'
import { createClient, resolveClientOptions, type IpcClient } from '@naaccord/ipc-client'
import { serve, type Handler, type IpcServer } from '@naaccord/ipc-server'
import { bundleFixture } from './bundle.js'
import { NOBODY, deferCleanup, isRoot, memoryLogger, runToEnd, tempDir } from './helpers.js'

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
    // The client runs from a plain .mjs bundle in a 0711 temp folder: uid 65534 must not need
    // to read the checkout (which may sit in a 0700 folder such as /root).
    const fixture = await bundleFixture('client.ts')
    defer(fixture.cleanup)
    const out = await runToEnd(spawn(process.execPath, [fixture.script, p], { cwd: '/', uid: NOBODY, gid: NOBODY, env: { ...process.env, ...fixture.env }, stdio: ['ignore', 'pipe', 'pipe'] }))
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
    expect(await aborted).toMatchObject({ code: 'IPC_CLIENT_CLOSED' })
  })

  it("emits undici's events ('connect', 'disconnect') from the pools it made, and close() closes them", async () => {
    const p = sock()
    await start(p, (_req, res) => res.end('ok'))
    const c = client(p)
    const connected = once(c.dispatcher, 'connect')
    const disconnected = once(c.dispatcher, 'disconnect')
    await (await c.request({ path: '/' })).text()
    const [origin, targets] = (await connected) as [URL, unknown[]]
    expect(String(origin)).toBe('http://localhost/')
    expect(targets.length).toBeGreaterThan(1)
    await c.close()
    await disconnected
    await expect(undiciRequest('http://localhost/', { dispatcher: c.dispatcher })).rejects.toMatchObject({ code: 'IPC_CLIENT_CLOSED' })
  })

  it('fetch and undici.request through client.dispatcher get the same retries and typed errors as get()', async () => {
    const p = sock()
    let hits = 0
    await start(p, (req, res) => {
      if (++hits % 2 === 1) return void req.socket.destroy() // every first try is cut mid-request
      json(res, 200, { hits })
    })
    const c = client(p, { retryDelayMs: 10 })
    const viaUndici = await undiciRequest('http://localhost/u', { dispatcher: c.dispatcher })
    expect(await viaUndici.body.json()).toEqual({ hits: 2 })
    const viaFetch = await fetch('http://localhost/f', { dispatcher: c.dispatcher } as unknown as RequestInit)
    expect(await viaFetch.json()).toEqual({ hits: 4 })
    // Interceptors composed on top hand us undici 7's newer handler interface: same behaviour.
    const composed = c.dispatcher.compose((dispatch) => (opts, handler) => dispatch(opts, handler))
    const viaComposed = await undiciRequest('http://localhost/c', { dispatcher: composed })
    expect(await viaComposed.body.json()).toEqual({ hits: 6 })
    // Nothing listening: a typed error, also through undici.request (with a per-request window).
    const gone = client(sock(), { retryDelayMs: 10, retryWindowMs: 100 })
    const err = await undiciRequest('http://localhost/', { dispatcher: gone.dispatcher, ipc: { retryWindowMs: 50 } } as Parameters<typeof undiciRequest>[1]).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'IPC_SERVICE_UNAVAILABLE' })
    const viaFetchErr = await fetch('http://localhost/', { dispatcher: gone.dispatcher } as unknown as RequestInit).catch((e: unknown) => e)
    expect((viaFetchErr as Error).cause).toMatchObject({ code: 'IPC_SERVICE_UNAVAILABLE' })
  })
})

describe('errors while reading the body', () => {
  it('a body that stalls -> IPC_TIMEOUT from get()', async () => {
    const p = sock()
    await start(p, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' })
      res.write('{"partial":') // then nothing
    })
    const err = await client(p, { timeoutMs: 300, retries: 0 }).get('/').catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'IPC_TIMEOUT', timeoutMs: 300 })
    expect((err as Error).message).toContain('response body')
  })

  it('a body cut after some bytes reached the caller -> IPC_CONNECTION_LOST, not replayed', async () => {
    const p = sock()
    let hits = 0
    await start(p, (req, res) => {
      hits++
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' })
      res.write('{"partial":', () => setTimeout(() => req.socket.destroy(), 20))
    })
    const err = await client(p, { retryDelayMs: 10 }).get('/').catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'IPC_CONNECTION_LOST' })
    expect(hits).toBe(1)
  })

  it('a GET whose body is cut before any byte reached the caller is retried', async () => {
    const p = sock()
    let hits = 0
    await start(p, (req, res) => {
      if (++hits === 1) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' })
        res.flushHeaders()
        setTimeout(() => req.socket.destroy(), 20)
        return
      }
      json(res, 200, { hits })
    })
    expect(await client(p, { retryDelayMs: 10 }).get('/')).toEqual({ hits: 2 })
  })

  it('destroy() while the body is being read -> IPC_CLIENT_CLOSED from the body', async () => {
    const p = sock()
    await start(p, (_req, res) => {
      res.writeHead(200, { 'content-length': '100' })
      res.write('part')
    })
    const c = client(p, { retries: 0 })
    const res = await c.request({ path: '/' })
    const reading = res.text().catch((e: unknown) => e)
    await c.destroy()
    expect(await reading).toMatchObject({ code: 'IPC_CLIENT_CLOSED' })
  })
})

describe('retry window', () => {
  it('with the default options, a GET waits out a server that is away for 1.5 s', async () => {
    const p = sock()
    const c = client(p)
    let ready = false
    setTimeout(() => void start(p, (_req, res) => json(res, 200, { ready })).then(() => (ready = true)), 1_500)
    const t0 = Date.now()
    expect(await c.get('/')).toEqual({ ready: true })
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_500)
  })

  it('after the window, the error says how many attempts were made over how long', async () => {
    const p = sock()
    const err = await client(p, { retryWindowMs: 400, retryDelayMs: 20 }).get('/').catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'IPC_SERVICE_UNAVAILABLE' })
    const e = err as { attempts: number; elapsedMs: number; message: string }
    expect(e.attempts).toBeGreaterThan(2)
    expect(e.elapsedMs).toBeGreaterThanOrEqual(400) // the last try lands at the end of the window
    expect(e.elapsedMs).toBeLessThan(2_000)
    expect(e.message).toMatch(new RegExp(`gave up after ${e.attempts} attempts in ${e.elapsedMs} ms`))
  })

  it('per-call retries and retryWindowMs override the client, and are validated like options', async () => {
    const p = sock()
    const c = client(p, { retryDelayMs: 10 })
    const t0 = Date.now()
    await expect(c.get('/', { retries: 0 })).rejects.toMatchObject({ code: 'IPC_SERVICE_UNAVAILABLE' })
    await expect(c.get('/', { retryWindowMs: 100 })).rejects.toMatchObject({ code: 'IPC_SERVICE_UNAVAILABLE' })
    expect(Date.now() - t0).toBeLessThan(2_000)
    await expect(c.get('/', { retries: -1 })).rejects.toMatchObject({ code: 'IPC_INVALID_OPTION', option: 'retries' })
    await expect(c.get('/', { timeoutMs: 0 })).rejects.toMatchObject({ code: 'IPC_INVALID_OPTION', option: 'timeoutMs' })
    await expect(c.get('/', { retryWindowMs: 'long' as unknown as number })).rejects.toMatchObject({ code: 'IPC_INVALID_OPTION', option: 'retryWindowMs' })
  })

  it('POSTs queued in the pool when the server stops accepting go to its successor, each exactly once', async () => {
    const p = sock()
    const seen = new Map<string, number>()
    const count = (req: http.IncomingMessage, res: http.ServerResponse, server: string) => {
      let body = ''
      req.on('data', (d: Buffer) => (body += d.toString()))
      req.on('end', () => {
        const { id } = JSON.parse(body) as { id: string }
        seen.set(id, (seen.get(id) ?? 0) + 1)
        res.setHeader('connection', 'close')
        json(res, 201, { id, server })
      })
    }
    // The old server answers one request slowly, stops accepting while it does (its socket file
    // goes away), and closes the connection after answering.
    const a = http.createServer((req, res) => {
      a.close()
      setTimeout(() => count(req, res, 'a'), 200)
    })
    a.listen(p)
    await once(a, 'listening')
    const c = client(p, { connections: 1, retryDelayMs: 20 })
    const posts = Array.from({ length: 6 }, (_, i) => c.post<{ id: string; server: string }>('/reports', { id: `r${i}` }))
    // The successor comes a second later: longer than the old default retries (2, ~0.3 s) bridged.
    const b = http.createServer((req, res) => count(req, res, 'b'))
    setTimeout(() => b.listen(p), 1_000)
    defer(() => new Promise((r) => b.close(r)))
    const results = await Promise.all(posts)
    expect(results.map((r) => r.id).sort()).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5'])
    expect(results.filter((r) => r.server === 'b').length).toBe(5)
    expect([...seen.values()]).toEqual([1, 1, 1, 1, 1, 1])
  })
})

describe('restarts under load', () => {
  it('GETs all succeed and no POST runs twice while the server restarts three times', async () => {
    const p = sock()
    const executed = new Map<string, number>()
    // A server that drains the way serve() does: once closing, every answer says
    // `Connection: close`, so busy connections end after their answer and idle ones are closed.
    const listen = async () => {
      let closing = false
      const server = http.createServer((req, res) => {
        let body = ''
        req.on('data', (d: Buffer) => (body += d.toString()))
        req.on('end', () => {
          if (req.method === 'POST') {
            const { id } = JSON.parse(body) as { id: string }
            executed.set(id, (executed.get(id) ?? 0) + 1)
          }
          setTimeout(() => {
            if (closing) res.setHeader('connection', 'close')
            json(res, 200, { ok: true })
          }, 2)
        })
      })
      server.listen(p)
      await once(server, 'listening')
      return {
        close: () =>
          new Promise<void>((r) => {
            closing = true
            server.close(() => r()) // stops accepting; Node closes the idle connections
          }),
      }
    }
    let server = await listen()
    const c = client(p, { retryDelayMs: 20 })
    let running = true
    defer(() => (running = false)) // a test that fails midway must not leave the workers spinning on a destroyed client
    let gets = 0
    const failedGets: unknown[] = []
    const failedPosts: Array<{ id: string; err: unknown }> = []
    let seq = 0
    const worker = async () => {
      while (running) {
        try {
          await c.get('/r')
          gets++
        } catch (err) {
          failedGets.push(err)
        }
        const id = `p${seq++}`
        await c.post('/w', { id }).catch((err: unknown) => failedPosts.push({ id, err }))
      }
    }
    const workers = Array.from({ length: 4 }, worker)
    for (let i = 0; i < 3; i++) {
      await sleep(200)
      await server.close()
      await sleep(300) // nothing listens: connects fail with ENOENT
      server = await listen()
    }
    await sleep(200)
    running = false
    await Promise.all(workers)
    defer(() => server.close())
    expect(failedGets).toEqual([])
    expect(gets).toBeGreaterThanOrEqual(4) // every worker got through at least once
    expect([...executed.values()].every((n) => n === 1)).toBe(true) // never executed twice
    for (const f of failedPosts) {
      expect(f.err).toMatchObject({ code: 'IPC_CONNECTION_LOST' }) // only a POST that may have been sent fails...
      expect(executed.has(f.id)).toBe(false) // ...and none of those ran
    }
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

  it('refuses NAACCORD_SOCKET_PATH and NAACCORD_SERVICES_URL set together, naming both', () => {
    const env = { NAACCORD_SOCKET_PATH: '/run/naaccord/service.sock', NAACCORD_SERVICES_URL: 'http://127.0.0.1:8080' }
    const err = (() => {
      try {
        resolveClientOptions({ logger: false }, env)
      } catch (e) {
        return e
      }
    })()
    expect(err).toMatchObject({ code: 'IPC_INVALID_OPTION' })
    expect((err as Error).message).toContain('NAACCORD_SOCKET_PATH')
    expect((err as Error).message).toContain('NAACCORD_SERVICES_URL')
    // An explicit option decides, whatever the environment says.
    expect(resolveClientOptions({ logger: false, socketPath: '/run/x.sock' }, env).transport).toBe('unix')
  })

  it('warns at creation when it talks plaintext HTTP over TCP', async () => {
    const { logger, lines } = memoryLogger()
    const c = createClient({ url: 'http://127.0.0.1:9', logger })
    defer(() => c.destroy())
    expect(lines.some((l) => l.level === 40 && String(l.msg).includes('plaintext HTTP over TCP to http://127.0.0.1:9'))).toBe(true)
  })

  it('refuses a malformed environment variable, naming the option', () => {
    expect(() => resolveClientOptions({ logger: false }, { NAACCORD_RETRIES: 'many' })).toThrow(expect.objectContaining({ code: 'IPC_INVALID_OPTION', option: 'retries' }))
  })
})
