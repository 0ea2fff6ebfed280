import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import { createRequire } from 'node:module'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ENV, isIpcError, readProcessStartTime } from '@naaccord/ipc-shared'
import { assertPeerCredentialsAvailable, descriptorOf, getPeerCredentials, inspectSocketFd, peerCredentialsAvailable, peerPidfdAvailable } from './peer-credentials.js'

// How the facts were tied to the peer (SO_PEERPIDFD where the kernel has it); a live peer is never gone.
const mechanism = () => ({ pidfd: peerPidfdAvailable(), gone: peerPidfdAvailable() ? false : undefined })

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url))
const moduleUrl = new URL('./peer-credentials.ts', import.meta.url).href
// The file node-gyp-build picks: build/Release after a source build, else the prebuilt binary.
const builtAddon = createRequire(import.meta.url)('node-gyp-build').path(fileURLToPath(new URL('..', import.meta.url))) as string

const isRoot = process.getuid?.() === 0
const isLinux = process.platform === 'linux'
const canUnsharePid = isLinux && isRoot && spawnSync('unshare', ['--pid', '--fork', 'true']).status === 0

let dir: string
let sockets: net.Socket[]
let servers: net.Server[]
let children: ChildProcess[]

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'peercred-'))
  sockets = []
  servers = []
  children = []
})

afterEach(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  for (const socket of sockets) socket.destroy()
  await Promise.all(servers.filter((s) => s.listening).map((s) => new Promise((resolve) => s.close(resolve))))
  await fs.rm(dir, { recursive: true, force: true })
})

function track<T extends net.Socket>(socket: T): T {
  sockets.push(socket)
  return socket
}

async function listen<T extends net.Server>(server: T, socketPath: string): Promise<T> {
  servers.push(server)
  // For TLS, track the TLSSocket only: destroying the raw net.Socket under a server-side TLSSocket
  // and then the TLSSocket in the same tick crashes Node 20 (heap corruption in TLSWrap).
  if (server instanceof tls.Server) server.on('secureConnection', (socket: tls.TLSSocket) => track(socket))
  else server.on('connection', (socket: net.Socket) => track(socket))
  server.listen(socketPath)
  await once(server, 'listening')
  return server
}

/** Runs node with tsx in the repository root; resolves with exit code and output. */
async function runNode(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; command?: string[] } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const argv = [...(options.command ?? []), process.execPath, '--conditions=@naaccord/source', '--import', 'tsx', ...args]
  const [file, ...rest] = argv as [string, ...string[]]
  const child = spawn(file, rest, { cwd: repoRoot, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, stdout, stderr }
}

function expectUnavailable(fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    expect(isIpcError(err, 'IPC_PEER_CREDENTIALS_UNAVAILABLE')).toBe(true)
    return err as Error
  }
  throw new Error('expected IPC_PEER_CREDENTIALS_UNAVAILABLE, nothing was thrown')
}

describe.skipIf(!isLinux)('getPeerCredentials (Linux SO_PEERCRED)', () => {
  it('the addon builds and loads', () => {
    expect(peerCredentialsAvailable()).toEqual({ available: true })
    expect(() => assertPeerCredentialsAvailable()).not.toThrow()
  })

  it('reads this process on both ends of a plain Unix socket connection', async () => {
    const socketPath = path.join(dir, 's.sock')
    const server = await listen(net.createServer(), socketPath)
    const accepted = once(server, 'connection') as Promise<[net.Socket]>
    const client = track(net.connect(socketPath))
    await once(client, 'connect')
    const [serverSide] = await accepted

    const expected = {
      pid: process.pid,
      uid: process.getuid?.(),
      gid: process.getgid?.(),
      startTime: readProcessStartTime(process.pid),
      ...mechanism(),
    }
    expect(typeof expected.startTime).toBe('number')
    expect(getPeerCredentials(serverSide)).toEqual(expected)
    // The client side names the process that called listen(2): here, this one too.
    expect(getPeerCredentials(client)).toEqual(expected)
  })

  it.skipIf(!isRoot)('sees the uid, gid and pid of a child running as nobody (65534) [needs root to setuid]', async () => {
    await fs.chmod(dir, 0o711)
    const socketPath = path.join(dir, 's.sock')
    const server = await listen(net.createServer(), socketPath)
    await fs.chmod(socketPath, 0o666)

    const seen = new Promise<{ creds: ReturnType<typeof getPeerCredentials>; started: number | undefined }>(
      (resolve, reject) => {
        server.once('connection', (socket: net.Socket) => {
          try {
            const creds = getPeerCredentials(socket)
            resolve({ creds, started: readProcessStartTime(creds.pid) })
          } catch (err) {
            reject(err)
          }
          socket.end()
        })
      },
    )
    const script = `require('node:net').connect(${JSON.stringify(socketPath)}).on('error', (e) => { console.error(e); process.exit(2) }).resume()`
    const child = spawn(process.execPath, ['-e', script], { uid: 65534, gid: 65534, cwd: '/', stdio: ['ignore', 'ignore', 'pipe'] })
    children.push(child)
    let stderr = ''
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))

    const { creds, started } = await seen
    const [code] = await once(child, 'close')
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
    expect(creds).toEqual({ pid: child.pid, uid: 65534, gid: 65534, startTime: started, ...mechanism() })
    expect(typeof creds.startTime).toBe('number')
  })

  it('works on server and client TLSSockets, for tls.connect({ path }) and tls.connect({ socket })', async () => {
    const keyFile = path.join(dir, 'k')
    const certFile = path.join(dir, 'c')
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', keyFile, '-out', certFile],
      { stdio: 'ignore' },
    )
    const cert = readFileSync(certFile)
    const socketPath = path.join(dir, 's.sock')
    const server = await listen(tls.createServer({ key: readFileSync(keyFile), cert }), socketPath)
    const expected = {
      pid: process.pid,
      uid: process.getuid?.(),
      gid: process.getgid?.(),
      startTime: readProcessStartTime(process.pid),
      ...mechanism(),
    }

    const connectVariants: Array<() => tls.TLSSocket> = [
      () => tls.connect({ path: socketPath, ca: cert, servername: 'localhost' }),
      () => tls.connect({ socket: net.connect(socketPath), ca: cert, servername: 'localhost' }),
    ]
    for (const connect of connectVariants) {
      const raw = once(server, 'connection') as Promise<[net.Socket]>
      const secured = once(server, 'secureConnection') as Promise<[tls.TLSSocket]>
      const client = track(connect())
      await once(client, 'secureConnect')
      const [rawSide] = await raw
      const [serverSide] = await secured

      expect(serverSide).toBeInstanceOf(tls.TLSSocket)
      expect(getPeerCredentials(rawSide)).toEqual(expected)
      expect(getPeerCredentials(serverSide)).toEqual(expected)
      expect(getPeerCredentials(client)).toEqual(expected)
    }
  })

  it('throws IPC_PEER_CREDENTIALS_UNAVAILABLE for a destroyed socket', async () => {
    const socketPath = path.join(dir, 's.sock')
    await listen(net.createServer(), socketPath)
    const client = track(net.connect(socketPath))
    await once(client, 'connect')
    client.destroy()
    const err = expectUnavailable(() => getPeerCredentials(client))
    expect(err.message).toMatch(/destroyed/)
  })

  it('throws IPC_PEER_CREDENTIALS_UNAVAILABLE with cause ENOTCONN for a TCP socket, which has no peer credentials', async () => {
    const server = net.createServer()
    servers.push(server)
    server.on('connection', (socket: net.Socket) => track(socket))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as net.AddressInfo
    const client = track(net.connect(port, '127.0.0.1'))
    await once(client, 'connect')
    const err = expectUnavailable(() => getPeerCredentials(client))
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ENOTCONN')
  })

  it.skipIf(!canUnsharePid)(
    'reports pid -1 and no startTime for a listener in a pid namespace the client cannot see [needs root and unshare --pid]',
    async () => {
      const socketPath = path.join(dir, 's.sock')
      await listen(net.createServer(), socketPath)
      const script = `
        import net from 'node:net'
        const { getPeerCredentials } = await import(${JSON.stringify(moduleUrl)})
        const socket = net.connect(${JSON.stringify(socketPath)}, () => {
          console.log(JSON.stringify(getPeerCredentials(socket) ?? null, (k, v) => (v === undefined ? 'undefined' : v)))
          socket.destroy()
        })`
      const result = await runNode(['--input-type=module', '-e', script], { command: ['unshare', '--pid', '--fork'] })
      expect(result).toMatchObject({ code: 0, stderr: '' })
      expect(JSON.parse(result.stdout)).toEqual({
        pid: -1,
        uid: process.getuid?.(),
        gid: process.getgid?.(),
        startTime: 'undefined',
        pidfd: peerPidfdAvailable(),
        gone: 'undefined',
      })
    },
  )
})

describe.skipIf(!isLinux)('inspectSocketFd: the file a socket is bound to', () => {
  it('names the inode of the socket file, which follows the file through link(2) and unlink(2) of the bound name, and not another socket', async () => {
    const sub = path.join(dir, 'p')
    await fs.mkdir(sub)
    const bound = path.join(sub, 's')
    const server = net.createServer()
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(bound, resolve))
    const published = path.join(dir, 'service.sock')
    await fs.link(bound, published)
    await fs.unlink(bound)
    const facts = inspectSocketFd(descriptorOf(server)!)
    expect(facts.path).toBe(bound) // getsockname keeps the name it was bound to
    const st = await fs.lstat(published)
    expect(facts.file).toEqual({ dev: st.dev, ino: st.ino % 2 ** 32 })
    const other = net.createServer()
    servers.push(other)
    const otherPath = path.join(dir, 'other.sock')
    await new Promise<void>((resolve) => other.listen(otherPath, resolve))
    expect(inspectSocketFd(descriptorOf(other)!).file?.ino).toBe((await fs.lstat(otherPath)).ino % 2 ** 32)
    expect(inspectSocketFd(descriptorOf(other)!).file?.ino).not.toBe(facts.file?.ino)
  })
})

describe(`${ENV.peerAddon} (explicit addon path, in a child process: the loader caches)`, () => {
  const script = `
    import net from 'node:net'
    const m = await import(${JSON.stringify(moduleUrl)})
    const codeOf = (fn) => { try { fn(); return null } catch (err) { return { code: err.code, message: err.message } } }
    console.log(JSON.stringify({
      status: m.peerCredentialsAvailable(),
      assert: codeOf(() => m.assertPeerCredentialsAvailable()),
      get: codeOf(() => m.getPeerCredentials(new net.Socket())),
    }))`

  it('pointing at a missing file: unavailable, and assert/get throw IPC_PEER_CREDENTIALS_UNAVAILABLE', async () => {
    const missing = path.join(dir, 'missing', 'peercred.node')
    const result = await runNode(['--input-type=module', '-e', script], {
      env: { ...process.env, [ENV.peerAddon]: missing },
    })
    expect(result).toMatchObject({ code: 0, stderr: '' })
    const out = JSON.parse(result.stdout)
    expect(out.status.available).toBe(false)
    expect(out.status.reason).toContain(missing)
    expect(out.assert.code).toBe('IPC_PEER_CREDENTIALS_UNAVAILABLE')
    expect(out.assert.message).toContain(missing)
    expect(out.assert.message).toContain('allow: false')
    expect(out.get.code).toBe('IPC_PEER_CREDENTIALS_UNAVAILABLE')
  })

  it('pointing at a file that is not a .node addon: unavailable, the file is not run', async () => {
    const js = path.join(dir, 'evil.js')
    await fs.writeFile(js, 'console.log("ran")\nmodule.exports = { getPeerCredentials() {}, support: { supported: true } }\n')
    const result = await runNode(['--input-type=module', '-e', script], { env: { ...process.env, [ENV.peerAddon]: js } })
    expect(result).toMatchObject({ code: 0, stderr: '' })
    expect(result.stdout).not.toContain('ran\n')
    expect(JSON.parse(result.stdout).assert.code).toBe('IPC_PEER_CREDENTIALS_UNAVAILABLE')
  })

  it.skipIf(!isLinux)('pointing at the built addon: available', async () => {
    const result = await runNode(['--input-type=module', '-e', script], { env: { ...process.env, [ENV.peerAddon]: builtAddon } })
    expect(result).toMatchObject({ code: 0, stderr: '' })
    const out = JSON.parse(result.stdout)
    expect(out.status).toEqual({ available: true })
    expect(out.assert).toBeNull()
    // A socket that never connected has no fd: still refused, for that reason.
    expect(out.get.code).toBe('IPC_PEER_CREDENTIALS_UNAVAILABLE')
  })
})
