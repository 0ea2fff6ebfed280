import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { peerPidfdAvailable } from '@naaccord/ipc-peercred'
import { serve, type IpcServer, type ServerOptions } from '@naaccord/ipc-server'
import { readProcessStartTime } from '@naaccord/ipc-shared'
import { deferCleanup, FIXTURES, isRoot, memoryLogger, rawGet, ROOT, runToEnd, tempDir, waitForLine } from './helpers.js'

// The pid-based facts of a peer (req.peer.startTime) are read only while a pidfd for the process
// that connected (SO_PEERPIDFD, Linux 6.5+) proves it alive: a process that has exited is
// reported gone, never as the process that got its pid. Where the kernel lacks SO_PEERPIDFD the
// start time is read by pid alone and req.peer.pidfd is false.

const defer = deferCleanup()
const pidfd = peerPidfdAvailable()
const hasUnshare = spawnSync('unshare', ['--version']).status === 0

async function start(handler: http.RequestListener, extra: ServerOptions = {}): Promise<IpcServer> {
  const t = tempDir()
  defer(t.cleanup)
  const uid = process.getuid?.() ?? 0
  const ipc = await serve(handler, { socketPath: path.join(t.dir, 's.sock'), logger: false, handleSignals: false, acknowledgePlaintextSocket: true, allow: { uids: [uid] }, ...extra })
  defer(() => ipc.close())
  return ipc
}

const openFds = () => readdirSync('/proc/self/fd').length

describe('peer facts through a pidfd', () => {
  it('says which mechanism ties the facts to the peer (req.peer.pidfd)', async () => {
    const ipc = await start((req, res) => res.end(JSON.stringify({ pidfd: req.peer?.pidfd, startTime: req.peer?.startTime, gone: req.peer?.gone })))
    const body = JSON.parse(await rawGet(ipc.socketPath!)) as Record<string, unknown>
    expect(body).toEqual({ pidfd, startTime: readProcessStartTime(process.pid), ...(pidfd ? { gone: false } : {}) })
  })

  it.skipIf(!pidfd)('reports a peer that exited before its facts were read as gone, not as the process holding its connection [needs SO_PEERPIDFD, Linux 6.5+]', async () => {
    let held!: (r: { req: IncomingMessage; res: ServerResponse }) => void
    const request = new Promise<{ req: IncomingMessage; res: ServerResponse }>((resolve) => (held = resolve))
    const ipc = await start((req, res) => held({ req, res }))
    const client = spawn(process.execPath, [path.join(FIXTURES, 'peer-exit-client.cjs'), ipc.socketPath!], { stdio: ['ignore', 'pipe', 'pipe'] })
    const clientExit = once(client, 'exit')
    const holder = Number((await waitForLine(client, 'holder')).split(' ')[1])
    defer(() => process.kill(holder, 'SIGKILL'))
    const { req, res } = await request
    defer(() => res.destroy())
    await clientExit // reaped: its pid is free
    expect(req.peer?.pid).toBe(client.pid)
    // The connection is alive (the holder has it); the process that made it is not.
    expect(req.socket.destroyed).toBe(false)
    expect({ pidfd: req.peer?.pidfd, gone: req.peer?.gone, startTime: req.peer?.startTime }).toEqual({ pidfd: true, gone: true, startTime: undefined })
  })

  it.skipIf(!pidfd || !isRoot || !hasUnshare)('detects a forced pid reuse (new pid namespace, ns_last_pid): the facts are never the new process [needs SO_PEERPIDFD, root and unshare --pid]', async () => {
    const run = spawn('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, '--import', 'tsx', '--conditions=@naaccord/source', path.join(FIXTURES, 'pid-reuse.ts')], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const { code, stdout, stderr } = await runToEnd(run, 30_000)
    expect(code, stderr).toBe(0)
    const line = stdout.split('\n').find((l) => l.startsWith('RESULT '))
    const result = JSON.parse(line!.slice('RESULT '.length)) as {
      victim: number
      reuserPid: number
      reuserStartTime: number
      byPidAlone: number
      peer: { pid: number; pidfd: boolean; startTime: number | null; gone: boolean | null }
    }
    // The pid was reused: another process runs under the first client's pid...
    expect(result.reuserPid).toBe(result.victim)
    // ...and the pid alone (the mechanism without pidfd) now describes that other process.
    expect(result.byPidAlone).toBe(result.reuserStartTime)
    // Through the pidfd, the first connection's peer is reported gone.
    expect(result.peer).toEqual({ pid: result.victim, pidfd: true, startTime: null, gone: true })
  })

  it.skipIf(!pidfd)('leaves no descriptor behind: the pidfd lives only for the read [needs SO_PEERPIDFD, Linux 6.5+]', async () => {
    const { logger } = memoryLogger()
    const ipc = await start((req, res) => res.end(String(req.peer?.startTime)))
    const refusing = await start(() => {}, { allow: { uids: [(process.getuid?.() ?? 0) + 12345] }, logger })
    // A refused connection is cut 1 s after its 403: wait that out before each count.
    const settled = () => new Promise((r) => setTimeout(r, 1200)).then(openFds)
    // Warm up (the first connection loads the addon and probes SO_PEERPIDFD), then count.
    await rawGet(ipc.socketPath!)
    await rawGet(refusing.socketPath!)
    const before = await settled()
    for (let i = 0; i < 300; i++) expect(await rawGet(ipc.socketPath!)).toBe(String(readProcessStartTime(process.pid)))
    for (let i = 0; i < 30; i++) await rawGet(refusing.socketPath!)
    expect(await settled()).toBe(before)
  })
})
