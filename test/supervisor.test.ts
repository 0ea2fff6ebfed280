// `naaccord-ipc run`: the supervisor holds the socket and runs the app with it as fd 3. Real
// processes throughout: the CLI from source, the app as a separate Node process, our client.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { createClient, type IpcClient } from '@naaccord/ipc-client'
import { deferCleanup, exited, FIXTURES, isRoot, ROOT, runToEnd, socketTestKit, tempDir } from './helpers.js'
import { sourceBundle } from './source-bundle.js'
import { waitUntil } from './wait.js'

const defer = deferCleanup()
const kit = socketTestKit(defer, 'nipc-sup-')
// The CLI and the app from source, bundled once (test/source-bundle.ts): a process each start
// costs plain `node`, not tsx (this file starts about forty).
const CLI = sourceBundle(path.join(ROOT, 'packages', 'cli', 'src', 'cli.ts'))
const APP = sourceBundle(path.join(FIXTURES, 'supervised-app.ts'))

interface Run {
  child: ChildProcess
  sock: string
  dir: string
  log: () => string
  client: IpcClient
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NAACCORD_LOG_LEVEL: 'info', ...env } })
}

const until = (what: string, cond: () => boolean, ms = 20_000) => waitUntil(what, cond, { timeoutMs: ms, everyMs: 20 })

const count = (text: string, msg: string) => text.split('\n').filter((l) => l.includes(`"msg":"${msg}"`)).length

async function startSupervisor(extra: string[] = []): Promise<Run> {
  const { dir, cleanup } = tempDir()
  const sock = path.join(dir, 'run', 'svc.sock')
  const child = cli(['run', '--socket', sock, '--restart-delay', '50', ...extra, '--', process.execPath, APP], {
    ORDERS_FILE: path.join(dir, 'orders'),
    FAIL_FILE: path.join(dir, 'fail'),
  })
  let log = ''
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()))
  const client = createClient({ socketPath: sock, logger: false, retries: 0 })
  defer(async () => {
    await client.destroy()
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await Promise.race([exited(child), new Promise((r) => setTimeout(r, 5000))])
      if (child.exitCode === null) child.kill('SIGKILL')
    }
    cleanup()
  })
  await until('the app to be ready', () => count(log, 'app ready') === 1 || child.exitCode !== null)
  expect(child.exitCode).toBeNull()
  return { child, sock, dir, log: () => log, client }
}

describe('naaccord-ipc run (the socket-holding supervisor)', () => {
  it('holds the socket (mode 0600, lock, pid file) and hands it to the app as fd 3 with exact LISTEN_* semantics', async () => {
    const run = await startSupervisor()
    expect(statSync(run.sock).mode & 0o777).toBe(0o600)
    expect(existsSync(`${run.sock}.lock`)).toBe(true)
    const pidFile = JSON.parse(readFileSync(`${run.sock}.pid`, 'utf8')) as { pid: number }
    expect(pidFile.pid).toBe(run.child.pid)
    const body = await run.client.get<{ pid: number; listenEnv: string[] }>('/pid')
    expect(body.pid).not.toBe(run.child.pid)
    expect(body.listenEnv).toEqual([]) // serve() consumed and removed them
  })

  it('SIGHUP reloads with overlap: a slow request to the old app finishes, and callers with retries: 0 see no failure across 3 reloads', async () => {
    const run = await startSupervisor()
    const first = (await run.client.get<{ pid: number }>('/pid')).pid
    const slow = run.client.get<{ pid: number }>('/slow?ms=1500')
    let stop = false
    defer(() => (stop = true)) // a test that fails midway must not leave the loop spinning on a destroyed client
    let ok = 0
    const failures: string[] = []
    const loop = (async () => {
      // One fresh connection per request (Connection: close): each lands in the socket's backlog.
      while (!stop) {
        try {
          await run.client.get('/pid', { headers: { connection: 'close' } })
          ok++
        } catch (err) {
          failures.push(String(err))
        }
      }
    })()
    for (let i = 1; i <= 3; i++) {
      run.child.kill('SIGHUP')
      await until(`reload ${i}`, () => count(run.log(), 'reloaded') === i)
    }
    stop = true
    await loop
    expect((await slow).pid).toBe(first) // the old app drained it, not cut
    expect(failures).toEqual([])
    expect(ok).toBeGreaterThan(10)
    const now = (await run.client.get<{ pid: number }>('/pid')).pid
    expect(now).not.toBe(first)
  })

  it('a reload whose new app fails to start keeps the old one serving', async () => {
    const run = await startSupervisor()
    const before = (await run.client.get<{ pid: number }>('/pid')).pid
    writeFileSync(path.join(run.dir, 'fail'), '')
    run.child.kill('SIGHUP')
    await until('the failed reload', () => count(run.log(), 'reload failed: the new app did not become ready; the old one keeps serving') === 1)
    expect((await run.client.get<{ pid: number }>('/pid')).pid).toBe(before)
  })

  it('a crashed app is restarted; a request sent while none runs waits in the backlog and is served', async () => {
    const run = await startSupervisor()
    const before = (await run.client.get<{ pid: number }>('/pid')).pid
    process.kill(before, 'SIGKILL')
    await until('the crash to be seen', () => count(run.log(), 'app exited unexpectedly') === 1)
    const during = await run.client.get<{ pid: number }>('/pid', { timeoutMs: 20_000 })
    expect(during.pid).not.toBe(before)
    // The new app may answer the queued request before its ready message reaches the supervisor.
    await until('the restart to be logged', () => count(run.log(), 'app restarted and ready') === 1)
    expect(count(run.log(), 'app exited unexpectedly')).toBe(1)
  })

  it('SIGTERM stops the app, then removes the socket, lock and pid file; exit code 0', async () => {
    const run = await startSupervisor()
    const app = (await run.client.get<{ pid: number }>('/pid')).pid
    run.child.kill('SIGTERM')
    await exited(run.child)
    expect(run.child.exitCode).toBe(0)
    expect(() => process.kill(app, 0)).toThrow()
    expect(readdirSync(path.dirname(run.sock))).toEqual([])
  })

  it('naaccord-ipc reload signals the supervisor from its pid file; without one it fails with IPC_SUPERVISOR', async () => {
    const run = await startSupervisor()
    const r = await runToEnd(cli(['reload', '--socket', run.sock]))
    expect(r.code).toBe(0)
    await until('the reload', () => count(run.log(), 'reloaded') === 1)
    const { dir, cleanup } = tempDir()
    defer(cleanup)
    const none = await runToEnd(cli(['reload', '--socket', path.join(dir, 'none.sock')]))
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/IPC_SUPERVISOR: cannot read the supervisor pid file/)
  })

  it('run without an app command fails with IPC_SUPERVISOR', async () => {
    const { dir, cleanup } = tempDir()
    defer(cleanup)
    const r = await runToEnd(cli(['run', '--socket', path.join(dir, 's.sock')]))
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/IPC_SUPERVISOR: no app command/)
  })
})

/** A process to aim a forged pid file at: a `sleep` of ours, killed at clean-up. */
function victim(): ChildProcess {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' })
  defer(async () => {
    child.kill('SIGKILL')
    await exited(child)
  })
  return child
}

/** The record a supervisor writes, copied for another pid: start time from the world-readable /proc/<pid>/stat. */
function forgedRecord(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const startTime = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
  return JSON.stringify({ pid, startTime })
}

/** Still running, not ended by a signal: given a moment for a signal to land. */
async function stillAlive(child: ChildProcess): Promise<boolean> {
  await sleep(300)
  return child.exitCode === null && child.signalCode === null
}

describe('naaccord-ipc reload signals nothing but our supervisor', () => {
  it.skipIf(!isRoot)('a pid file forged by uid 65534 in a shared 1777 folder, naming a root process, is refused with IPC_UNSAFE_PATH (flag and env); the process lives', async () => {
    const shared = kit.stickyFolder()
    const target = victim()
    const forged = path.join(shared, 'svc.sock.pid')
    const writer = kit.foreignScript(`import { writeFileSync } from 'node:fs'\nwriteFileSync(process.argv[2], process.argv[3])\n`)
    const nobody = kit.runAsNobody(writer, [forged, forgedRecord(target.pid!)])
    await exited(nobody)
    expect(statSync(forged).uid).toBe(65534)
    const byFlag = await runToEnd(cli(['reload', '--pid-file', forged]))
    expect(byFlag.code).toBe(2)
    expect(byFlag.stderr).toMatch(/IPC_UNSAFE_PATH/)
    expect(byFlag.stderr).toContain(shared)
    const byEnv = await runToEnd(cli(['reload'], { NAACCORD_PID_FILE: forged }))
    expect(byEnv.code).toBe(2)
    expect(byEnv.stderr).toMatch(/IPC_UNSAFE_PATH/)
    expect(await stillAlive(target)).toBe(true)
  })

  it('a pid file of ours naming a process that does not hold the socket lock is refused with IPC_SUPERVISOR; neither it nor the supervisor is signalled', async () => {
    const run = await startSupervisor()
    const target = victim()
    writeFileSync(`${run.sock}.pid`, forgedRecord(target.pid!))
    const r = await runToEnd(cli(['reload', '--socket', run.sock]))
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/IPC_SUPERVISOR/)
    expect(r.stderr).toContain(`pid ${target.pid}`)
    expect(r.stderr).toContain(`pid ${run.child.pid}`) // the lock's real holder, named for the operator
    expect(await stillAlive(target)).toBe(true)
    expect(count(run.log(), 'reload: new app starting')).toBe(0)
  })

  it('a pid file naming a process when no supervisor runs on the socket is refused with IPC_SUPERVISOR', async () => {
    const dir = kit.dir()
    const target = victim()
    const pidFile = path.join(dir, 'svc.sock.pid')
    writeFileSync(pidFile, forgedRecord(target.pid!))
    const r = await runToEnd(cli(['reload', '--socket', path.join(dir, 'svc.sock')]))
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/IPC_SUPERVISOR/)
    expect(await stillAlive(target)).toBe(true)
  })

  it('run refuses a pid file in a shared 1777 folder with IPC_UNSAFE_PATH, and writes nothing there', async () => {
    const shared = kit.stickyFolder()
    const dir = kit.dir()
    const pidFile = path.join(shared, 'svc.pid')
    const r = await runToEnd(cli(['run', '--socket', path.join(dir, 'run', 'svc.sock'), '--pid-file', pidFile, '--', process.execPath, '-e', 'setTimeout(() => {}, 60000)']))
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/IPC_UNSAFE_PATH/)
    expect(readdirSync(shared)).toEqual([])
    expect(readdirSync(path.join(dir, 'run'))).toEqual([]) // the socket and lock were given back
  })
})

describe('naaccord-ipc run: a signal while the first app starts', () => {
  it.each(['SIGTERM', 'SIGHUP'] as const)('%s before the app is ready: no orphaned app, nothing left behind; SIGTERM stops cleanly (exit 0) once the start is over', async (signal) => {
    const { dir, cleanup } = tempDir()
    defer(cleanup)
    const sock = path.join(dir, 'run', 'svc.sock')
    // The app through tsx, as a user runs it from source: its start (about 0.5 s) is the window the signal lands in.
    const child = cli(['run', '--socket', sock, '--', process.execPath, '--import', 'tsx', '--conditions=@naaccord/source', path.join(FIXTURES, 'supervised-app.ts')], { ORDERS_FILE: path.join(dir, 'orders'), FAIL_FILE: path.join(dir, 'fail') })
    let log = ''
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()))
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()))
    defer(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited(child)
    })
    await until('the supervisor to hold the socket', () => log.includes('supervisor holds the socket'))
    expect(count(log, 'app ready')).toBe(0)
    child.kill(signal)
    if (signal === 'SIGHUP') {
      // Not killed by it: the supervisor finishes starting its app, then serves.
      await until('the app to be ready', () => count(log, 'app ready') === 1 || child.exitCode !== null)
      expect(child.signalCode).toBeNull()
      child.kill('SIGTERM')
    }
    await exited(child)
    expect(child.signalCode, log).toBeNull()
    expect(child.exitCode).toBe(0)
    expect(readdirSync(path.dirname(sock))).toEqual([])
  })
})
