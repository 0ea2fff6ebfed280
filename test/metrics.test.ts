// serveMetrics() on every surface an outside probe found open: labels from route templates only
// (mounted routers included) and a hard cap on series; a socket listener bound exactly like
// serve()'s (folder chain, lock, mode 0600, length, removal on close, peer check); a connection
// cap and short timeouts on the metrics listener.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { promisify } from 'node:util'
import express from 'express'
import { describe, expect, it } from 'vitest'
import { createClient } from '@naaccord/ipc-client'
import { METRICS_DEFAULTS, serve, serveMetrics, type IpcMetrics, type IpcServer } from '@naaccord/ipc-server'
import { SUN_PATH_MAX } from '@naaccord/ipc-shared'
import { NOBODY, deferCleanup, exited, failure, isRoot, memoryLogger, socketTestKit, waitForLine } from './helpers.js'
import { waitUntil } from './wait.js'

const execFileAsync = promisify(execFile)
const defer = deferCleanup()
const { dir, stickyFolder, foreignScript, runAsNobody } = socketTestKit(defer)
const fdCount = () => fs.readdirSync('/proc/self/fd').length
const okJson: http.RequestListener = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}')

async function start(handler: http.RequestListener | express.Express, extra: Parameters<typeof serve>[1] = {}): Promise<IpcServer> {
  const ipc = await serve(handler as http.RequestListener, {
    socketPath: path.join(dir(), 's.sock'),
    logger: false,
    handleSignals: false,
    requestLog: false,
    acknowledgePlaintextSocket: true,
    ...extra,
  })
  defer(() => ipc.close())
  return ipc
}

async function metricsOf(ipc: IpcServer, options: Parameters<typeof serveMetrics>[1]): Promise<IpcMetrics> {
  const m = await serveMetrics(ipc, options)
  defer(() => m.close())
  return m
}

/** GET /metrics over a Unix socket with Node's http (one connection, closed after). */
function scrapeSocket(socketPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: '/metrics', agent: false, timeout: 5000 }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('timeout', () => req.destroy(new Error('scrape timed out')))
    req.on('error', reject)
  })
}

/** The label sets of one metric in Prometheus text. */
function series(text: string, name: string): Array<Record<string, string>> {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`))
    .map((l) => Object.fromEntries([...l.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!])))
}

/** A made-up identifier shaped like a US social security number (the PHI the probe used). */
const ssn = (i: number) => `${String(100 + (i % 900)).padStart(3, '0')}-${String(10 + (i % 90))}-${String(i).padStart(4, '0')}`

describe('metrics labels: route templates only, and a bounded number of series', () => {
  it('a router mounted under a parameter: 3,000 distinct ids give the mount template, never an id, and a bounded scrape', async () => {
    const app = express()
    const records = express.Router({ mergeParams: true })
    records.get('/records', (_req, res) => void res.json({}))
    const visits = express.Router({ mergeParams: true })
    visits.get('/notes/:nid', (_req, res) => void res.json({}))
    records.use('/visits/:vid', visits)
    app.use('/patients/:pid', records)
    // Falls through the router above (same real prefix), handled by a sibling mounted later.
    const more = express.Router()
    more.get('/summary', (_req, res) => void res.json({}))
    app.use('/patients/:pid/more', more)
    const admin = express.Router()
    admin.get('/stats', (_req, res) => void res.json({}))
    app.use('/admin', admin)
    // An Express sub-app: its mount template is not listed by the router, so it gets a fixed bucket.
    const sub = express()
    sub.get('/things', (_req, res) => void res.json({}))
    app.use('/tenants/:tid', sub)
    app.get('/reports/:id', (_req, res) => void res.json({}))
    const ipc = await start(app)
    const metrics = await metricsOf(ipc, { listen: { host: '127.0.0.1', port: 0 } })
    const client = createClient({ socketPath: ipc.socketPath!, logger: false, retries: 0, acknowledgePlaintext: true, connections: 8 })
    defer(() => client.destroy())

    const ids = Array.from({ length: 3000 }, (_, i) => ssn(i))
    for (let i = 0; i < ids.length; i += 50) {
      await Promise.all(ids.slice(i, i + 50).map((id) => client.get(`/patients/${id}/records`)))
    }
    await client.get(`/patients/${ids[1]}/visits/v-${ids[2]}/notes/n-${ids[3]}`)
    await client.get(`/patients/${ids[4]}/more/summary`)
    await client.get('/admin/stats')
    await client.get(`/tenants/${ids[5]}/things`)
    await client.get(`/reports/${ids[6]}`)
    await expect(client.get(`/patients/${ids[7]}/nothing-here`)).rejects.toMatchObject({ status: 404 })

    const res = await fetch(`http://${metrics.address}/metrics`)
    const text = await res.text()
    expect(text).not.toMatch(/\d{3}-\d{2}-\d{4}/) // no id of any request, in any label
    const routes = series(text, 'naaccord_ipc_http_requests_total').map((l) => l.route)
    expect(routes.sort()).toEqual(
      ['/admin/stats', '/patients/:pid/more/summary', '/patients/:pid/records', '/patients/:pid/visits/:vid/notes/:nid', '/reports/:id', 'unknown_mount', 'unmatched'].sort(),
    )
    const records3000 = series(text, 'naaccord_ipc_http_requests_total').length
    expect(records3000).toBe(7)
    expect(text).toContain('naaccord_ipc_http_requests_total{method="GET",route="/patients/:pid/records",status="200"} 3000')
    expect(Buffer.byteLength(text)).toBeLessThan(64 * 1024) // the probe's scrape was 6.25 MB
  })

  it('beyond maxSeries label sets, requests are counted under one fixed overflow series, with one warning', async () => {
    const app = express()
    for (const r of ['a', 'b', 'c', 'd', 'e']) app.get(`/${r}`, (_req, res) => void res.json({}))
    const { logger, lines } = memoryLogger()
    const ipc = await start(app, { logger })
    const metrics = await metricsOf(ipc, { listen: { host: '127.0.0.1', port: 0 }, maxSeries: 3 })
    const client = createClient({ socketPath: ipc.socketPath!, logger: false, retries: 0, acknowledgePlaintext: true })
    defer(() => client.destroy())
    for (const r of ['a', 'b', 'c', 'd', 'e', 'd', 'a']) await client.get(`/${r}`)
    const text = await (await fetch(`http://${metrics.address}/metrics`)).text()
    const got = series(text, 'naaccord_ipc_http_requests_total')
    expect(got.map((l) => l.route).sort()).toEqual(['/a', '/b', '/c', 'overflow'])
    expect(text).toContain('naaccord_ipc_http_requests_total{method="GET",route="/a",status="200"} 2')
    expect(text).toContain('naaccord_ipc_http_requests_total{method="other",route="overflow",status="other"} 3')
    expect(lines.filter((l) => String(l.msg).includes('maxSeries'))).toHaveLength(1)
  })

  it('refuses unknown and malformed options, naming them', async () => {
    const ipc = await start(okJson)
    const cases: Array<[unknown, string]> = [
      [{ listen: { host: '127.0.0.1', port: 0 }, maxSeries: 0 }, 'metrics.maxSeries'],
      [{ listen: { host: '127.0.0.1', port: 0 }, maxConnections: 'many' }, 'metrics.maxConnections'],
      [{ listen: { host: '127.0.0.1', port: 0 }, colour: 'red' }, 'metrics.colour'],
      [{ listen: { host: '127.0.0.1', port: 0, allow: { uids: [0] } } }, 'metrics.listen.allow'],
      [{ listen: { socketPath: path.join(dir(), 'm.sock'), socketMode: 0o777 } }, 'metrics.listen.socketMode'],
      [{ listen: { socketPath: path.join(dir(), 'm.sock'), dirMode: 0o770 } }, 'metrics.listen.dirMode'],
      [{ listen: { socketPath: path.join(dir(), 'm.sock'), allow: { uids: [] } } }, 'metrics.listen.allow'],
      [{ listen: { host: '127.0.0.1', port: 0 }, prefix: 'bad-prefix' }, 'metrics.prefix'],
      [{ listen: { host: '127.0.0.1', port: 0 }, headersTimeoutMs: 0 }, 'metrics.headersTimeoutMs'],
    ]
    for (const [options, option] of cases) {
      await expect(serveMetrics(ipc, options as Parameters<typeof serveMetrics>[1]), option).rejects.toMatchObject({ code: 'IPC_INVALID_OPTION', option })
    }
  })
})

describe('the metrics socket is bound like serve(): folder chain, lock, mode, length, removal', () => {
  it('binds at mode 0600 and answers our own uid; the file is removed on close()', async () => {
    const ipc = await start(okJson)
    const socketPath = path.join(dir(), 'metrics.sock')
    const metrics = await serveMetrics(ipc, { listen: { socketPath } })
    expect(metrics.address).toBe(socketPath)
    const st = fs.lstatSync(socketPath)
    expect({ socket: st.isSocket(), mode: st.mode & 0o7777, uid: st.uid }).toEqual({ socket: true, mode: 0o600, uid: process.getuid!() })
    // An independent client: curl over the socket.
    const { stdout } = await execFileAsync('curl', ['-sS', '--max-time', '5', '--unix-socket', socketPath, 'http://localhost/metrics'])
    expect(stdout).toContain('naaccord_ipc_open_connections')
    await metrics.close()
    expect(fs.existsSync(socketPath)).toBe(false)
    expect(fs.readdirSync(path.dirname(socketPath))).toEqual([]) // no lock, no private bind folder left
  })

  it('a socket directly in a sticky 1777 folder is refused with IPC_UNSAFE_SOCKET_PATH, nothing bound', async () => {
    const ipc = await start(okJson)
    const t = stickyFolder(0o755)
    const err = await failure(serveMetrics(ipc, { listen: { socketPath: path.join(t, 'metrics.sock') } }))
    expect(err.code).toBe('IPC_UNSAFE_SOCKET_PATH')
    expect(fs.readdirSync(t)).toEqual([])
  })

  it.skipIf(!isRoot)('a symlink owned by uid 65534 in a 1777 folder is refused with IPC_UNSAFE_SOCKET_PATH; nothing is created through it (needs root)', async () => {
    const ipc = await start(okJson)
    const t = stickyFolder(0o755)
    const theirs = dir()
    fs.chownSync(theirs, NOBODY, NOBODY) // the attacker's own folder
    const planter = foreignScript(`import fs from 'node:fs'; fs.symlinkSync(process.argv[2], process.argv[3]); console.log('planted')`)
    await waitForLine(runAsNobody(planter, [theirs, path.join(t, 'metrics')]), 'planted')
    expect(fs.lstatSync(path.join(t, 'metrics')).uid).toBe(NOBODY)
    const err = await failure(serveMetrics(ipc, { listen: { socketPath: path.join(t, 'metrics', 'm.sock') } }))
    expect(err.code).toBe('IPC_UNSAFE_SOCKET_PATH')
    expect(err.message).toContain(`symlink owned by uid ${NOBODY}`)
    expect(fs.readdirSync(theirs)).toEqual([])
  })

  it('a 115-byte path is refused with IPC_SOCKET_PATH_TOO_LONG, never cut short; nothing is created', async () => {
    const ipc = await start(okJson)
    const d = dir()
    const long = path.join(d, 'm'.repeat(115 - d.length - 1))
    expect(Buffer.byteLength(long)).toBe(115)
    expect(115).toBeGreaterThan(SUN_PATH_MAX)
    const err = await failure(serveMetrics(ipc, { listen: { socketPath: long } }))
    expect(err.code).toBe('IPC_SOCKET_PATH_TOO_LONG')
    expect(fs.readdirSync(d)).toEqual([])
  })

  it('a second metrics listener on the same socket is refused (the lock), the first keeps answering', async () => {
    const ipc = await start(okJson)
    const socketPath = path.join(dir(), 'metrics.sock')
    await metricsOf(ipc, { listen: { socketPath } })
    const err = await failure(serveMetrics(ipc, { listen: { socketPath } }))
    expect(err.code).toBe('IPC_SOCKET_IN_USE')
    expect((await scrapeSocket(socketPath)).status).toBe(200)
  })

  it.skipIf(!isRoot)('the peer check: uid 65534 gets 403 on a 0666 metrics socket by default, and is served when allowed through a group (needs root)', async () => {
    const ipc = await start(okJson)
    const d = dir()
    fs.chmodSync(d, 0o711)
    const curlAsNobody = (socketPath: string) =>
      execFileAsync('curl', ['-sS', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code}', '--unix-socket', socketPath, 'http://localhost/metrics'], { uid: NOBODY, gid: NOBODY, cwd: '/' }).then(
        (r) => r.stdout,
        (e: { stdout?: string }) => e.stdout ?? 'failed',
      )
    const open = path.join(d, 'open', 'm.sock')
    await metricsOf(ipc, { listen: { socketPath: open, socketMode: 0o666, dirMode: 0o711 } })
    expect(await curlAsNobody(open)).toBe('403')
    // A Prometheus agent's group: socket 0660 in a 0750 folder of that group, admitted by gid.
    const grouped = path.join(d, 'grouped', 'm.sock')
    await metricsOf(ipc, { listen: { socketPath: grouped, socketGroup: NOBODY, allow: { gids: [NOBODY] } } })
    const st = fs.lstatSync(grouped)
    expect({ mode: st.mode & 0o7777, gid: st.gid }).toEqual({ mode: 0o660, gid: NOBODY })
    expect(fs.lstatSync(path.dirname(grouped)).mode & 0o7777).toBe(0o750)
    expect(await curlAsNobody(grouped)).toBe('200')
  })
})

describe('the metrics listener has a connection cap and short timeouts', () => {
  it('500 connections from another uid: descriptors stay bounded, idle ones are cut, socket clients of serve() keep being served', async () => {
    const ipc = await start(okJson)
    const metrics = await metricsOf(ipc, { listen: { host: '127.0.0.1', port: 0 } })
    const client = createClient({ socketPath: ipc.socketPath!, logger: false, retries: 0, acknowledgePlaintext: true })
    defer(() => client.destroy())
    await client.get('/')
    const baseline = fdCount()

    const [host, port] = [metrics.address.slice(0, metrics.address.lastIndexOf(':')), metrics.address.slice(metrics.address.lastIndexOf(':') + 1)]
    const source = `
      import net from 'node:net'
      const [host, port, n] = process.argv.slice(2)
      let settled = 0, closed = 0
      for (let i = 0; i < Number(n); i++) {
        const s = net.connect({ host, port: Number(port) })
        let done = false
        const settle = () => { if (!done) { done = true; settled++ } }
        s.on('connect', settle); s.on('error', settle); s.on('close', () => { settle(); closed++ })
      }
      setInterval(() => console.log('state ' + settled + ' ' + closed), 50)
      setTimeout(() => process.exit(0), 30000)
    `
    const args = [host, port, '500']
    let child: ChildProcess
    if (isRoot) child = runAsNobody(foreignScript(source), args)
    else {
      const file = path.join(dir(), 'flood.mjs')
      fs.writeFileSync(file, source)
      child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      defer(async () => {
        child.kill('SIGKILL')
        await exited(child)
      })
    }
    let state = { settled: 0, closed: 0 }
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const lines = out.split('\n')
      out = lines.pop()! // a partial line waits for its end
      const m = lines.length > 0 ? /^state (\d+) (\d+)$/.exec(lines[lines.length - 1]!) : null
      if (m) state = { settled: Number(m[1]), closed: Number(m[2]) }
    })
    // Every connection attempt settled, and all but the cap (16 by default) were closed by the server at once.
    const cap = METRICS_DEFAULTS.maxConnections
    await waitUntil('the flood settled', () => state.settled === 500 && state.closed >= 500 - cap, { timeoutMs: 8000 }).catch(() => {})
    const during = fdCount()
    expect(during - baseline, `descriptors during the flood (baseline ${baseline}, ${JSON.stringify(state)})`).toBeLessThanOrEqual(cap + 8)
    for (let i = 0; i < 3; i++) expect(await client.get('/')).toEqual({})
    // The connections the cap admitted but that never send a byte are cut at the headers timeout (5 s).
    await waitUntil('idle metrics connections cut', () => state.closed === 500, { timeoutMs: 10_000 }).catch(() => {})
    expect(state.closed).toBe(500)
    expect(fdCount() - baseline).toBeLessThanOrEqual(8)
    expect((await fetch(`http://${metrics.address}/metrics`)).status).toBe(200)
  })
})

describe('metrics weakenings are said at start whatever the log level', () => {
  it('loopback TCP, allow: false and other uids in allow each give a warn line with a logger at level error', async () => {
    const { logger, lines } = memoryLogger()
    logger.level = 'error'
    const ipc = await start(okJson, { logger })
    await metricsOf(ipc, { listen: { host: '127.0.0.1', port: 0 } })
    await metricsOf(ipc, { listen: { socketPath: path.join(dir(), 'm1.sock'), allow: false } })
    await metricsOf(ipc, { listen: { socketPath: path.join(dir(), 'm2.sock'), allow: { uids: [NOBODY] } } })
    const said = lines.filter((l) => l.level === 40 && typeof l.setting === 'string' && String(l.setting).startsWith('metrics.')).map((l) => l.setting)
    expect(said).toEqual(['metrics.listen.host', 'metrics.listen.allow', 'metrics.listen.allow'])
  })
})

describe('a scraper pipelining requests costs one render', () => {
  it('500 pipelined GET /metrics on one connection render the registry at most twice', async () => {
    const ipc = await start(okJson)
    const { Registry } = await import('prom-client')
    const register = new Registry()
    const original = register.metrics.bind(register)
    let renders = 0
    register.metrics = () => {
      renders++
      return original()
    }
    const m = await metricsOf(ipc, { listen: { socketPath: path.join(dir(), 'm.sock') }, register })
    const net = await import('node:net')
    const sock = net.connect(m.address)
    sock.on('error', () => {})
    sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(500))
    await new Promise((r) => setTimeout(r, 500))
    sock.destroy()
    expect(renders).toBeGreaterThan(0)
    expect(renders).toBeLessThanOrEqual(2)
  })
})

describe('a scrape connection after its answer', () => {
  it('is cut keepAliveTimeoutMs + headersTimeoutMs after the answer, even if it sends a blank line every 200 ms', async () => {
    const ipc = await start(okJson)
    const m = await metricsOf(ipc, { listen: { socketPath: path.join(dir(), 'm.sock') }, headersTimeoutMs: 500, keepAliveTimeoutMs: 500 })
    const net = await import('node:net')
    const s = net.connect(m.address)
    s.on('error', () => {})
    let data = ''
    let closedAt = 0
    s.on('data', (c: Buffer) => (data += c.toString()))
    s.on('close', () => (closedAt = Date.now()))
    s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
    await waitUntil('the scrape', () => data.includes('naaccord_ipc_'), { timeoutMs: 2000, everyMs: 20 })
    const answeredAt = Date.now()
    const trickle = setInterval(() => s.writable && s.write('\r\n'), 200)
    defer(() => clearInterval(trickle))
    await waitUntil('the trickling connection to be cut', () => closedAt > 0, { timeoutMs: 5000, everyMs: 20 })
    clearInterval(trickle)
    expect(closedAt - answeredAt).toBeLessThan(2500)
  })
})
