// Socket activation with the real systemd-socket-activate(1): it binds the socket, waits for the
// first connection, then execs our server with the socket as fd 3 (LISTEN_FDS=1, LISTEN_PID set
// to its own pid, which becomes the server's). The server must adopt it, keep the peer check,
// hide the variables from its app and children, never unlink the socket, and refuse an
// inherited fd that is not a listening Unix stream socket at the configured path.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, statSync, symlinkSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseListenFds } from '@naaccord/ipc-server'
import { deferCleanup, exited, FIXTURES, isRoot, NOBODY, ROOT, socketTestKit, tempDir } from './helpers.js'
import { sourceBundle } from './source-bundle.js'
import { waitUntil } from './wait.js'

const defer = deferCleanup()
const kit = socketTestKit(defer, 'nipc-act-')
const haveActivate = spawnSync('systemd-socket-activate', ['--version']).status === 0

/**
 * activated-server.ts from source, bundled once by absolute path (test/source-bundle.ts): an app
 * started in a folder outside the checkout can still load it, in plain `node`'s start-up time.
 */
const SERVER = sourceBundle(path.join(FIXTURES, 'activated-server.ts'))

/** systemd-socket-activate [args] node activated-server <socketPath> [allow] */
function activate(activateArgs: string[], serverArgs: string[]): { child: ChildProcess; out: () => string; err: () => string } {
  const child = spawn(
    'systemd-socket-activate',
    [...activateArgs, process.execPath, SERVER, ...serverArgs],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NAACCORD_LOG_LEVEL: 'warn' } },
  )
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  defer(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited(child)
    }
  })
  return { child, out: () => out, err: () => err }
}

const until = (what: string, cond: () => boolean, ms = 15_000) => waitUntil(what, cond, { timeoutMs: ms })

/** curl over the Unix socket, optionally as another uid. */
function curl(socketPath: string, uid?: number, urlPath = '/x'): Promise<{ code: number | null; body: string; status: string }> {
  return new Promise((resolve) => {
    const child = spawn('curl', ['-sS', '--max-time', '20', '-w', '\n%{http_code}', '--unix-socket', socketPath, `http://localhost${urlPath}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(uid === undefined ? {} : { uid, gid: uid }),
    })
    let body = ''
    child.stdout!.on('data', (d: Buffer) => (body += d.toString()))
    child.once('exit', (code) => {
      const cut = body.lastIndexOf('\n')
      resolve({ code, body: body.slice(0, cut), status: body.slice(cut + 1) })
    })
  })
}

describe('parseListenFds (sd_listen_fds semantics)', () => {
  it('takes the descriptors only when LISTEN_PID is this process', () => {
    expect(parseListenFds({ LISTEN_PID: '42', LISTEN_FDS: '2', LISTEN_FDNAMES: 'a:b' }, 42)).toEqual([
      { fd: 3, name: 'a' },
      { fd: 4, name: 'b' },
    ])
    expect(parseListenFds({ LISTEN_PID: '43', LISTEN_FDS: '1' }, 42)).toEqual([])
    expect(parseListenFds({ LISTEN_FDS: '1' }, 42)).toEqual([])
    expect(parseListenFds({ LISTEN_PID: '42', LISTEN_FDS: 'x' }, 42)).toEqual([])
    expect(parseListenFds({ LISTEN_PID: '42', LISTEN_FDS: '0' }, 42)).toEqual([])
  })
})

describe.skipIf(!haveActivate)('socket activation with systemd-socket-activate', () => {
  it('adopts the inherited socket: the first request waits in the backlog and is served, the app cannot see LISTEN_*, and the socket is never unlinked', async () => {
    const { dir, cleanup } = tempDir()
    defer(cleanup)
    const sock = path.join(dir, 'a.sock')
    const run = activate(['-l', sock], [sock])
    await until('the activator to listen', () => existsSync(sock))
    // This connection arrives before the server exists: it waits in the kernel's backlog.
    const first = await curl(sock)
    expect(first.code).toBe(0)
    const body = JSON.parse(first.body) as { pid: number; listenEnv: string[]; peerUid: number }
    expect(body.pid).toBe(run.child.pid) // exec: the activator's pid is the server's
    expect(body.listenEnv).toEqual([])
    expect(body.peerUid).toBe(process.getuid!())
    expect(run.out()).toContain(`"address":"${sock}"`)
    // A process the app starts does not inherit the listening socket (libuv makes the adopted
    // descriptor close-on-exec; this guards that).
    const child = JSON.parse((await curl(sock, undefined, '/child-fds')).body) as { fds: string[] }
    expect(child.fds.filter((f) => f.startsWith('socket:'))).toEqual([])
    run.child.kill('SIGTERM')
    await exited(run.child)
    // serve() closes, then raises SIGTERM again: the process ends by the signal (no process.exit of ours).
    expect(run.child.exitCode === 0 || run.child.signalCode === 'SIGTERM').toBe(true)
    // The activator made the socket; the server must leave it where it is.
    expect(statSync(sock).isSocket()).toBe(true)
  })

  it('picks the socket by LISTEN_FDNAMES among several', async () => {
    const { dir, cleanup } = tempDir()
    defer(cleanup)
    const other = path.join(dir, 'other.sock')
    const sock = path.join(dir, 'b.sock')
    const run = activate(['-l', other, '-l', sock, '--fdname=other.sock:b.sock'], [sock])
    await until('the activator to listen', () => existsSync(sock))
    const res = await curl(sock)
    expect(res.code).toBe(0)
    expect(run.out()).toMatch(/^ready /m)
  })

  it.skipIf(!isRoot)('the peer check applies unchanged on the adopted socket: a foreign uid is refused, the owner served', async () => {
    const { dir, cleanup } = tempDir()
    defer(cleanup)
    chmodSync(dir, 0o711)
    const sock = path.join(dir, 'c.sock')
    // socketMode 0666 accepts the wide socket by name (without it the adoption is refused).
    activate(['-l', sock, '-E', 'NAACCORD_SOCKET_MODE=0666'], [sock, String(process.getuid!())])
    await until('the activator to listen', () => existsSync(sock))
    chmodSync(sock, 0o666) // the file mode lets anyone connect: only the peer check stands
    const owner = await curl(sock)
    expect(owner.code).toBe(0)
    expect(owner.status).toBe('200')
    const foreign = await curl(sock, NOBODY)
    // Refused by the gate before the app: its answer never reaches the foreign peer.
    expect(foreign.status).toBe('403')
    expect(foreign.body).not.toContain('listenEnv')
    const again = await curl(sock)
    expect(again.code).toBe(0)
  })

  it.each([
    ['a TCP socket named for it', (_dir: string) => ['-l', `127.0.0.1:${20_000 + Math.floor(Math.random() * 30_000)}`, '--fdname=want.sock'], /is a inet stream socket.*not a Unix stream socket/],
    ['a datagram socket at its path', (dir: string) => ['--datagram', '-l', path.join(dir, 'want.sock')], /unix dgram socket.*not a Unix stream socket/],
    ['a socket at another path', (dir: string) => ['-l', path.join(dir, 'elsewhere.sock')], /not at the configured socketPath|no inherited socket is at this path/],
  ])('refuses %s with IPC_INHERITED_SOCKET', async (_what, args, message) => {
    const { dir, cleanup } = tempDir()
    defer(cleanup)
    const want = path.join(dir, 'want.sock')
    const activateArgs = args(dir)
    const run = activate(activateArgs, [want])
    // The activator prints where it listens; then one connection (or datagram) makes it exec.
    await until('the activator to listen', () => /Listening on/.test(run.err()))
    const at = /Listening on (\S+) as/.exec(run.err())![1]!
    if (activateArgs.includes('--datagram')) {
      // curl cannot send a datagram; Python (a C toolchain dependency of the addon build) can.
      spawnSync('python3', ['-c', `import socket;s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM);s.sendto(b'x','${at}')`])
    } else if (at.startsWith('/')) {
      void curl(at)
    } else {
      void new Promise((r) => spawn('curl', ['-sS', '--max-time', '5', `http://${at}/`]).once('exit', r))
    }
    await exited(run.child)
    expect(run.child.exitCode).toBe(3)
    expect(run.out()).toMatch(/^error IPC_INHERITED_SOCKET /m)
    expect(run.out()).toMatch(message)
    // Nothing bound on our own beside the activator's socket.
    if (!activateArgs.includes(want)) expect(existsSync(want)).toBe(false)
  })

  /** Wait for the activator, connect once so it execs the server, and return the server's first line. */
  async function firstLine(run: ReturnType<typeof activate>): Promise<string> {
    await until('the activator to listen', () => /Listening on/.test(run.err()))
    void curl(/Listening on (\S+) as/.exec(run.err())![1]!)
    await until('the server to answer or fail', () => /^(ready|error) /m.test(run.out()) || run.child.exitCode !== null)
    return run.out()
  }

  it.each([
    ['bound as <dir>/./other.sock', (dir: string) => ['-l', `${dir}/./other.sock`]],
    ['bound as <dir>/../evil.sock', (dir: string) => ['-l', `${dir}/../evil.sock`]],
    ['bound in a dot folder beside it, not the supervisor\'s private name', (dir: string) => (mkdirSync(path.join(dir, '.evil'), { mode: 0o700 }), ['-l', `${dir}/.evil/service.sock`])],
    ['bound in a private-name folder of another socket', (dir: string) => (mkdirSync(path.join(dir, '.other.sock.AbC123'), { mode: 0o700 }), ['-l', `${dir}/.other.sock.AbC123/s`])],
  ])('refuses a socket named service.sock by LISTEN_FDNAMES but %s, with IPC_INHERITED_SOCKET', async (_what, args) => {
    const top = kit.dir()
    const dir = path.join(top, 'run')
    mkdirSync(dir, { mode: 0o700 })
    const want = path.join(dir, 'service.sock')
    const run = activate([...args(dir), '--fdname=service.sock'], [want])
    const out = await firstLine(run)
    expect(out).toMatch(/^error IPC_INHERITED_SOCKET .*not at the configured socketPath/m)
    expect(out).not.toMatch(/^ready /m)
    await exited(run.child)
    expect(run.child.exitCode).toBe(3)
  })

  it('refuses a socket bound under a relative path (resolved against the activator\'s working folder, here a 1777 one) with IPC_INHERITED_SOCKET', async () => {
    // systemd-socket-activate refuses a relative -l; a minimal activator in Python binds one.
    const shared = kit.stickyFolder()
    const want = path.join(shared, 'service.sock')
    const activator = [
      'import os, socket, sys',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind("service.sock"); s.listen(16)',
      'fd = s.fileno()',
      'if fd != 3: os.dup2(fd, 3)',
      'os.set_inheritable(3, True)',
      'env = dict(os.environ, LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES="service.sock", NAACCORD_LOG_LEVEL="warn")',
      'os.execve(sys.argv[1], sys.argv[1:], env)',
    ].join('\n')
    const child = spawn('python3', ['-c', activator, process.execPath, SERVER, want], {
      cwd: shared,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    defer(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await exited(child)
      }
    })
    await until('the server to answer or fail', () => /^(ready|error) /m.test(out) || child.exitCode !== null)
    expect(out).toMatch(/^error IPC_INHERITED_SOCKET .*relative/m)
    await exited(child)
    expect(child.exitCode).toBe(3)
  })

  it('refuses a socket of the supervisor\'s private-name shape that is not the socket at socketPath (another inode) with IPC_INHERITED_SOCKET', async () => {
    const dir = kit.dir()
    const want = path.join(dir, 'service.sock')
    // Another listening socket stands at the path; the activator's is bound in a look-alike private folder.
    const other = net.createServer()
    await new Promise<void>((resolve) => other.listen(want, resolve))
    defer(() => new Promise((resolve) => other.close(resolve)))
    mkdirSync(path.join(dir, '.service.sock.AbC123'), { mode: 0o700 })
    const run = activate(['-l', path.join(dir, '.service.sock.AbC123', 's'), '--fdname=service.sock'], [want])
    const out = await firstLine(run)
    expect(out).toMatch(/^error IPC_INHERITED_SOCKET .*is another socket than the one inherited/m)
    await exited(run.child)
    expect(run.child.exitCode).toBe(3)
  })

  it('adopts a socket bound through a trusted symlink of its folder chain (as /var/run -> /run)', async () => {
    const dir = kit.dir()
    mkdirSync(path.join(dir, 'run'), { mode: 0o755 })
    symlinkSync('run', path.join(dir, 'var-run'))
    const sock = path.join(dir, 'run', 'service.sock')
    const run = activate(['-l', path.join(dir, 'var-run', 'service.sock')], [sock])
    const out = await firstLine(run)
    expect(out).toMatch(/^ready /m)
  })

  it('refuses an adopted socket whose mode (0666) is wider than socketMode with IPC_INHERITED_SOCKET naming the mode; socketMode 0666 accepts it by name', async () => {
    const dir = kit.dir()
    const sock = path.join(dir, 'service.sock')
    const run = activate(['-l', sock], [sock])
    await until('the activator to listen', () => existsSync(sock))
    chmodSync(sock, 0o666)
    const out = await firstLine(run)
    expect(out).toMatch(/^error IPC_INHERITED_SOCKET .*0o666/m)
    expect(out).toMatch(/SocketMode=/)
    await exited(run.child)
    expect(run.child.exitCode).toBe(3)

    const dir2 = kit.dir()
    const sock2 = path.join(dir2, 'service.sock')
    // systemd-socket-activate hands the app only LISTEN_* and what -E names.
    const ok = activate(['-l', sock2, '-E', 'NAACCORD_SOCKET_MODE=0666'], [sock2])
    await until('the activator to listen', () => existsSync(sock2))
    chmodSync(sock2, 0o666)
    const res = await curl(sock2)
    expect(res.code).toBe(0)
    expect(ok.out()).toMatch(/^ready /m)
  })
})
