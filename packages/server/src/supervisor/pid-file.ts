import fs, { constants as fsc } from 'node:fs'
import path from 'node:path'
import {
  SupervisorError,
  UnsafePathError,
  checkFolderChain,
  isIpcError,
  myUid,
  readProcessStartTime,
  readSafeFile,
  trustedUids,
  type SafePathSubject,
} from '@naaccord/ipc-shared'
import { lockHolderPids } from '../socket/socket-lock.js'

/** What the supervisor writes: its pid, its start time (a reused pid is never signalled), the socket it holds. */
interface PidRecord {
  pid: number
  startTime: number | undefined
  /** The real path of the socket whose lock the supervisor holds; absent in files of older versions. */
  socketPath?: string
}

const SUBJECT: SafePathSubject = { kind: 'file', label: 'the supervisor pid file', option: '--pid-file (NAACCORD_PID_FILE)' }
/** A pid file is one short JSON line; anything larger is not ours. */
const MAX_BYTES = 4096

/** The pid file as written: removed on stop only while it is still this file. */
export interface WrittenPidFile {
  /** The real path written (the folder's trusted links resolved). */
  readonly path: string
  readonly dev: number
  readonly ino: number
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'error'
}

/** Create `tmp` exclusively, never through a link (O_EXCL|O_NOFOLLOW); one left by a dead process of our pid is replaced once. */
function createExclusive(tmp: string): number {
  const flags = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW | fsc.O_NOCTTY
  try {
    return fs.openSync(tmp, flags, 0o644)
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') throw err
    // In a checked folder only a trusted uid can have made it: a leftover of a crashed run.
    fs.rmSync(tmp, { force: true })
    return fs.openSync(tmp, flags, 0o644)
  }
}

/**
 * Write this process's pid file for `naaccord-ipc reload`: `{ pid, startTime, socketPath }`,
 * through the safe-path rules. The folder chain is checked as for any file we trust (owned by
 * this uid or root, writable by nobody else: a shared 1777 folder such as /tmp is refused), the
 * content goes to a temp file beside it created with O_CREAT|O_EXCL|O_NOFOLLOW (never through a
 * link), mode 0644 through the descriptor, then rename(2) puts it in place: a reader never sees
 * half a file, and a link at the path is replaced, not followed.
 *
 * @throws {UnsafePathError} IPC_UNSAFE_PATH: the pid file's folder, or a folder or link on its way, is unsafe.
 * @throws {SupervisorError} IPC_SUPERVISOR: its folder is missing or the file cannot be written.
 * @example
 * const written = writePidFile('/run/naaccord/service.sock.pid', '/run/naaccord/service.sock')
 */
export function writePidFile(file: string, socketPath: string): WrittenPidFile {
  const realDir = checkFolderChain(file, SUBJECT, trustedUids())
  if (typeof realDir !== 'string') {
    throw new SupervisorError(`cannot write the supervisor pid file ${file}: ${realDir.missing} does not exist; create the folder (owned by uid ${myUid()} or root, mode 0755) or choose another --pid-file`)
  }
  const target = path.join(realDir, path.basename(file))
  const tmp = `${target}.${process.pid}.tmp`
  const record: PidRecord = { pid: process.pid, startTime: readProcessStartTime(process.pid), socketPath }
  let st: fs.Stats
  try {
    const fd = createExclusive(tmp)
    try {
      fs.fchmodSync(fd, 0o644) // the pid is no secret; the umask must not hide it from an operator's reload
      fs.writeSync(fd, `${JSON.stringify(record)}\n`)
      st = fs.fstatSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(tmp, target)
  } catch (err) {
    fs.rmSync(tmp, { force: true })
    throw new SupervisorError(`cannot write the supervisor pid file ${target} (${errnoOf(err)}) as uid ${myUid()}; check the folder's owner and mode, or choose another --pid-file`, { cause: err })
  }
  return { path: target, dev: st.dev, ino: st.ino }
}

/**
 * Remove the pid file if it is still the one this process wrote (same device and inode). Never throws.
 *
 * @example
 * removePidFile(written)
 */
export function removePidFile(written: WrittenPidFile): void {
  try {
    const now = fs.lstatSync(written.path)
    if (now.ino === written.ino && now.dev === written.dev) fs.unlinkSync(written.path)
  } catch {}
}

/** Where `naaccord-ipc reload` looks: the pid file, and the socket whose supervisor it must name. */
export interface ReloadTarget {
  /** The pid file to read. */
  readonly pidFile: string
  /** The socket: the pid file's own when it names one, else this. */
  readonly socketPath: string
  /** Whether the operator named socketPath (--socket): then a pid file for another socket is refused. */
  readonly socketNamed: boolean
}

function parseRecord(data: Buffer, file: string): PidRecord {
  let record: PidRecord
  try {
    record = JSON.parse(data.toString('utf8')) as PidRecord
  } catch (err) {
    throw new SupervisorError(`the supervisor pid file ${file} is not JSON; remove it and start "naaccord-ipc run" again`, { cause: err })
  }
  if (record === null || typeof record !== 'object' || !Number.isSafeInteger(record.pid) || record.pid <= 0) {
    throw new SupervisorError(`the supervisor pid file ${file} holds no pid; remove it and start "naaccord-ipc run" again`)
  }
  if (record.startTime !== undefined && !Number.isSafeInteger(record.startTime)) {
    throw new SupervisorError(`the supervisor pid file ${file} holds a start time that is not a number; remove it and start "naaccord-ipc run" again`)
  }
  if (record.socketPath !== undefined && (typeof record.socketPath !== 'string' || !path.isAbsolute(record.socketPath))) {
    throw new SupervisorError(`the supervisor pid file ${file} names no absolute socket path; remove it and start "naaccord-ipc run" again`)
  }
  return record
}

/** The real path of a socket path (its folder's trusted links resolved), for comparing two names of one socket. */
function realSocketPath(socketPath: string): string {
  const dir = checkFolderChain(socketPath, { ...SUBJECT, label: 'the socket', option: '--socket' }, trustedUids())
  return typeof dir === 'string' ? path.join(dir, path.basename(socketPath)) : path.resolve(socketPath)
}

/**
 * What an unsafe pid file claims, for the operator only (never acted on): its owner and the pid it
 * names, read without following a link or blocking on a FIFO. Best effort: empty when unreadable.
 */
function claimOf(file: string): string {
  try {
    const fd = fs.openSync(file, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY)
    try {
      const st = fs.fstatSync(fd)
      if (!st.isFile()) return ''
      const buf = Buffer.alloc(MAX_BYTES)
      const n = fs.readSync(fd, buf, 0, buf.length, 0)
      const pid = (JSON.parse(buf.subarray(0, n).toString('utf8')) as { pid?: unknown }).pid
      return ` ${file} is owned by uid ${st.uid}${Number.isSafeInteger(pid) ? ` and names pid ${String(pid)}` : ''}.`
    } finally {
      fs.closeSync(fd)
    }
  } catch {
    return ''
  }
}

/** The safe-path refusal of a pid file, completed for the operator: what the file claims, and that nothing was signalled. */
function refusedUnsafe(err: UnsafePathError, file: string): UnsafePathError {
  const head = `${err.path} (${err.option}): `
  const reason = err.message.startsWith(head) ? err.message.slice(head.length) : err.message
  return new UnsafePathError(
    err.path,
    `${reason}.${claimOf(file)} Nothing was signalled: a pid file that another user could have written is never trusted. ` +
      `Run reload with the supervisor's --socket (its pid file is then <socket>.pid, beside the socket), or move --pid-file to a folder owned by ${myUid() === 0 ? 'root' : `uid ${myUid()} or root`} that nobody else can write`,
    err.option,
    err.owner,
    { cause: err },
  )
}

/**
 * Send `signal` to the supervisor named in the pid file, only once it is proven to be the
 * supervisor of the socket:
 *
 * 1. the pid file is read through the safe-path rules (readSafeFile, trusted: this uid and root):
 *    a file that another user owns or could have placed (a shared 1777 folder, a foreign link or
 *    folder on the way) is refused with IPC_UNSAFE_PATH, whatever it says;
 * 2. the pid still runs with the start time it recorded (a reused pid is another process);
 * 3. the kernel says that pid holds the flock(2) lock of the socket (/proc/locks, lockHolderPids):
 *    only the process that runs `naaccord-ipc run` for this socket holds it while it runs, and no
 *    other uid can open the lock file to take it. A pid file, even one of ours, that names another
 *    process is refused with IPC_SUPERVISOR, naming the lock's real holder.
 *
 * Where the kernel does not say who holds locks (no /proc/locks), nothing is signalled.
 *
 * @throws {UnsafePathError} IPC_UNSAFE_PATH: the pid file or lock, or a folder or link on the way, is unsafe.
 * @throws {SupervisorError} IPC_SUPERVISOR: no pid file, or its pid is not the running supervisor of the socket.
 * @example
 * await signalSupervisor({ pidFile: '/run/naaccord/service.sock.pid', socketPath: '/run/naaccord/service.sock', socketNamed: true }, 'SIGHUP') // 12345
 */
export async function signalSupervisor(target: ReloadTarget, signal: NodeJS.Signals): Promise<number> {
  const file = target.pidFile
  let read: ReturnType<typeof readSafeFile>
  try {
    read = readSafeFile(file, SUBJECT, trustedUids(), MAX_BYTES)
  } catch (err) {
    if (isIpcError(err, 'IPC_UNSAFE_PATH')) throw refusedUnsafe(err, file)
    if (isIpcError(err)) throw err
    throw new SupervisorError(`cannot read the supervisor pid file ${file} (${errnoOf(err)}); is "naaccord-ipc run" running with this --socket or --pid-file?`, { cause: err })
  }
  if ('missing' in read) {
    throw new SupervisorError(`cannot read the supervisor pid file ${file} (${read.missing} does not exist); is "naaccord-ipc run" running with this --socket or --pid-file?`)
  }
  const owner = `owned by uid ${read.stat.uid}`
  const record = parseRecord(read.data, read.realPath)
  const { pid } = record
  const socketPath = record.socketPath ?? target.socketPath
  if (target.socketNamed && record.socketPath !== undefined && realSocketPath(target.socketPath) !== realSocketPath(record.socketPath)) {
    throw new SupervisorError(
      `the supervisor pid file ${read.realPath} (${owner}) is for the socket ${record.socketPath}, not ${target.socketPath}; nothing was signalled. ` +
        `Pass the --pid-file of that socket's supervisor, or --socket ${record.socketPath}`,
    )
  }
  const now = readProcessStartTime(pid)
  if (now === undefined) {
    throw new SupervisorError(`no process runs with the pid ${pid} named in ${read.realPath} (${owner}): the supervisor has stopped; start "naaccord-ipc run" again, or remove the stale file`)
  }
  if (record.startTime !== undefined && now !== record.startTime) {
    throw new SupervisorError(
      `the supervisor (pid ${pid}) named in ${read.realPath} (${owner}) is no longer running: its pid now belongs to another process (started at ${now}, not ${record.startTime}); nothing was signalled. Remove the stale file`,
    )
  }
  const holders = lockHolderPids(socketPath, '--socket')
  if (holders === undefined) {
    throw new SupervisorError(
      `cannot prove that pid ${pid} (named in ${read.realPath}, ${owner}) is the supervisor of ${socketPath}: this system has no /proc/locks to say who holds its lock; nothing was signalled. Check the process yourself, then kill -${signal.replace(/^SIG/, '')} ${pid}`,
    )
  }
  if (!holders.includes(pid)) {
    const holderText = holders.length === 0 ? 'nobody holds it, so no supervisor runs on that socket' : `the kernel says pid ${holders.join(', pid ')} holds it`
    throw new SupervisorError(
      `pid ${pid}, named in ${read.realPath} (${owner}), is not the supervisor of ${socketPath}: it does not hold the socket's lock (${holderText}); nothing was signalled. ` +
        `The pid file is stale or was not written by "naaccord-ipc run": remove it${holders.length > 0 ? `, and reload the supervisor by its lock (kill -HUP ${holders[0]}) or restart it to rewrite the file` : ''}`,
    )
  }
  try {
    process.kill(pid, signal)
  } catch (err) {
    throw new SupervisorError(`cannot signal the supervisor pid ${pid} from ${read.realPath} (${errnoOf(err)}); run reload as the user that runs the supervisor, or as root`, { cause: err })
  }
  return pid
}
