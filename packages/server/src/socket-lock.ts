import { promises as fsp } from 'node:fs'
import lockfile from 'proper-lockfile'
import { SocketInUseError, readProcessStartTime, type Logger } from '@naaccord/ipc-shared'

/** The lock beside the socket: a folder made by mkdir(2) (proper-lockfile). */
export function lockPathFor(socketPath: string): string {
  return `${socketPath}.lock`
}

/**
 * Who holds the lock, beside it: proper-lockfile watches the lock folder's mtime to detect a
 * takeover, so nothing may be written inside it.
 */
function ownerPathFor(socketPath: string): string {
  return `${socketPath}.lock.owner`
}

interface LockOwner {
  pid: number
  startTime: number | undefined
  /** Inode of the lock folder this owner made: tells its lock from a newer one. */
  lockIno?: number
}

async function readOwner(socketPath: string): Promise<LockOwner | undefined> {
  try {
    const owner = JSON.parse(await fsp.readFile(ownerPathFor(socketPath), 'utf8')) as LockOwner
    return Number.isInteger(owner.pid) ? owner : undefined
  } catch {
    return undefined
  }
}

/** A lock owner is alive when its pid exists and (where readable) started when the owner said. */
function isAlive(owner: LockOwner): boolean {
  try {
    process.kill(owner.pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false
  }
  if (owner.startTime === undefined) return true
  const now = readProcessStartTime(owner.pid)
  // A different start time means the pid was reused by another process: the owner is gone.
  return now === undefined || now === owner.startTime
}

export interface HeldLock {
  release(): Promise<void>
}

/**
 * Take the lock that guards probe-and-remove of a stale socket and is held for the server's
 * life. proper-lockfile refreshes its mtime so a crashed holder goes stale after `staleMs`; we
 * also read the holder's pid (and process start time) from the lock, so a lock left by a
 * process that no longer exists is recovered at once instead of after the stale period.
 */
export async function acquireSocketLock(socketPath: string, log: Logger, staleMs = 10_000): Promise<HeldLock> {
  const lockPath = lockPathFor(socketPath)
  for (let attempt = 0; ; attempt++) {
    let release: () => Promise<void>
    try {
      release = await lockfile.lock(socketPath, {
        lockfilePath: lockPath,
        realpath: false,
        stale: staleMs,
        retries: 0,
        onCompromised: (err) => log.error({ err, lockPath }, 'socket lock compromised: another process took it over'),
      })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err
      const owner = await readOwner(socketPath)
      // The owner file is written just after the lock folder is made, so a fresh lock can sit
      // beside the previous holder's owner file for a moment. Remove the lock only when the
      // owner file describes this very folder (same inode) and its process is gone.
      const lockIno = await fsp.stat(lockPath).then((st) => st.ino, () => undefined)
      const ownsThisLock = owner !== undefined && owner.lockIno !== undefined && owner.lockIno === lockIno
      if (attempt === 0 && owner && ownsThisLock && !isAlive(owner)) {
        log.warn({ lockPath, pid: owner.pid }, 'removing the lock of a server that no longer runs')
        await fsp.rm(lockPath, { recursive: true, force: true })
        continue
      }
      throw new SocketInUseError(socketPath, ownsThisLock ? owner?.pid : undefined, 'another server holds the lock for', { cause: err })
    }
    const owner: LockOwner = { pid: process.pid, startTime: readProcessStartTime(process.pid), lockIno: (await fsp.stat(lockPath)).ino }
    await fsp.writeFile(ownerPathFor(socketPath), JSON.stringify(owner), { mode: 0o600 })
    return {
      async release() {
        await fsp.rm(ownerPathFor(socketPath), { force: true })
        await release().catch(() => {})
      },
    }
  }
}

/**
 * Who holds the lock of `socketPath`, as its owner file says, and whether that process still
 * runs (for `naaccord-ipc doctor`). Undefined when there is no readable owner file.
 *
 * @example
 * await lockHolder('/run/naaccord/service.sock') // { pid: 4121, alive: true }
 */
export async function lockHolder(socketPath: string): Promise<{ pid: number; alive: boolean } | undefined> {
  const owner = await readOwner(socketPath)
  return owner && { pid: owner.pid, alive: isAlive(owner) }
}
