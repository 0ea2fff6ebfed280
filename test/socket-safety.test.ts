import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serve, type IpcServer } from '@naaccord/ipc-server'
import { SERVER_SOCKET_PATH_MAX, SUN_PATH_MAX } from '@naaccord/ipc-shared'
import { resolveGroup } from '@naaccord/ipc-server'
import { bundleFixture, spawnBundle } from './bundle.js'
import { deferCleanup, exited, isRoot, NOBODY, waitForLine, socketTestKit, failure, rawGet } from './helpers.js'

const ok = (_req: unknown, res: import('node:http').ServerResponse) => res.end('ok')
const defer = deferCleanup()
const { dir, stickyFolder, foreignScript, runAsNobody } = socketTestKit(defer)


async function start(socketPath: string, extra: Parameters<typeof serve>[1] = {}): Promise<IpcServer> {
  const ipc = await serve(ok, { socketPath, logger: false, handleSignals: false, ...extra })
  defer(() => ipc.close())
  return ipc
}



/** Everything below `root`, as relative paths (lstat, links not followed). */
function tree(root: string): string[] {
  return (fs.readdirSync(root, { recursive: true }) as string[]).sort()
}




/** A name making `<folder>/<name>` exactly `bytes` long. */
function pathOfLength(folder: string, bytes: number): string {
  const p = path.join(folder, 'x'.repeat(bytes - folder.length - 1))
  expect(Buffer.byteLength(p)).toBe(bytes)
  return p
}

describe('socket path length (every path we bind fits sun_path)', () => {
  it('refuses a path whose private bind path would not fit, naming the maximum, and creates nothing', async () => {
    const d = dir()
    for (const bytes of [SUN_PATH_MAX, SERVER_SOCKET_PATH_MAX + 1]) {
      const err = await failure<{ code?: string; message: string; limit?: number }>(start(pathOfLength(d, bytes)))
      expect(err.code).toBe('IPC_SOCKET_PATH_TOO_LONG')
      expect(err.limit).toBe(SERVER_SOCKET_PATH_MAX)
      expect(err.message).toContain(`at most ${SERVER_SOCKET_PATH_MAX}`)
    }
    expect(tree(d)).toEqual([]) // no stray 0755 socket, no private folder
  })

  it('serves on a path of exactly the maximum length', async () => {
    const d = dir()
    const ipc = await start(pathOfLength(d, SERVER_SOCKET_PATH_MAX))
    expect(await rawGet(ipc.socketPath!)).toBe('ok')
    expect(fs.lstatSync(ipc.socketPath!).mode & 0o777).toBe(0o600)
  })

  it('checks the real folder: a short path through a symlink to a long folder is refused before binding', async () => {
    const d = dir()
    const long = path.join(d, 'l'.repeat(SERVER_SOCKET_PATH_MAX - d.length - 12))
    fs.mkdirSync(long, { mode: 0o700 })
    fs.symlinkSync(long, path.join(d, 'short'))
    const err = await failure(start(path.join(d, 'short', 'service.sock')))
    expect(err.code).toBe('IPC_SOCKET_PATH_TOO_LONG')
    expect(fs.readdirSync(long).filter((n) => !n.endsWith('.lock'))).toEqual([])
  })
})

describe('the folder chain, walked as written', () => {
  it('a socket directly in a sticky shared folder is refused with a private-subfolder hint, not chmod go-w', async () => {
    const t = stickyFolder(0o755)
    const err = await failure(start(path.join(t, 'service.sock')))
    expect(err.code).toBe('IPC_UNSAFE_SOCKET_PATH')
    expect(err.message).toContain(`use a private subfolder, e.g. ${path.join(t, 'naaccord', 'service.sock')}`)
    expect(err.message).not.toContain('chmod go-w')
    expect(err.message).toContain(`uid ${process.getuid?.()}`)
    expect(err.message).toContain('0o1777')
  })

  it('a private subfolder of a sticky folder is created with dirMode and works', async () => {
    const t = stickyFolder(0o755)
    const ipc = await start(path.join(t, 'naaccord', 'service.sock'), { dirMode: 0o700 })
    expect(fs.lstatSync(path.join(t, 'naaccord')).mode & 0o7777).toBe(0o700)
    expect(await rawGet(ipc.socketPath!)).toBe('ok')
  })

  it('follows a symlink of our own (or root) in a sticky folder', async () => {
    const t = stickyFolder(0o755)
    const real = dir()
    fs.symlinkSync(real, path.join(t, 'mine'))
    const ipc = await start(path.join(t, 'mine', 'service.sock'))
    expect(await rawGet(ipc.socketPath!)).toBe('ok')
    expect(fs.lstatSync(path.join(real, 'service.sock')).isSocket()).toBe(true)
  })

  it.skipIf(!isRoot)('refuses a symlink planted by another user in a sticky folder, as the socket folder or above it (needs root)', async () => {
    const t = stickyFolder(0o755)
    const target = dir() // root's, 0700: a folder the server would happily use
    const planter = foreignScript(`import fs from 'node:fs'; for (const [to, at] of JSON.parse(process.argv[2])) fs.symlinkSync(to, at); console.log('planted')`)
    const child = runAsNobody(planter, [JSON.stringify([[target, path.join(t, 'sock-dir')], [target, path.join(t, 'above')]])])
    await waitForLine(child, 'planted')
    expect(fs.lstatSync(path.join(t, 'sock-dir')).uid).toBe(NOBODY)
    for (const socketPath of [path.join(t, 'sock-dir', 's.sock'), path.join(t, 'above', 'run', 's.sock')]) {
      const err = await failure(start(socketPath))
      expect(err.code).toBe('IPC_UNSAFE_SOCKET_PATH')
      expect(err.message).toContain(`symlink owned by uid ${NOBODY}`)
    }
    expect(tree(target)).toEqual([]) // nothing created through the links
  })

  it.skipIf(!isRoot)('a root server never chmods or chowns a file another user points a swapped symlink at (needs root)', async () => {
    const t = stickyFolder(0o755)
    const base = dir()
    // The victim: a root file 0600 that uid 65534 must never be able to read.
    const victimDir = path.join(base, 'victim')
    fs.mkdirSync(victimDir, { mode: 0o755 })
    const victim = path.join(victimDir, 'run')
    fs.writeFileSync(victim, 'secret', { mode: 0o600 })
    const decoy = path.join(base, 'decoy') // an empty root folder where mkdir succeeds
    fs.mkdirSync(decoy, { mode: 0o755 })
    // uid 65534 flips <sticky>/a between the decoy and the victim's folder as fast as it can.
    const flipper = foreignScript(`
      import fs from 'node:fs'
      const [link, a, b, ms] = process.argv.slice(2); const tmp = link + '.n'; const end = Date.now() + Number(ms)
      fs.symlinkSync(a, link); console.log('flipping'); let i = 0
      while (Date.now() < end) { try { fs.rmSync(tmp, { force: true }); fs.symlinkSync(i++ % 2 ? b : a, tmp); fs.renameSync(tmp, link) } catch {} }
    `)
    const child = runAsNobody(flipper, [path.join(t, 'a'), decoy, victimDir, '3000'])
    await waitForLine(child, 'flipping')
    const codes = new Set<string | undefined>()
    const t0 = Date.now()
    let rounds = 0
    while (Date.now() - t0 < 2000) {
      fs.rmSync(path.join(decoy, 'run'), { recursive: true, force: true })
      const ipc = await serve(ok, { socketPath: path.join(t, 'a', 'run', 's.sock'), socketGroup: NOBODY, logger: false, handleSignals: false }).catch((e: { code?: string }) => {
        codes.add(e.code)
        return undefined
      })
      await ipc?.close()
      if (ipc) codes.add('started')
      rounds++
    }
    const st = fs.lstatSync(victim)
    expect(rounds).toBeGreaterThan(20)
    expect({ mode: st.mode & 0o7777, uid: st.uid, gid: st.gid }).toEqual({ mode: 0o600, uid: 0, gid: 0 })
    expect([...codes]).toEqual(['IPC_UNSAFE_SOCKET_PATH'])
  })

  it.skipIf(!isRoot)('another user racing to put a folder or a link where a root server creates its folder never gets it used (needs root)', async () => {
    const t = stickyFolder(0o755)
    const victim = path.join(dir(), 'victim') // root's folder, 0700: must never get a socket or a mode change
    fs.mkdirSync(victim, { mode: 0o700 })
    const target = path.join(t, 'naaccord')
    const racer = foreignScript(`
      import fs from 'node:fs'
      const [at, victim, ms] = process.argv.slice(2); const end = Date.now() + Number(ms); let i = 0
      console.log('racing')
      while (Date.now() < end) { try { i++ % 2 ? fs.mkdirSync(at, { mode: 0o777 }) : fs.symlinkSync(victim, at) } catch {} }
    `)
    const child = runAsNobody(racer, [target, victim, '2500'])
    await waitForLine(child, 'racing')
    const seen: Record<string, number> = {}
    const t0 = Date.now()
    while (Date.now() - t0 < 1500) {
      fs.rmSync(target, { recursive: true, force: true })
      const ipc = await serve(ok, { socketPath: path.join(target, 's.sock'), logger: false, handleSignals: false }).catch((e: { code?: string }) => e.code)
      if (typeof ipc === 'object') {
        const st = fs.lstatSync(target)
        expect({ dir: st.isDirectory(), uid: st.uid, mode: st.mode & 0o7777 }).toEqual({ dir: true, uid: 0, mode: 0o700 })
        expect(await rawGet(ipc.socketPath!)).toBe('ok')
        await ipc.close()
        seen.started = (seen.started ?? 0) + 1
      } else seen[String(ipc)] = (seen[String(ipc)] ?? 0) + 1
    }
    console.log(`race outcomes: ${JSON.stringify(seen)}`)
    expect(Object.keys(seen).every((k) => k === 'started' || k === 'IPC_UNSAFE_SOCKET_PATH'), JSON.stringify(seen)).toBe(true)
    expect(Object.values(seen).reduce((a, b) => a + b, 0)).toBeGreaterThan(10)
    expect(fs.readdirSync(victim)).toEqual([])
    expect(fs.lstatSync(victim).mode & 0o7777).toBe(0o700)
  })

  it.skipIf(!isRoot)('a folder pre-created by another user in a sticky folder is refused, not adopted (needs root)', async () => {
    const t = stickyFolder(0o755)
    const theirs = path.join(t, 'naaccord')
    fs.mkdirSync(theirs, { mode: 0o700 })
    fs.chownSync(theirs, NOBODY, NOBODY)
    const err = await failure(start(path.join(theirs, 's.sock')))
    expect(err.code).toBe('IPC_UNSAFE_SOCKET_PATH')
    expect(err.message).toContain(`uid ${NOBODY}`)
    expect(fs.lstatSync(theirs).mode & 0o7777).toBe(0o700)
    expect(fs.lstatSync(theirs).uid).toBe(NOBODY)
    expect(fs.readdirSync(theirs)).toEqual([])
  })

  it.skipIf(!isRoot || !fs.lstatSync('/var/run', { throwIfNoEntry: false })?.isSymbolicLink())('the real /var/run -> /run link is followed (needs root)', async () => {
    const folder = `/var/run/nipc-test-${process.pid}`
    defer(() => fs.rmSync(`/run/nipc-test-${process.pid}`, { recursive: true, force: true }))
    const ipc = await start(path.join(folder, 's.sock'))
    expect(await rawGet(ipc.socketPath!)).toBe('ok')
    expect(fs.lstatSync(`/run/nipc-test-${process.pid}/s.sock`).isSocket()).toBe(true)
  })

  it('a root link in a root folder above the socket (/var/run -> /run) keeps working, also relative', async () => {
    const d = dir()
    fs.mkdirSync(path.join(d, 'run'), { mode: 0o755 })
    fs.symlinkSync('run', path.join(d, 'varrun')) // relative, as /var/run -> ../run
    const ipc = await start(path.join(d, 'varrun', 'naaccord', 'service.sock'))
    expect(await rawGet(ipc.socketPath!)).toBe('ok')
    expect(fs.lstatSync(path.join(d, 'run', 'naaccord', 'service.sock')).isSocket()).toBe(true)
  })
})

describe('the lock file is never written through a link', () => {
  function victimFile(): string {
    const v = path.join(dir(), 'victim')
    fs.writeFileSync(v, 'precious', { mode: 0o640 })
    return v
  }

  it.each([
    ['a symlink at the lock path', '.lock', (v: string, p: string) => fs.symlinkSync(v, p)],
    ['a hard link at the lock path', '.lock', (v: string, p: string) => fs.linkSync(v, p)],
    ['a symlink at the old owner-file path', '.lock.owner', (v: string, p: string) => fs.symlinkSync(v, p)],
  ])('%s: the file it points at is left as it was', async (_what, suffix, plant) => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    const victim = victimFile()
    const before = fs.statSync(victim)
    plant(victim, socketPath + suffix)
    const result = await serve(ok, { socketPath, logger: false, handleSignals: false }).then(
      async (ipc) => {
        await ipc.close()
        return 'started'
      },
      (e: { code?: string }) => e.code,
    )
    expect(result).toBe(suffix === '.lock' ? 'IPC_UNSAFE_SOCKET_PATH' : 'started')
    const after = fs.statSync(victim)
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious')
    expect([after.mode, after.uid, after.mtimeMs]).toEqual([before.mode, before.uid, before.mtimeMs])
  })
})

describe('start failures are IpcErrors that say what to do', () => {
  let racer: Awaited<ReturnType<typeof bundleFixture>> | undefined
  beforeAll(async () => {
    if (isRoot) racer = await bundleFixture('racer.ts')
  })
  afterAll(() => racer?.cleanup())

  /** serve() in a process of uid 65534; its one answer line ("won ..." or "lost <code> <message>"). */
  async function serveAsNobody(socketPath: string): Promise<string> {
    const child = spawnBundle(racer!, [socketPath], { uid: NOBODY, gid: NOBODY, stdio: ['pipe', 'pipe', 'pipe'] })
    defer(async () => {
      child.kill('SIGKILL')
      await exited(child)
    })
    await waitForLine(child, 'loaded')
    child.stdin!.write('start\n')
    return waitForLine(child, 'lost')
  }

  it.skipIf(!isRoot)("a folder of root's that we cannot write: IPC_SOCKET_PATH_ACCESS with owner, mode, our uid and the fix (needs root)", async () => {
    const d = dir()
    fs.chmodSync(d, 0o755)
    const run = path.join(d, 'run')
    fs.mkdirSync(run, { mode: 0o755 })
    const line = await serveAsNobody(path.join(run, 's.sock'))
    expect(line).toMatch(/^lost IPC_SOCKET_PATH_ACCESS /)
    expect(line).toContain(path.join(run, 's.sock'))
    expect(line).toContain('owned by uid 0')
    expect(line).toContain('mode 0o755')
    expect(line).toContain(`runs as uid ${NOBODY}`)
    expect(line).toContain(`chown ${NOBODY} ${run}`)
    expect(fs.readdirSync(run)).toEqual([])
  })

  it.skipIf(!isRoot)("a missing folder under root's folder: IPC_SOCKET_PATH_ACCESS saying how to create it (needs root)", async () => {
    const d = dir()
    fs.chmodSync(d, 0o755)
    const line = await serveAsNobody(path.join(d, 'naaccord', 's.sock'))
    expect(line).toMatch(/^lost IPC_SOCKET_PATH_ACCESS /)
    expect(line).toContain(`install -d -o ${NOBODY} -m 700 ${path.join(d, 'naaccord')}`)
    expect(line).toContain(`runs as uid ${NOBODY}`)
  })

  it('a file where the socket folder should be: IPC_UNSAFE_SOCKET_PATH naming it', async () => {
    const d = dir()
    fs.writeFileSync(path.join(d, 'run'), '')
    const err = await failure(start(path.join(d, 'run', 's.sock')))
    expect(err.code).toBe('IPC_UNSAFE_SOCKET_PATH')
    expect(err.message).toContain(path.join(d, 'run'))
  })
})

describe('socketGroup by name, through NSS', () => {
  const userdb = '/run/userdb'
  const name = `nipc${process.pid}`
  const gid = 60_000 + (process.pid % 5000)
  it.skipIf(!isRoot)('resolves a group that only the name service knows (systemd userdb record, not in /etc/group) (needs root)', () => {
    const made = fs.mkdirSync(userdb, { recursive: true }) !== undefined
    if (made) defer(() => fs.rmSync(userdb, { recursive: true, force: true }))
    const record = path.join(userdb, `${name}.group`)
    const byGid = path.join(userdb, `${gid}.group`)
    fs.writeFileSync(record, JSON.stringify({ groupName: name, gid }))
    fs.symlinkSync(`${name}.group`, byGid)
    defer(() => {
      fs.rmSync(record, { force: true })
      fs.rmSync(byGid, { force: true })
    })
    let nss: string
    try {
      nss = execFileSync('getent', ['group', name], { encoding: 'utf8' })
    } catch {
      return void console.warn('skipped: nss-systemd is not in nsswitch.conf here, so no NSS-only group can be made')
    }
    expect(nss).toContain(`:${gid}:`)
    expect(fs.readFileSync('/etc/group', 'utf8')).not.toContain(`${name}:`)
    expect(resolveGroup('socketGroup', name)).toBe(gid)
  })

  it('an unknown group name is IPC_INVALID_OPTION naming the group', () => {
    expect(() => resolveGroup('socketGroup', 'no-such-group-here')).toThrow(expect.objectContaining({ code: 'IPC_INVALID_OPTION', message: expect.stringContaining('"no-such-group-here"') }))
  })
})
