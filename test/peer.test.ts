import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { promisify } from 'node:util'
import express from 'express'
import { describe, expect, it } from 'vitest'
import { createClient } from '@naaccord/ipc-client'
import { requirePeer, serve, type IpcServer, type ServerOptions } from '@naaccord/ipc-server'
import { readProcessStartTime } from '@naaccord/ipc-shared'
import { FIXTURES, NOBODY, deferCleanup, exited, isRoot, memoryLogger, runToEnd, spawnTs, tempDir, waitForLine } from './helpers.js'

const ROOT_REASON = 'needs root: spawns processes as uid 65534'

const defer = deferCleanup()

/** A socket folder that uid 65534 can traverse (0711) but not list or write. */
function openDir(): string {
  const t = tempDir()
  defer(t.cleanup)
  fs.chmodSync(t.dir, 0o711)
  return t.dir
}

function countingApp() {
  const hits = { count: 0 }
  const app = express()
  app.use((_req, _res, next) => {
    hits.count++
    next()
  })
  app.get('/whoami', (req, res) => res.json({ peer: req.peer }))
  app.get('/admin', requirePeer({ uids: [0] }), (_req, res) => res.json({ admin: true }))
  return { app, hits }
}

async function start(socketPath: string, app: express.Express, extra: ServerOptions = {}): Promise<IpcServer> {
  const ipc = await serve(app, { socketPath, logger: false, handleSignals: false, ...extra })
  defer(() => ipc.close())
  return ipc
}

/**
 * One GET from another process, with curl: a process running as another uid needs nothing from
 * the checkout (users clone into 0700 folders such as /root).
 */
async function clientAs(socketPath: string, uid?: number, urlPath = '/whoami') {
  const ids = uid === undefined ? {} : { uid, gid: uid }
  const child = spawn('curl', ['-s', '-i', '--max-time', '10', '--unix-socket', socketPath, `http://localhost${urlPath}`], { stdio: ['ignore', 'pipe', 'pipe'], ...ids })
  const out = await runToEnd(child)
  return { pid: child.pid!, raw: out.stdout, status: Number(out.stdout.split(' ')[1]), body: out.stdout.split('\r\n\r\n')[1] ?? '' }
}

describe('server: kernel-checked peers', () => {
  it('accepts a same-uid client, and req.peer matches its pid, uid, gid and start time', async () => {
    const dir = openDir()
    const { app } = countingApp()
    const ipc = await start(path.join(dir, 's.sock'), app)
    const child = spawnTs('client.ts', [ipc.socketPath!])
    const out = await runToEnd(child)
    const result = JSON.parse(out.stdout) as { ok: boolean; status: number; body: string }
    expect(result).toMatchObject({ ok: true, status: 200 })
    const { peer } = JSON.parse(result.body) as { peer: { pid: number; uid: number; gid: number; startTime: number; transport: string } }
    expect(peer).toMatchObject({ transport: 'unix', pid: child.pid, uid: process.getuid!(), gid: process.getgid!() })
    expect(typeof peer.startTime).toBe('number')
  })

  it.skipIf(!isRoot)(`refuses uid 65534 with a 403 before the app sees anything (${ROOT_REASON})`, async () => {
    const dir = openDir()
    const { app, hits } = countingApp()
    const { logger, lines } = memoryLogger()
    const ipc = await start(path.join(dir, 's.sock'), app, { socketMode: 0o666, logger })
    const res = await clientAs(ipc.socketPath!, NOBODY)
    expect(res.status).toBe(403)
    expect(res.raw).toMatch(/^HTTP\/1.1 403 Forbidden\r\n/)
    expect(res.body).toContain('allow policy')
    expect(hits.count).toBe(0)
    const refusal = lines.find((l) => String(l.msg).startsWith('refused connection'))
    expect(refusal?.peer).toMatchObject({ uid: NOBODY, gid: NOBODY, pid: res.pid })
    expect(String((refusal?.peer as { exe?: string }).exe ?? '')).toMatch(/curl$/)
    // The same uid is admitted when the policy names it, and its credentials reach the app.
    const ok = await clientAs(ipc.socketPath!)
    expect(ok.status).toBe(200)
    expect(hits.count).toBe(1)
  })

  it.skipIf(!isRoot)(`a gids allow-list admits a peer by group (${ROOT_REASON})`, async () => {
    const dir = openDir()
    const { app } = countingApp()
    const ipc = await start(path.join(dir, 's.sock'), app, { socketMode: 0o666, allow: { uids: [], gids: [NOBODY] } })
    const nobody = await clientAs(ipc.socketPath!, NOBODY)
    expect(nobody.status).toBe(200)
    expect(JSON.parse(nobody.body).peer).toMatchObject({ uid: NOBODY, gid: NOBODY, pid: nobody.pid })
    expect((await clientAs(ipc.socketPath!)).status).toBe(403) // root is not in the list
  })

  it.skipIf(!isRoot)(`requirePeer narrows one route (${ROOT_REASON})`, async () => {
    const dir = openDir()
    const { app } = countingApp()
    const ipc = await start(path.join(dir, 's.sock'), app, { socketMode: 0o666, allow: { uids: [0, NOBODY] } })
    expect((await clientAs(ipc.socketPath!, NOBODY, '/whoami')).status).toBe(200)
    expect((await clientAs(ipc.socketPath!, NOBODY, '/admin')).status).toBe(403)
    expect((await clientAs(ipc.socketPath!, undefined, '/admin')).status).toBe(200)
  })

  it('survives refused peers that hang up at once (no unhandled socket error)', async () => {
    const dir = openDir()
    const { app, hits } = countingApp()
    const { logger, lines } = memoryLogger()
    const ipc = await start(path.join(dir, 's.sock'), app, { allow: { uids: [54321] }, logger })
    for (let i = 0; i < 50; i++) {
      const sock = net.connect(ipc.socketPath!)
      sock.on('error', () => {})
      sock.on('connect', () => {
        sock.write('GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n')
        sock.destroy()
      })
    }
    const refusals = () => lines.filter((l) => String(l.msg).startsWith('refused connection'))
    const t0 = Date.now()
    // Every refusal is accounted for: logged, or counted in the next logged line's `suppressed`.
    const accounted = () => refusals().length + refusals().reduce((n, l) => n + Number(l.suppressed ?? 0), 0)
    await new Promise((r) => setTimeout(r, 300))
    expect(refusals().length).toBeGreaterThan(0)
    await new Promise((r) => setTimeout(r, 1100)) // a new log window opens
    expect((await clientAs(ipc.socketPath!)).status).toBe(403) // still up, still refusing
    const seconds = Math.ceil((Date.now() - t0) / 1000)
    expect(hits.count).toBe(0)
    expect(accounted()).toBe(51) // 50 hang-ups and curl: none unrefused, none unlogged
    expect(refusals().length).toBeLessThanOrEqual(10 * (seconds + 1)) // at most 10 lines a second
    expect(refusals().length).toBeLessThan(51)
  })

  it('checks once per connection: keep-alive requests share the credentials read at accept', async () => {
    const dir = openDir()
    const { app } = countingApp()
    const ipc = await start(path.join(dir, 's.sock'), app)
    const c = createClient({ socketPath: ipc.socketPath!, logger: false, connections: 1 })
    defer(() => c.destroy())
    const peers = []
    for (let i = 0; i < 5; i++) peers.push(((await c.get('/whoami')) as { peer: object }).peer)
    expect(new Set(peers.map((p) => JSON.stringify(p))).size).toBe(1)
    expect(peers[0]).toMatchObject({ pid: process.pid, startTime: readProcessStartTime(process.pid) })
  })

  it('ss(8) agrees on which process holds the connection', async () => {
    const dir = openDir()
    const { app } = countingApp()
    const ipc = await start(path.join(dir, 's.sock'), app)
    const c = createClient({ socketPath: ipc.socketPath!, logger: false })
    defer(() => c.destroy())
    const { peer } = (await c.get('/whoami')) as { peer: { pid: number } }
    const { stdout } = await promisify(execFile)('ss', ['-xp'], { encoding: 'utf8' })
    // ss names the socket by the name it was bound under (the private folder beside the final
    // path, see bind-socket.ts), and the process holding the connection by pid.
    const established = stdout.split('\n').filter((l) => l.startsWith('u_str') && l.includes('ESTAB') && l.includes(`pid=${peer.pid},`))
    expect(established.length).toBeGreaterThan(0)
    expect(stdout).toContain(`${path.dirname(ipc.socketPath!)}/.s.sock.`)
  })
})

describe('fail closed', () => {
  it('refuses to start when the addon cannot be loaded, and says how to opt out', async () => {
    const dir = openDir()
    const child = spawnTs('server.ts', [path.join(dir, 's.sock')], { env: { NAACCORD_PEERCRED_ADDON: path.join(dir, 'missing.node') } })
    const line = await waitForLine(child, 'error')
    await exited(child)
    expect(line).toMatch(/^error IPC_PEER_CREDENTIALS_UNAVAILABLE /)
    expect(line).toContain('missing.node')
    expect(line).toContain('allow: false')
    expect(fs.existsSync(path.join(dir, 's.sock'))).toBe(false)
  })

  it('starts without the addon only with allow: false, said by name', async () => {
    const dir = openDir()
    const child = spawnTs('server.ts', [path.join(dir, 's.sock'), 'allow-off'], { env: { NAACCORD_PEERCRED_ADDON: path.join(dir, 'missing.node') } })
    defer(async () => {
      child.kill('SIGKILL')
      await exited(child)
    })
    await waitForLine(child, 'ready')
  })
})

describe('client: expectServer', () => {
  async function serverAsNobody(): Promise<string> {
    const dir = openDir()
    const own = path.join(dir, 'svc')
    fs.mkdirSync(own, { mode: 0o711 })
    fs.chownSync(own, NOBODY, NOBODY)
    const socketPath = path.join(own, 's.sock')
    // A plain script copied beside the socket: uid 65534 cannot read a checkout in a 0700 folder.
    const script = path.join(dir, 'plain-server.mjs')
    fs.copyFileSync(path.join(FIXTURES, 'plain-server.mjs'), script)
    fs.chmodSync(script, 0o644)
    const child = spawn(process.execPath, [script, socketPath], { stdio: ['ignore', 'pipe', 'pipe'], uid: NOBODY, gid: NOBODY })
    defer(async () => {
      child.kill('SIGTERM')
      await exited(child)
    })
    await waitForLine(child, 'ready')
    return socketPath
  }

  it.skipIf(!isRoot)(`refuses a server running as another uid, before sending anything (${ROOT_REASON})`, async () => {
    const socketPath = await serverAsNobody()
    // The folder and the socket file are uid 65534's: refused before connecting, naming them...
    const byPath = createClient({ socketPath, logger: false, retries: 0, expectServer: { uid: 0 } })
    defer(() => byPath.destroy())
    const e1 = await byPath.get('/').catch((e: unknown) => e)
    expect(e1).toMatchObject({ code: 'IPC_UNSAFE_SOCKET_PATH', owner: NOBODY })
    expect((e1 as Error).message).toContain('uid 65534')
    // ...and when root moves that socket into its own folder and owns the file, the kernel's
    // credentials of the listening process still give it away after connecting.
    const rootDir = openDir()
    const moved = path.join(rootDir, 's.sock')
    fs.renameSync(socketPath, moved)
    fs.lchownSync(moved, 0, 0)
    const byKernel = createClient({ socketPath: moved, logger: false, retries: 0, expectServer: { uid: 0 } })
    defer(() => byKernel.destroy())
    const e2 = await byKernel.get('/').catch((e: unknown) => e)
    expect(e2).toMatchObject({ code: 'IPC_PEER_REJECTED' })
    expect((e2 as Error).message).toMatch(/runs as uid 65534 \(pid \d+\), expected uid 0/)
    // The right expectation passes (the socket file is root's now: checkSocketFile off says so).
    const right = createClient({ socketPath: moved, logger: false, expectServer: { uid: NOBODY, checkSocketFile: false } })
    defer(() => right.destroy())
    expect(await right.get('/')).toMatchObject({ uid: NOBODY })
  })

})
