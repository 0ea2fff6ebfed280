import fs, { constants as fsc } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import path from 'node:path'
import { flockAvailable, tryLockExclusive } from '@naaccord/ipc-peercred'
import {
  SocketInUseError,
  SocketPathAccessError,
  UnsafeSocketPathError,
  checkFolderChain,
  flockHolders,
  isIpcError,
  parseProcStat,
  readProcessStartTime,
  resolveSafeEntry,
  trustedUids,
  type Logger,
  type SafePathSubject,
} from '@naaccord/ipc-shared'
import { myUid } from './socket-path.js'

/** The lock beside the socket: a regular file, `<socketPath>.lock`, held with flock(2). */
export function lockPathFor(socketPath: string): string {
  return `${socketPath}.lock`
}

/** A holder that released (and unlinked) the file between our open and our flock makes us retry. */
const MAX_ATTEMPTS = 20
/**
 * How long to wait for a holder that is dying: after SIGKILL the main thread can already show as a
 * zombie while the process's other threads still hold its descriptors (and so the lock) for a few
 * milliseconds more. A live holder is refused at once.
 */
const DYING_HOLDER_WAIT_MS = 1000

/** True when `pid` has exited (gone, or a zombie whose descriptors are being closed). */
function isExiting(pid: number | undefined): boolean {
  if (pid === undefined) return false
  let text: string
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    try {
      process.kill(pid, 0)
      return false // alive, no procfs here
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH'
    }
  }
  const state = parseProcStat(text)?.state
  return state === 'Z' || state === 'X' || state === 'x'
}

/**
 * open(2) flags for the lock file: never through a symlink (O_NOFOLLOW: ELOOP), never blocking on
 * a FIFO planted there (O_NONBLOCK), never a controlling terminal. Node adds O_CLOEXEC, so a child
 * process never inherits (and never keeps) the lock.
 */
const OPEN_FLAGS = fsc.O_RDWR | fsc.O_CREAT | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY

export interface HeldLock {
  /** The lock file, or undefined when running without a lock (no flock: see acquireSocketLock). */
  readonly path: string | undefined
  /**
   * Unlink the lock file if it is still the one this process locked (same device and inode), then
   * close it, which drops the lock. Idempotent, synchronous inside, safe to call at any time
   * (also before draining connections, so a successor can start at once).
   */
  release(): Promise<void>
}

/** What the holder writes into the lock file: for error messages and operators, never trusted for the lock itself. */
export interface LockOwner {
  pid: number
  startTime: number | undefined
}


function readOwnerFd(fd: number): LockOwner | undefined {
  try {
    const buf = Buffer.alloc(256)
    const n = fs.readSync(fd, buf, 0, buf.length, 0)
    const owner = JSON.parse(buf.subarray(0, n).toString('utf8')) as LockOwner
    return Number.isSafeInteger(owner.pid) && owner.pid > 0 ? owner : undefined
  } catch {
    return undefined
  }
}

/**
 * Who holds the lock at `socketPath` by its own account (the pid it wrote), for operator tools and
 * messages; undefined when the file is absent, unreadable or empty. Not proof that it still runs.
 *
 * @example
 * readLockOwner('/run/naaccord/service.sock') // { pid: 4121, startTime: 1234567 }
 */
export function readLockOwner(socketPath: string): LockOwner | undefined {
  let fd: number
  try {
    fd = fs.openSync(lockPathFor(socketPath), fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK)
  } catch {
    return undefined
  }
  try {
    return fs.fstatSync(fd).isFile() ? readOwnerFd(fd) : undefined
  } finally {
    fs.closeSync(fd)
  }
}

function openLockFile(lockPath: string): number {
  try {
    return fs.openSync(lockPath, OPEN_FLAGS, 0o600)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ELOOP') {
      throw new UnsafeSocketPathError(lockPath, 'is a symlink; the lock file is never opened through a link. Remove it if it is yours, or choose another socketPath', { cause: err })
    }
    if (code === 'EISDIR') {
      throw new UnsafeSocketPathError(
        lockPath,
        'is a folder, not a lock file (a lock left by naaccord-ipc 0.1, which used a folder?); if no server runs on this path, remove it (rm -r) and start again',
        { cause: err },
      )
    }
    if (code === 'ENXIO') {
      throw new UnsafeSocketPathError(lockPath, 'is not a regular file (a socket or device); remove it if it is yours, or choose another socketPath', { cause: err })
    }
    let folder = ''
    try {
      const st = fs.statSync(path.dirname(lockPath))
      folder = `; ${path.dirname(lockPath)} is owned by uid ${st.uid}, mode 0o${(st.mode & 0o7777).toString(8)}`
    } catch {}
    throw new SocketPathAccessError(
      lockPath,
      `cannot open the socket lock (${code})${folder}; this process runs as uid ${myUid()}. Run the server as the folder's owner, or give it a folder of its own`,
      { cause: err },
    )
  }
}

/**
 * Take the lock that guards the socket path (probe and removal of a stale socket, stray bind
 * folders, the bind itself) and is held for the server's life:
 *
 * 1. open `<socketPath>.lock` with O_CREAT|O_NOFOLLOW (a symlink planted there is refused, never
 *    followed) and check with fstat that it is a regular file of ours or root's with one link;
 * 2. flock(2) it, exclusive and non-blocking: one atomic step. Held: `IPC_SOCKET_IN_USE` with the
 *    holder's pid (as it wrote it);
 * 3. check that the path still names the file we locked: a holder that releases unlinks the file
 *    while still holding the lock, so a lock on an unlinked file is worthless; open again.
 *
 * The kernel drops the lock when its holder's descriptors close, also on SIGKILL, and by the time
 * a dead process is a zombie: a crash leaves at most an unlocked file, which the next start locks
 * at once. No stale period, no takeover step to race. The holder's pid and start time are written
 * into the file through the locked descriptor, for messages, and for one thing more: a holder
 * whose pid is gone or a zombie is still closing its descriptors (a killed process's main thread
 * shows as a zombie while its other threads exit), so the lock is tried again for up to 1 s
 * instead of refusing the start; a live holder is refused at once.
 *
 * Without flock (the native addon is missing, which serve() only allows with `allow: false`, or
 * is a build from before flock was added), no
 * lock is taken: a warning is logged and the returned lock has no path. The socket is still
 * published with link(2), which never replaces another socket, and a stale socket is still
 * probed before removal; what is lost is the guarantee for two servers started at the same
 * moment on a stale socket.
 *
 * @throws {SocketInUseError} IPC_SOCKET_IN_USE: another process holds the lock (err.pid when known).
 * @throws {UnsafeSocketPathError} IPC_UNSAFE_SOCKET_PATH: a symlink, folder, hard link or foreign file at the lock path.
 * @throws {SocketPathAccessError} IPC_SOCKET_PATH_ACCESS: the lock file cannot be created (EACCES, EROFS...).
 * @example
 * const lock = await acquireSocketLock('/run/naaccord/service.sock', log)
 * try { ... } finally { await lock.release() }
 */
export async function acquireSocketLock(socketPath: string, log: Logger): Promise<HeldLock> {
  const lockPath = lockPathFor(socketPath)
  const flock = flockAvailable()
  if (!flock.available) {
    log.warn({ lockPath, reason: flock.reason }, 'no socket lock: flock(2) comes with the native addon, which is unavailable; two servers started at the same moment on a stale socket are not kept apart')
    return { path: undefined, release: async () => {} }
  }
  const dyingDeadline = Date.now() + DYING_HOLDER_WAIT_MS
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const outcome = await lockOnce(socketPath, lockPath, dyingDeadline)
    if (outcome === 'holder-dying') {
      attempt-- // not a change of hands: the holder is still closing its descriptors
      await sleep(5)
    } else if (outcome !== 'released-under-us') {
      return outcome
    }
  }
  throw new SocketInUseError(socketPath, undefined, `the lock changed hands ${MAX_ATTEMPTS} times while this process tried to take it, for`)
}

/** The lock file just opened must be a regular file of ours or root's with one link; made 0600 if ours and wider. */
function checkLockFile(fd: number, lockPath: string): fs.Stats {
  const st = fs.fstatSync(fd)
  if (!st.isFile()) throw new UnsafeSocketPathError(lockPath, 'is not a regular file; remove it if it is yours, or choose another socketPath')
  if (st.uid !== myUid() && st.uid !== 0) {
    throw new UnsafeSocketPathError(lockPath, `is owned by uid ${st.uid}, not by this process (uid ${myUid()}) or root; remove it if no server runs on this path`)
  }
  if (st.nlink !== 1) {
    throw new UnsafeSocketPathError(lockPath, `has ${st.nlink} hard links, so it is another file too; never written. Remove the link and start again`)
  }
  // Whoever can open the file can flock it: keep it ours alone, whatever made it wider.
  if (st.mode & 0o077 && st.uid === myUid()) fs.fchmodSync(fd, 0o600)
  return st
}

/** Whether the path still names the file we locked (a holder that releases unlinks it while still holding the lock). */
function stillAtPath(lockPath: string, st: fs.Stats): boolean {
  let now: fs.Stats | undefined
  try {
    now = fs.lstatSync(lockPath)
  } catch {}
  return now !== undefined && now.ino === st.ino && now.dev === st.dev
}

/** Write our pid and start time into the lock file; on failure (ENOSPC, EDQUOT) the lock is released, file and all. */
async function writeOwner(lock: HeldLock, fd: number): Promise<void> {
  try {
    fs.ftruncateSync(fd, 0)
    const owner: LockOwner = { pid: process.pid, startTime: readProcessStartTime(process.pid) }
    fs.writeSync(fd, JSON.stringify(owner), 0)
  } catch (err) {
    await lock.release()
    throw err
  }
}

/**
 * One try: open, check, flock. Returns the lock; 'holder-dying' when the holder has exited but
 * still holds it (try again shortly); 'released-under-us' when the file was unlinked between our
 * open and our flock (open again).
 */
async function lockOnce(socketPath: string, lockPath: string, dyingDeadline: number): Promise<HeldLock | 'holder-dying' | 'released-under-us'> {
  const fd = openLockFile(lockPath)
  let keep = false
  try {
    const st = checkLockFile(fd, lockPath)
    if (!tryLockExclusive(fd)) {
      const owner = readOwnerFd(fd)
      if (isExiting(owner?.pid) && Date.now() < dyingDeadline) return 'holder-dying'
      throw new SocketInUseError(socketPath, owner?.pid, 'another server holds the lock for')
    }
    if (!stillAtPath(lockPath, st)) return 'released-under-us'
    const lock = heldLock(lockPath, fd, st)
    keep = true // closed by lock.release() from here on
    await writeOwner(lock, fd)
    return lock
  } catch (err) {
    if (err instanceof Error && !isIpcError(err)) {
      throw new SocketPathAccessError(lockPath, `cannot take the socket lock (${(err as NodeJS.ErrnoException).code ?? err.message}) as uid ${myUid()}`, { cause: err })
    }
    throw err
  } finally {
    if (!keep) fs.closeSync(fd)
  }
}

function heldLock(lockPath: string, fd: number, st: fs.Stats): HeldLock {
  let released = false
  return {
    path: lockPath,
    async release() {
      if (released) return
      released = true
      // Unlink while still holding the lock, and only the file we locked: whoever opened it
      // meanwhile finds the path gone or new after its flock, and opens again.
      try {
        const now = fs.lstatSync(lockPath)
        if (now.ino === st.ino && now.dev === st.dev) fs.unlinkSync(lockPath)
      } catch {}
      fs.closeSync(fd)
    },
  }
}

/**
 * Which processes hold the lock of `socketPath`, by the kernel's word: the lock file is found
 * through the safe-path rules (its folder chain and the file itself trusted: this uid or root,
 * nobody else can write), then /proc/locks names the pids holding an flock(2) on that very
 * inode. Only a process that could open the lock file (0600, ours or root's) can appear, and a
 * pid cannot be claimed without the lock, unlike the pid the holder writes into the file.
 *
 * @returns the pids (empty when no lock file or nobody holds it), or undefined where the kernel
 *   does not say (no /proc/locks).
 * @throws {UnsafePathError} IPC_UNSAFE_PATH: the lock file or a folder or link on its way is unsafe.
 * @example
 * lockHolderPids('/run/naaccord/service.sock', '--socket') // [4121]
 */
export function lockHolderPids(socketPath: string, option: string): number[] | undefined {
  const subject: SafePathSubject = { kind: 'file', label: 'the socket lock', option }
  const trust = trustedUids()
  const realDir = checkFolderChain(socketPath, subject, trust)
  if (typeof realDir !== 'string') return []
  const entry = resolveSafeEntry(lockPathFor(path.join(realDir, path.basename(socketPath))), 'file', subject, trust)
  if ('missing' in entry) return []
  // In a checked folder only a trusted uid can replace the file; a number-typed ino can be inexact.
  const st = fs.lstatSync(entry.realPath, { bigint: true })
  return st.isFile() ? flockHolders(st.dev, st.ino) : []
}

/**
 * Who holds the lock of `socketPath`, as the lock file says, and whether that process still
 * runs (for `naaccord-ipc doctor`). Undefined when there is no readable owner file. Not proof
 * (the pid is the holder's own account): `lockHolderPids` asks the kernel.
 *
 * @example
 * await lockHolder('/run/naaccord/service.sock') // { pid: 4121, alive: true }
 */
export async function lockHolder(socketPath: string): Promise<{ pid: number; alive: boolean } | undefined> {
  const owner = readLockOwner(socketPath)
  return owner && { pid: owner.pid, alive: !isExiting(owner.pid) }
}
