import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { acquireSocketLock, bindSocket, clearStaleSocket, ensureSocketFolder, lockPathFor, readLockOwner, serve, unlinkIfOurs } from '@naaccord/ipc-server'
import { deferCleanup, exited, memoryLogger, runToEnd, spawnTs, waitForLine, socketTestKit, rawGet } from './helpers.js'
import { bundleFixture, spawnBundle } from './bundle.js'

const ok = (_req: unknown, res: import('node:http').ServerResponse) => res.end('ok')
const defer = deferCleanup()
const { dir } = socketTestKit(defer)
const quiet = memoryLogger().logger

// Dozens of server processes: bundled once, each starts in about 0.1 s instead of tsx's 0.5 s.
let killPoint: Awaited<ReturnType<typeof bundleFixture>>
let racer: Awaited<ReturnType<typeof bundleFixture>>
beforeAll(async () => {
  ;[killPoint, racer] = await Promise.all([bundleFixture('kill-point.ts'), bundleFixture('racer.ts')])
})
afterAll(() => {
  killPoint?.cleanup()
  racer?.cleanup()
})



/** Run `fn` over `items` with at most `limit` at once. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++
        results[i] = await fn(items[i]!)
      }
    }),
  )
  return results
}

describe('the lock is released by the kernel', () => {
  it('a lock file left by a SIGKILLed holder is taken at once; one held by a live process is refused with its pid', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    const child = spawnTs('server.ts', [socketPath])
    const pid = Number((await waitForLine(child, 'ready')).split(' ')[1])
    expect(readLockOwner(socketPath)?.pid).toBe(pid)
    await expect(acquireSocketLock(socketPath, quiet)).rejects.toMatchObject({ code: 'IPC_SOCKET_IN_USE', pid })
    child.kill('SIGKILL')
    await exited(child)
    expect(fs.existsSync(lockPathFor(socketPath))).toBe(true) // the file stays; the lock does not
    const t0 = Date.now()
    const ipc = await serve(ok, { socketPath, logger: false, handleSignals: false })
    expect(Date.now() - t0).toBeLessThan(1000)
    expect(readLockOwner(socketPath)?.pid).toBe(process.pid)
    await ipc.close()
    expect(fs.readdirSync(d)).toEqual([])
  })

  it('a zombie holder (killed, never reaped by its parent) holds nothing: the next start is at once', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    // sh starts the server in the background, then becomes `sleep`, which never reaps it.
    const parent = spawn('sh', ['-c', `"${process.execPath}" "${racer.script}" "${socketPath}" start & exec sleep 20`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...racer.env },
    })
    defer(async () => {
      parent.kill('SIGKILL')
      await exited(parent)
    })
    const pid = Number((await waitForLine(parent, 'won')).split(' ')[1])
    process.kill(pid, 'SIGKILL')
    const deadline = Date.now() + 5000
    while (!/^\d+ \(.*\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))) {
      if (Date.now() > deadline) throw new Error(`server ${pid} did not become a zombie`)
      await new Promise((r) => setTimeout(r, 10))
    }
    const t0 = Date.now()
    const ipc = await serve(ok, { socketPath, logger: false, handleSignals: false })
    expect(Date.now() - t0).toBeLessThan(1000)
    expect(fs.existsSync(`/proc/${pid}`)).toBe(true) // still a zombie while we serve
    await ipc.close()
  })

  it("a child process the server started does not keep the server's lock after the server dies", async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    const server = spawnBundle(racer, [socketPath], { stdio: ['pipe', 'pipe', 'pipe'] })
    await waitForLine(server, 'loaded')
    server.stdin!.write('start\n')
    await waitForLine(server, 'won')
    server.stdin!.write('spawn\n')
    const sleeper = Number((await waitForLine(server, 'spawned')).split(' ')[1])
    defer(() => process.kill(sleeper, 'SIGKILL'))
    server.kill('SIGKILL')
    await exited(server)
    process.kill(sleeper, 0) // the child lives on
    const ipc = await serve(ok, { socketPath, logger: false, handleSignals: false })
    await ipc.close()
  })

  it('release is idempotent and removes only the lock file it locked', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    const first = await acquireSocketLock(socketPath, quiet)
    // Someone replaced the lock file meanwhile (by hand): ours is gone, theirs must stay.
    fs.renameSync(lockPathFor(socketPath), path.join(d, 'old'))
    fs.writeFileSync(lockPathFor(socketPath), 'theirs')
    await first.release()
    await first.release()
    expect(fs.readFileSync(lockPathFor(socketPath), 'utf8')).toBe('theirs')
  })

  it('stop accepting, unlink and release before draining: a successor starts at once, and the old server closing later leaves its socket alone', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    // The old server, built from the exported steps on a plain net.Server (as close() will use them).
    const realDir = await ensureSocketFolder(socketPath, 0o700, undefined)
    const fsPath = path.join(realDir, 's.sock')
    const lock = await acquireSocketLock(fsPath, quiet)
    await clearStaleSocket(fsPath, quiet)
    const old = net.createServer((c) => c.on('data', (b) => c.write(b)))
    const bound = await bindSocket(old, fsPath, 0o600, undefined)
    const conn = net.connect(socketPath)
    await new Promise((r) => conn.once('connect', r))
    // Shutdown, in the order that lets a successor start while connections drain.
    const oldClosed = new Promise((r) => old.close(r))
    expect(await unlinkIfOurs(fsPath, bound.ino)).toBe(true)
    await lock.release()
    await lock.release() // idempotent
    const t0 = Date.now()
    const next = await serve(ok, { socketPath, logger: false, handleSignals: false })
    defer(() => next.close())
    expect(Date.now() - t0).toBeLessThan(1000)
    // The old connection still works while the successor serves.
    conn.write('still here')
    expect(String(await new Promise((r) => conn.once('data', r)))).toBe('still here')
    expect(await unlinkIfOurs(fsPath, bound.ino)).toBe(false) // not ours any more: left alone
    conn.destroy()
    await oldClosed
    expect(await rawGet(socketPath)).toBe('ok')
    expect(fs.readdirSync(d).sort()).toEqual(['s.sock', 's.sock.lock'])
  })
})

describe('SIGKILL at every step of serve() and of close()', () => {
  it('the next start succeeds within 1 s, with no stray folder, socket or lock', { timeout: 60_000 }, async () => {
    const root = dir()
    const steps: Record<string, number> = {}
    for (const phase of ['start', 'close'] as const) {
      const probe = await runToEnd(spawnBundle(killPoint, [path.join(root, `count-${phase}`, 's.sock'), phase, '0']))
      steps[phase] = Number(/steps (\d+)/.exec(probe.stdout)?.[1])
      expect(steps[phase]).toBeGreaterThan(phase === 'start' ? 20 : 3)
    }
    // Kill points: right before every step (k odd) and right after the last one. Right after step
    // i leaves the same state as right before step i + 1 (every call that changes a file, a lock or
    // a listener is a step), so these are all the states start-up passes through; close() is short
    // enough to kill both before and after each step.
    const points = [
      ...Array.from({ length: steps.start! }, (_, i) => ({ phase: 'start' as const, k: 2 * i + 1 })),
      { phase: 'start' as const, k: 2 * steps.start! },
      ...Array.from({ length: 2 * steps.close! }, (_, i) => ({ phase: 'close' as const, k: i + 1 })),
    ]
    // First every kill (four processes at a time, each in its own folder: what a killed process
    // leaves on disk does not change afterwards), then every next start, one at a time, timed alone.
    const killed = await pool(points, 4, async ({ phase, k }) => {
      const folder = path.join(root, `${phase}-${k}`, 'run')
      const child = spawnBundle(killPoint, [path.join(folder, 's.sock'), phase, String(k)])
      const run = await runToEnd(child)
      expect(child.signalCode, `${phase} point ${k}: ${run.stdout}${run.stderr}`).toBe('SIGKILL')
      return { phase, k, folder }
    })
    const outcomes = []
    for (const { phase, k, folder } of killed) {
      const socketPath = path.join(folder, 's.sock')
      const t0 = Date.now()
      const ipc = await serve(ok, { socketPath, logger: false, handleSignals: false }).catch((e: unknown) => e as Error)
      const ms = Date.now() - t0
      if (ipc instanceof Error) {
        outcomes.push({ phase, k, ms, error: `${(ipc as { code?: string }).code} ${ipc.message}` })
        continue
      }
      const running = fs.readdirSync(folder).sort()
      const answer = await rawGet(socketPath)
      await ipc.close()
      outcomes.push({ phase, k, ms, running, answer, after: fs.readdirSync(folder) })
    }
    console.log(`kill points: ${steps.start} steps of serve(), ${steps.close} of close(); ${outcomes.length} kills; slowest next start ${Math.max(...outcomes.map((o) => o.ms))} ms`)
    for (const o of outcomes) {
      expect(o, `${o.phase} point ${o.k}`).toMatchObject({ running: ['s.sock', 's.sock.lock'], answer: 'ok', after: [] })
      expect(o.ms, `${o.phase} point ${o.k}`).toBeLessThan(1000)
    }
    expect(outcomes.length).toBeGreaterThanOrEqual(35)
  })
})

describe('start races: ten processes on one path', () => {
  it('exactly one winner, its lock intact, every loser an IpcError with a code: clean path and crashed leftovers', { timeout: 60_000 }, async () => {
    // The socket's folder does not exist yet: the first round also races to create it.
    const d = path.join(dir(), 'run')
    const socketPath = path.join(d, 's.sock')
    const racers: ChildProcess[] = []
    const lines = new Map<ChildProcess, string[]>()
    const spawnRacer = async () => {
      const child = spawnBundle(racer, [socketPath], { stdio: ['pipe', 'pipe', 'pipe'] })
      defer(async () => {
        child.kill('SIGKILL')
        await exited(child)
      })
      lines.set(child, [])
      let buf = ''
      child.stdout!.on('data', (c: Buffer) => {
        buf += c.toString()
        const parts = buf.split('\n')
        buf = parts.pop()!
        lines.get(child)!.push(...parts)
      })
      await waitForLine(child, 'loaded')
      return child
    }
    const nextLine = async (child: ChildProcess, prefix: RegExp): Promise<string> => {
      const deadline = Date.now() + 15_000
      for (;;) {
        const list = lines.get(child)!
        const i = list.findIndex((l) => prefix.test(l))
        if (i >= 0) return list.splice(i, 1)[0]!
        if (Date.now() > deadline) throw new Error(`no ${prefix} from racer ${child.pid}: ${list.join(' | ')}`)
        await new Promise((r) => setTimeout(r, 10))
      }
    }
    racers.push(...(await Promise.all(Array.from({ length: 10 }, spawnRacer))))

    const round = async (kind: string) => {
      for (const r of racers) r.stdin!.write('start\n')
      const results = await Promise.all(racers.map((r) => nextLine(r, /^(won|lost) /)))
      const winners = racers.filter((_, i) => results[i]!.startsWith('won'))
      const losers = results.filter((l) => l.startsWith('lost'))
      expect(winners, `${kind}: ${results.join(' | ')}`).toHaveLength(1)
      // Never a false alarm about the folder the racers create together: they lose on the lock.
      for (const l of losers) expect(l, kind).toMatch(/^lost IPC_SOCKET_IN_USE /)
      const winner = winners[0]!
      // Its lock is intact: the file names it, and nobody can take the lock from it.
      expect(readLockOwner(socketPath)?.pid, kind).toBe(winner.pid)
      await expect(acquireSocketLock(socketPath, quiet)).rejects.toMatchObject({ code: 'IPC_SOCKET_IN_USE', pid: winner.pid })
      expect(await rawGet(socketPath), kind).toBe(String(winner.pid))
      return winner
    }

    for (let i = 0; i < 5; i++) {
      const winner = await round(`clean round ${i}`)
      winner.stdin!.write('close\n')
      await nextLine(winner, /^closed/)
      expect(fs.readdirSync(d)).toEqual([])
      fs.rmdirSync(d) // every clean round races on creating the folder too
    }
    for (let i = 0; i < 5; i++) {
      const winner = await round(`crashed round ${i}`)
      winner.kill('SIGKILL')
      await exited(winner)
      expect(fs.readdirSync(d).sort()).toEqual(['s.sock', 's.sock.lock']) // a crash's leftovers
      racers.splice(racers.indexOf(winner), 1, await spawnRacer())
    }
    const last = await round('after the last crash')
    last.stdin!.write('close\n')
    await nextLine(last, /^closed/)
  })
})
