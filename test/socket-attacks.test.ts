import { execFileSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serve, type IpcServer } from '@naaccord/ipc-server'
import { bundleFixture, spawnBundle } from './bundle.js'
import { deferCleanup, exited, isRoot, NOBODY, runToEnd, tempDir, waitForLine, socketTestKit, failure, rawGet } from './helpers.js'

// Attacks on the socket's folder chain, lock and bind, by another user (uid 65534) against a
// root server, in folders the tests make: a 1777 sticky folder inside a temp folder, never /tmp
// itself. Every attacker is a plain .mjs script in a 0711 folder, bounded in time.

const ok = (_req: unknown, res: import('node:http').ServerResponse) => res.end('ok')
const defer = deferCleanup()
const { dir, stickyFolder, foreignScript, runAsNobody } = socketTestKit(defer, 'nipc-atk-')
const NEEDS_ROOT = 'needs root: the attacker runs as uid 65534'


async function start(socketPath: string, extra: Parameters<typeof serve>[1] = {}): Promise<IpcServer> {
  const ipc = await serve(ok, { socketPath, logger: false, handleSignals: false, ...extra })
  defer(() => ipc.close())
  return ipc
}






describe('the socket folder is checked as the socket folder, however the walk reaches it', () => {
  it('a link of our own ending in "." or ".." does not make a sticky shared folder the socket folder', async () => {
    const t = stickyFolder()
    fs.symlinkSync('.', path.join(t, 'here'))
    fs.mkdirSync(path.join(t, 'sub'), { mode: 0o755 })
    fs.symlinkSync('sub/..', path.join(t, 'back'))
    fs.symlinkSync('..', path.join(t, 'sub', 'up'))
    for (const via of ['here', 'back', 'sub/up']) {
      const err = await failure(start(path.join(t, via, 's.sock')))
      expect(err.code, via).toBe('IPC_UNSAFE_SOCKET_PATH')
      expect(err.message).toContain(`${t}: is writable by others`)
    }
    expect(fs.readdirSync(t).sort()).toEqual(['back', 'here', 'sub'])
  })

  it.skipIf(!isRoot)(`another user squatting the sticky folder reached through such a link cannot take the path over (${NEEDS_ROOT})`, async () => {
    const t = stickyFolder()
    fs.symlinkSync('.', path.join(t, 'here'))
    // uid 65534 plants the lock file, so a root server that took <sticky> as its folder is locked out.
    const planter = foreignScript(`import fs from 'node:fs'; fs.writeFileSync(process.argv[2], ''); console.log('planted')`)
    await waitForLine(runAsNobody(planter, [path.join(t, 's.sock.lock')]), 'planted')
    const err = await failure(start(path.join(t, 'here', 's.sock')))
    expect(err.code).toBe('IPC_UNSAFE_SOCKET_PATH')
    expect(err.message).toContain(`${t}: is writable by others`)
  })
})

/** A small tmpfs (a filesystem of its own that another user can fill) as a 1777 folder, inside a 0711 temp folder. */
function smallTmpfs(options: string): string | undefined {
  const d = dir()
  fs.chmodSync(d, 0o711)
  const mnt = path.join(d, 'mnt')
  fs.mkdirSync(mnt)
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `${options},mode=1777`, 'tmpfs', mnt], { stdio: 'ignore' })
  } catch {
    return undefined
  }
  defer(() => execFileSync('umount', ['-l', mnt], { stdio: 'ignore' }))
  return mnt
}

const canMount = isRoot && (() => {
  const t = tempDir('nipc-atk-probe-')
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', t.dir], { stdio: 'ignore' })
    execFileSync('umount', [t.dir], { stdio: 'ignore' })
    return true
  } catch {
    return false
  } finally {
    t.cleanup()
  }
})()

describe('another user filling the filesystem', () => {
  it.skipIf(!canMount)('every step that runs out of inodes is an IpcError naming ENOSPC, leaves nothing of ours behind, and the next start works (needs root and mount)', async () => {
    const mnt = smallTmpfs('size=1m,nr_inodes=64')!
    // uid 65534 takes every free inode in the shared folder.
    const filler = foreignScript(`
      import fs from 'node:fs'; let i = 0
      try { for (;;) fs.writeFileSync(process.argv[2] + '/f' + i++, '') } catch (e) { console.log('full ' + e.code + ' ' + (i - 1)) }
    `)
    const line = await waitForLine(runAsNobody(filler, [mnt]), 'full')
    expect(line).toMatch(/^full ENOSPC \d+/)
    const theirs = fs.readdirSync(mnt).filter((n) => n.startsWith('f'))
    const outcomes: string[] = []
    for (let free = 0; free <= 5; free++) {
      // `free` inodes are free: one more each round (root removes one of the filler's files).
      const socketPath = path.join(mnt, 'app', 's.sock')
      const started = await serve(ok, { socketPath, logger: false, handleSignals: false }).catch((e: { code?: string; message: string }) => e)
      if ('close' in started) {
        expect(await rawGet(socketPath)).toBe('ok')
        await started.close()
        outcomes.push(`${free}:started`)
      } else {
        expect(started.code, started.message).toBe('IPC_SOCKET_PATH_ACCESS')
        // Every step (mkdir, lock file, private folder, bind, link) names the errno, the path and our uid,
        // and none blames the filesystem for lacking hard links: tmpfs has them.
        expect(started.message).toContain('ENOSPC')
        expect(started.message).toContain(mnt)
        expect(started.message).toContain(`uid ${process.getuid?.()}`)
        expect(started.message).not.toContain('hard links')
        outcomes.push(`${free}:${started.code}`)
      }
      const ours = fs.existsSync(path.join(mnt, 'app')) ? fs.readdirSync(path.join(mnt, 'app')) : []
      expect(ours, `free ${free}`).toEqual([])
      fs.rmSync(path.join(mnt, 'app'), { recursive: true, force: true })
      fs.rmSync(path.join(mnt, theirs.shift()!)) // one more free inode next round
    }
    console.log(`filled: ${outcomes.join(' ')}`)
    expect(outcomes.at(-1)).toBe('5:started')
  })
})

describe('another user filling the filesystem with data', () => {
  it.skipIf(!canMount)('no space for the lock owner line: IpcError naming ENOSPC, no lock file left, and the next start works (needs root and mount)', async () => {
    const mnt = smallTmpfs('size=256k,nr_inodes=64')!
    fs.mkdirSync(path.join(mnt, 'app'), { mode: 0o700 })
    const filler = foreignScript(`
      import fs from 'node:fs'; const fd = fs.openSync(process.argv[2] + '/big', 'w'); const b = Buffer.alloc(4096)
      try { for (;;) fs.writeSync(fd, b) } catch (e) { console.log('full ' + e.code) }
    `)
    expect(await waitForLine(runAsNobody(filler, [mnt]), 'full')).toBe('full ENOSPC')
    const socketPath = path.join(mnt, 'app', 's.sock')
    const err = await failure(serve(ok, { socketPath, logger: false, handleSignals: false }))
    expect(err.code, err.message).toBe('IPC_SOCKET_PATH_ACCESS')
    expect(err.message).toContain('ENOSPC')
    expect(err.message).toContain(`uid ${process.getuid?.()}`)
    expect(fs.readdirSync(path.join(mnt, 'app'))).toEqual([])
    fs.truncateSync(path.join(mnt, 'big'), 0)
    const ipc = await start(socketPath)
    expect(await rawGet(socketPath)).toBe('ok')
    await ipc.close()
    expect(fs.readdirSync(path.join(mnt, 'app'))).toEqual([])
  })
})

describe("another user's socket at our path", () => {
  /** uid 65534 listens at `<folder>/s.sock`; the folder is opened to it only while it binds, then made root's 0755 again. */
  async function foreignListener(): Promise<{ socketPath: string; child: ChildProcess }> {
    const d = dir()
    fs.chmodSync(d, 0o711)
    const folder = path.join(d, 'app')
    fs.mkdirSync(folder)
    fs.chmodSync(folder, 0o777)
    const socketPath = path.join(folder, 's.sock')
    const listener = foreignScript(`
      import net from 'node:net'
      net.createServer((s) => s.end('theirs')).listen(process.argv[2], () => console.log('listening'))
    `)
    const child = runAsNobody(listener, [socketPath])
    await waitForLine(child, 'listening')
    fs.chmodSync(folder, 0o755)
    expect(fs.lstatSync(socketPath).uid).toBe(NOBODY)
    return { socketPath, child }
  }

  it.skipIf(!isRoot)(`a live one is a refusal naming its owner, never removed (${NEEDS_ROOT})`, async () => {
    const { socketPath, child } = await foreignListener()
    const ino = fs.lstatSync(socketPath).ino
    const err = (await failure(start(socketPath))) as { code?: string; message: string; pid?: number }
    expect(err.code).toBe('IPC_SOCKET_IN_USE')
    expect(err.message).toContain(socketPath)
    expect(err.message).toContain(`uid ${NOBODY}, another user`)
    expect(err.pid).toBe(child.pid) // the listener, from SO_PEERCRED on the probe
    expect(fs.lstatSync(socketPath).ino).toBe(ino)
    expect(fs.existsSync(`${socketPath}.lock`)).toBe(false)
  })

  it.skipIf(!isRoot)(`a stale one (its listener killed) in our folder is removed like our own (${NEEDS_ROOT})`, async () => {
    const { socketPath, child } = await foreignListener()
    child.kill('SIGKILL')
    await exited(child)
    const ipc = await start(socketPath)
    expect(await rawGet(socketPath)).toBe('ok')
    expect(fs.lstatSync(socketPath).uid).toBe(0)
    await ipc.close()
  })
})

/**
 * uid 65534 loops for `ms` over `folder` while a root server starts and stops there: it lists the
 * folder, tries to open the lock file (to hold or flock it), to enter the private bind folders and
 * connect to a socket bound there, to create a file, and connects to the final socket. Prints one
 * JSON line of counts by what happened.
 */
const PROBER = `
  import fs from 'node:fs'; import net from 'node:net'; import path from 'node:path'
  const [folder, name, ms] = process.argv.slice(2); const end = Date.now() + Number(ms); const n = {}
  const count = (k) => (n[k] = (n[k] ?? 0) + 1)
  const connect = (p) => new Promise((r) => { const s = net.connect(p); s.once('connect', () => { s.destroy(); r('ok') }); s.once('error', (e) => r(e.code)) })
  console.log('probing')
  while (Date.now() < end) {
    let names = []
    try { names = fs.readdirSync(folder) } catch (e) { count('list:' + e.code) }
    for (const entry of names) {
      const p = path.join(folder, entry)
      if (entry.endsWith('.lock')) { try { fs.closeSync(fs.openSync(p, 'r')); count('lock:opened') } catch (e) { count('lock:' + e.code) } }
      else if (entry.startsWith('.' + name + '.')) {
        try { fs.readdirSync(p); count('private:listed') } catch (e) { count('private:' + e.code) }
        count('private-connect:' + await connect(path.join(p, 's')))
      }
    }
    try { fs.writeFileSync(path.join(folder, 'planted'), ''); count('create:ok') } catch (e) { count('create:' + e.code) }
    count('connect:' + await connect(path.join(folder, name)))
  }
  console.log(JSON.stringify(n))
`

async function attackWhileRestarting(folder: string, options: Parameters<typeof serve>[1], ms = 1500): Promise<{ counts: Record<string, number>; rounds: number }> {
  const child = runAsNobody(foreignScript(PROBER), [folder, 's.sock', String(ms + 300)])
  await waitForLine(child, 'probing')
  const result = waitForLine(child, '{', ms + 10_000)
  const t0 = Date.now()
  let rounds = 0
  while (Date.now() - t0 < ms) {
    const ipc = await serve(ok, { socketPath: path.join(folder, 's.sock'), logger: false, handleSignals: false, allow: { uids: [0] }, ...options })
    await ipc.close()
    rounds++
  }
  return { counts: JSON.parse(await result) as Record<string, number>, rounds }
}

describe('another user around a root server that starts and stops in a loop', () => {
  it.skipIf(!isRoot)(`with socketMode 0o600 in a folder it can list: never a connection, never the lock, never a private folder (${NEEDS_ROOT})`, async () => {
    const d = dir()
    fs.chmodSync(d, 0o755)
    const { counts, rounds } = await attackWhileRestarting(d, { socketMode: 0o600 })
    console.log(`0600: ${rounds} restarts, ${JSON.stringify(counts)}`)
    expect(rounds).toBeGreaterThan(10)
    expect(counts['connect:EACCES']).toBeGreaterThan(0) // it did reach published sockets
    expect(Object.keys(counts).filter((k) => /:(ok|opened|listed)$/.test(k))).toEqual([])
  })

  it.skipIf(!isRoot)(`in the socketGroup: connects (then the peer check decides), but never the lock, a private folder or a file of its own (${NEEDS_ROOT})`, async () => {
    const d = dir()
    fs.chmodSync(d, 0o711)
    const folder = path.join(d, 'app') // created by the server: 0750 root:65534
    const { counts, rounds } = await attackWhileRestarting(folder, { socketGroup: NOBODY })
    console.log(`group: ${rounds} restarts, ${JSON.stringify(counts)}`)
    expect(rounds).toBeGreaterThan(10)
    expect(counts['connect:ok']).toBeGreaterThan(0)
    expect(Object.keys(counts).filter((k) => k !== 'connect:ok' && /:(ok|opened|listed)$/.test(k))).toEqual([])
    expect(counts['lock:EACCES']).toBeGreaterThan(0)
  })
})

describe('SIGKILL while creating the socket folder for a group', () => {
  let killPoint: Awaited<ReturnType<typeof bundleFixture>> | undefined
  beforeAll(async () => {
    if (isRoot) killPoint = await bundleFixture('kill-point.ts')
  })
  afterAll(() => killPoint?.cleanup())

  it.skipIf(!isRoot)(`the next start leaves every folder with its mode and the socketGroup, never a finished-looking one without them (${NEEDS_ROOT})`, { timeout: 30_000 }, async () => {
    const root = dir()
    fs.chmodSync(root, 0o711)
    const options = JSON.stringify({ socketGroup: NOBODY })
    const count = await runToEnd(spawnBundle(killPoint!, [path.join(root, 'count', 'a', 'run', 's.sock'), 'start', '0', options]))
    const steps = Number(/steps (\d+)/.exec(count.stdout)?.[1])
    expect(steps, count.stdout + count.stderr).toBeGreaterThan(20)
    // Right before each of the first 30 steps (right after step i is right before step i + 1): the
    // walk and the three folders it creates (mkdir, open, fstat, fchown, fchmod, close), up to the lock.
    const points = Array.from({ length: Math.min(30, steps) }, (_, i) => 2 * i + 1)
    const folders: string[] = []
    for (let i = 0; i < points.length; i += 4) {
      await Promise.all(
        points.slice(i, i + 4).map(async (k) => {
          const top = path.join(root, `k${k}`)
          const child = spawnBundle(killPoint!, [path.join(top, 'a', 'run', 's.sock'), 'start', String(k), options])
          await runToEnd(child)
          expect(child.signalCode, `point ${k}`).toBe('SIGKILL')
          folders.push(top)
        }),
      )
    }
    const wrong: string[] = []
    for (const top of folders) {
      const ipc = await serve(ok, { socketPath: path.join(top, 'a', 'run', 's.sock'), socketGroup: NOBODY, logger: false, handleSignals: false, allow: { uids: [0] } })
      const a = fs.lstatSync(path.join(top, 'a'))
      const run = fs.lstatSync(path.join(top, 'a', 'run'))
      const seen = { a: [a.mode & 0o7777, a.uid], run: [run.mode & 0o7777, run.uid, run.gid] }
      if (JSON.stringify(seen) !== JSON.stringify({ a: [0o755, 0], run: [0o750, 0, NOBODY] })) wrong.push(`${path.basename(top)} ${JSON.stringify(seen)}`)
      expect(await rawGet(path.join(top, 'a', 'run', 's.sock'))).toBe('ok')
      await ipc.close()
    }
    expect(wrong).toEqual([])
  })
})
