import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { serve, type IpcServer } from '@naaccord/ipc-server'
import { createClient } from '@naaccord/ipc-client'
import { deferCleanup, exited, isRoot, memoryLogger, spawnTs, tempDir, waitForLine } from './helpers.js'

const ok = (_req: unknown, res: import('node:http').ServerResponse) => res.end('ok')

const defer = deferCleanup()

function dir(): string {
  const t = tempDir()
  defer(t.cleanup)
  return t.dir
}

async function start(socketPath: string, extra: Parameters<typeof serve>[1] = {}): Promise<IpcServer> {
  const ipc = await serve(ok, { socketPath, logger: false, handleSignals: false, ...extra })
  defer(() => ipc.close())
  return ipc
}

function get(socketPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath)
    let data = ''
    sock.on('data', (d) => (data += d.toString()))
    sock.on('error', reject)
    sock.on('end', () => resolve({ status: Number(data.split(' ')[1]), body: data.split('\r\n\r\n')[1] ?? '' }))
    sock.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  })
}

/** A services server in a child process, on a socket in a fresh folder, once it says it is ready. */
async function serverChild(): Promise<{ d: string; socketPath: string; child: ChildProcess; pid: number }> {
  const d = dir()
  const socketPath = path.join(d, 's.sock')
  const child = spawnTs('server.ts', [socketPath])
  const line = await waitForLine(child, 'ready')
  return { d, socketPath, child, pid: Number(line.split(' ')[1]) }
}

const mode = (p: string) => fs.lstatSync(p).mode & 0o7777

describe('socket file', () => {
  it('is never reachable with a wider mode than asked, from the first moment it exists', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    // A separate process stats the path as fast as it can while we start and stop the server.
    const watcher = spawn(
      process.execPath,
      [
        '-e',
        `const fs=require('fs');const p=process.argv[1];const seen={};let n=0;const end=Date.now()+Number(process.argv[2]);
         while(Date.now()<end){try{const m=(fs.lstatSync(p).mode&0o7777).toString(8);seen[m]=(seen[m]||0)+1;n++}catch{}}
         process.stdout.write(JSON.stringify(seen))`,
        socketPath,
        '2500',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let out = ''
    watcher.stdout.on('data', (d: Buffer) => (out += d.toString()))
    const t0 = Date.now()
    let rounds = 0
    while (Date.now() - t0 < 2000) {
      const ipc = await serve(ok, { socketPath, logger: false, handleSignals: false })
      await ipc.close()
      rounds++
    }
    await exited(watcher)
    const seen = JSON.parse(out) as Record<string, number>
    expect(rounds).toBeGreaterThan(3)
    expect(Object.keys(seen)).toEqual(['600']) // seen, and only ever 0600
  })

  it('has exactly the asked mode and group', async () => {
    const d = dir()
    const ipc = await start(path.join(d, 'a.sock'), { socketMode: 0o660, socketGroup: 0 })
    expect(mode(ipc.socketPath!)).toBe(0o660)
    expect(fs.lstatSync(ipc.socketPath!).gid).toBe(0)
    expect(fs.readdirSync(d).sort()).toEqual(['a.sock', 'a.sock.lock']) // no private bind folder left
  })

  it('creates a missing folder with dirMode', async () => {
    const d = dir()
    const socketPath = path.join(d, 'run', 'naaccord', 'service.sock')
    await start(socketPath, { dirMode: 0o750 })
    expect(mode(path.dirname(socketPath))).toBe(0o750)
    await start(path.join(d, 'other', 'service.sock'))
    expect(mode(path.join(d, 'other'))).toBe(0o700)
  })

  it('works through a symlinked folder above the socket (/var/run -> /run)', async () => {
    const d = dir()
    fs.mkdirSync(path.join(d, 'run'), { mode: 0o755 })
    fs.symlinkSync(path.join(d, 'run'), path.join(d, 'varrun'))
    const ipc = await start(path.join(d, 'varrun', 'naaccord', 'service.sock'))
    expect((await get(ipc.socketPath!)).body).toBe('ok')
  })

  it('refuses a socket path longer than sun_path', async () => {
    const d = dir()
    const long = path.join(d, 'x'.repeat(120) + '.sock')
    await expect(start(long)).rejects.toMatchObject({ code: 'IPC_SOCKET_PATH_TOO_LONG' })
  })
})

describe('unsafe folders and paths', () => {
  it('refuses a folder that others can write', async () => {
    const d = dir()
    const open = path.join(d, 'open')
    fs.mkdirSync(open)
    fs.chmodSync(open, 0o777)
    await expect(start(path.join(open, 's.sock'))).rejects.toMatchObject({ code: 'IPC_UNSAFE_SOCKET_PATH' })
    fs.chmodSync(open, 0o770)
    await expect(start(path.join(open, 's.sock'))).rejects.toMatchObject({ code: 'IPC_UNSAFE_SOCKET_PATH' })
    expect(fs.readdirSync(open)).toEqual([])
  })

  it.skipIf(!isRoot)('refuses a folder owned by another non-root user (needs root to chown)', async () => {
    const d = dir()
    const theirs = path.join(d, 'theirs')
    fs.mkdirSync(theirs, { mode: 0o700 })
    fs.chownSync(theirs, 65534, 65534)
    const err = await start(path.join(theirs, 's.sock')).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'IPC_UNSAFE_SOCKET_PATH' })
    expect(String((err as Error).message)).toContain('uid 65534')
  })

  it.each([
    ['a symlink', (p: string) => fs.symlinkSync('/etc/passwd', p)],
    ['a regular file', (p: string) => fs.writeFileSync(p, 'keep me')],
    ['a folder', (p: string) => fs.mkdirSync(p)],
  ])('refuses %s at the socket path and leaves it untouched', async (_what, make) => {
    const d = dir()
    const p = path.join(d, 's.sock')
    make(p)
    const before = fs.lstatSync(p)
    await expect(start(p)).rejects.toMatchObject({ code: 'IPC_UNSAFE_SOCKET_PATH' })
    const after = fs.lstatSync(p)
    expect(after.ino).toBe(before.ino)
    expect(after.mtimeMs).toBe(before.mtimeMs)
    expect(fs.existsSync(`${p}.lock`)).toBe(false)
  })
})

describe('stale and live sockets', () => {
  it('removes the socket of a server killed with SIGKILL and starts', async () => {
    const { socketPath, child } = await serverChild()
    child.kill('SIGKILL')
    await exited(child)
    expect(fs.lstatSync(socketPath).isSocket()).toBe(true) // left behind by the crash
    expect(fs.existsSync(`${socketPath}.lock`)).toBe(true)
    const { logger, lines } = memoryLogger()
    const ipc = await start(socketPath, { logger })
    expect((await get(ipc.socketPath!)).body).toBe('ok')
    expect(lines.some((l) => String(l.msg).includes('stale socket'))).toBe(true)
  })

  it('never removes a live server: a second serve gets IPC_SOCKET_IN_USE with the pid', async () => {
    const { socketPath, child, pid } = await serverChild()
    defer(async () => {
      child.kill('SIGKILL')
      await exited(child)
    })
    const err = await start(socketPath).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'IPC_SOCKET_IN_USE', pid })
    expect((err as Error).message).toContain(socketPath)
    expect(JSON.parse((await get(socketPath)).body).pid).toBe(pid) // the first still answers
  })

  it('a live server without its lock (lock removed by hand) is still detected by the probe', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    const first = await start(socketPath)
    fs.rmSync(`${socketPath}.lock`, { recursive: true })
    await expect(serve(ok, { socketPath, logger: false, handleSignals: false })).rejects.toMatchObject({ code: 'IPC_SOCKET_IN_USE' })
    expect((await get(first.socketPath!)).body).toBe('ok')
  })

  it('ten servers started at once on one path: exactly one wins', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => serve(ok, { socketPath, logger: false, handleSignals: false })),
    )
    const winners = results.filter((r) => r.status === 'fulfilled')
    const losers = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    for (const w of winners) defer(() => (w as PromiseFulfilledResult<IpcServer>).value.close())
    expect(winners).toHaveLength(1)
    expect(losers.map((l) => (l.reason as { code: string }).code)).toEqual(Array(9).fill('IPC_SOCKET_IN_USE'))
    expect((await get(socketPath)).body).toBe('ok')
  })
})

describe('graceful shutdown', () => {
  it('lets an in-flight request finish, refuses new ones, removes the socket and the lock', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    let started!: () => void
    const inHandler = new Promise<void>((r) => (started = r))
    const ipc = await serve(
      (_req, res) => {
        started()
        setTimeout(() => res.end('slow done'), 400)
      },
      { socketPath, logger: false, handleSignals: false },
    )
    const client = createClient({ socketPath, logger: false, retries: 0 })
    defer(() => client.destroy())
    const slow = client.request({ path: '/slow' })
    await inHandler
    const closing = ipc.close()
    await new Promise((r) => setTimeout(r, 50))
    // The address is given back before the drain: no socket, no lock, while /slow still runs.
    expect(fs.existsSync(socketPath)).toBe(false)
    expect(fs.existsSync(`${socketPath}.lock`)).toBe(false)
    await expect(get(socketPath)).rejects.toMatchObject({ code: 'ENOENT' })
    const res = await slow
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('slow done')
    await closing
    expect(fs.existsSync(socketPath)).toBe(false)
    expect(fs.existsSync(`${socketPath}.lock`)).toBe(false)
  })

  it('cuts requests still running at shutdownTimeoutMs', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    const ipc = await serve(() => {}, { socketPath, logger: false, handleSignals: false, shutdownTimeoutMs: 200 })
    const client = createClient({ socketPath, logger: false, retries: 0 })
    defer(() => client.destroy())
    const hanging = client.request({ path: '/never' }).catch((e: unknown) => e)
    await new Promise((r) => setTimeout(r, 100))
    const t0 = Date.now()
    await ipc.close()
    expect(Date.now() - t0).toBeLessThan(2000)
    expect(await hanging).toMatchObject({ code: 'IPC_CONNECTION_LOST' })
  })

  it('does not remove a socket that is no longer ours', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    const ipc = await serve(ok, { socketPath, logger: false, handleSignals: false })
    fs.renameSync(socketPath, path.join(d, 'moved.sock'))
    fs.writeFileSync(socketPath, 'someone else')
    await ipc.close()
    expect(fs.readFileSync(socketPath, 'utf8')).toBe('someone else')
  })

  it('closes on SIGTERM in a child process and removes its socket', async () => {
    const { socketPath, child } = await serverChild()
    child.kill('SIGTERM')
    await exited(child)
    // The signal is raised again once the server has closed: the process ends by it (no process.exit of ours).
    expect(child.signalCode).toBe('SIGTERM')
    expect(fs.existsSync(socketPath)).toBe(false)
  })
})

describe('signals', () => {
  it('Ctrl-C then SIGTERM (as a terminal and a supervisor send them) still removes socket and lock', async () => {
    const { d, child } = await serverChild()
    child.kill('SIGINT')
    child.kill('SIGTERM')
    await exited(child)
    // The first signal the process handled, raised again once the server has closed: both are
    // pending at once, and which one Node dispatches first is not the sender's to decide.
    expect(['SIGINT', 'SIGTERM']).toContain(child.signalCode)
    expect(fs.readdirSync(d)).toEqual([])
  })
})

describe('HTTP hardening', () => {
  it('answers 431 to oversized headers and 413 to an oversized declared body, before the app', async () => {
    const d = dir()
    let hits = 0
    const ipc = await start(path.join(d, 's.sock'), { limits: { maxBodyBytes: 10 } })
    ipc.server.prependListener('request', () => hits++)
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const sock = net.connect(ipc.socketPath!)
        let data = ''
        sock.on('data', (c) => (data += c.toString()))
        sock.on('error', reject)
        sock.on('close', () => resolve(data))
        sock.write(text)
      })
    expect(await raw(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)).toMatch(/^HTTP\/1.1 431 /)
    expect(await raw('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world')).toMatch(/^HTTP\/1.1 413 /)
    expect(hits).toBe(1) // the 413 request reached our wrapper, never the app (which would answer "ok")
  })
})

describe('an independent client', () => {
  it('curl --unix-socket talks to the server', async () => {
    const d = dir()
    const ipc = await start(path.join(d, 's.sock'))
    // Async: the server runs in this process and must keep answering while curl waits.
    const { stdout: out } = await promisify(execFile)('curl', ['-s', '-i', '--unix-socket', ipc.socketPath!, 'http://localhost/any'], { encoding: 'utf8' })
    expect(out).toMatch(/^HTTP\/1.1 200/)
    expect(out).toMatch(/x-request-id: [0-9a-f-]{36}/i)
    expect(out).not.toMatch(/x-powered-by/i)
    expect(out.endsWith('ok')).toBe(true)
  })
})
