// Through the fs object (not named imports), so a test that wraps fs calls sees every step.
import fs, { constants as fsc, type Stats } from 'node:fs'
import path from 'node:path'
import { SUN_PATH_MAX } from './constants.js'
import { SocketPathAccessError, SocketPathTooLongError, UnsafePathError, UnsafeSocketPathError, isIpcError } from './errors.js'

/**
 * The one safe-path mechanism of naaccord-ipc. Everything that binds, connects to, reads or
 * signals through a path walks it here first: the server's socket folder (created if missing),
 * the client's socket, the metrics socket, the supervisor's pid file, the addon override and
 * certificate files. The rules are the same for all of them:
 *
 * - every folder from `/` down is owned by a trusted uid and writable by nobody else (a sticky
 *   shared folder such as /tmp is accepted above the final folder, never as it);
 * - a symlink on the way is followed only when a trusted uid owns it (its folder has passed the
 *   check, so nobody else can replace it), and its target is walked the same way;
 * - the entry at the end is lstat'ed, never followed unless it is itself a trusted link, and must
 *   be of the expected kind and owned by a trusted uid;
 * - a socket path is checked against sun_path, as given and as resolved: never truncated.
 *
 * "Trusted" is this process's uid and root, plus whoever the caller names (the client's expected
 * server uid). systemd's chase() with CHASE_SAFE applies the same rule.
 */

const S_ISVTX = 0o1000
/** path_resolution(7): Linux gives up after 40 symlinks (ELOOP). */
const MAX_SYMLINKS = 40
/** Folders above the final folder that we create (mkdir -p) get this mode. */
const PARENT_DIR_MODE = 0o755
/** A folder we are still creating: sticky, owner-only (see finishFolder). */
const UNFINISHED_MODE = 0o1700

/** This process's uid (-1 where the platform has none), as named in refusals. */
export function myUid(): number {
  return process.getuid?.() ?? -1
}

/**
 * The uids whose folders, links and files are trusted on a path: this process's uid and root,
 * plus `extra` (e.g. the uid the client expects the server to run as).
 *
 * @example
 * trustedUids(998) // Set { <our uid>, 0, 998 }
 */
export function trustedUids(...extra: ReadonlyArray<number | undefined>): ReadonlySet<number> {
  const set = new Set<number>([myUid(), 0])
  for (const u of extra) if (u !== undefined) set.add(u)
  return set
}

/** `0o755`, with the sticky bit when set: `0o1777`. */
export function modeText(mode: number): string {
  return `0o${(mode & 0o7777).toString(8).padStart(3, '0')}`
}

/** "owned by uid 0, group 0, mode 0o755" for a message. */
export function describeStat(st: Stats): string {
  return `owned by uid ${st.uid}, group ${st.gid}, mode ${modeText(st.mode)}`
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'error'
}

function trustedText(trust: ReadonlySet<number>): string {
  const others = [...trust].filter((u) => u !== 0 && u !== myUid())
  return `this process (uid ${myUid()})${others.length ? `, uid ${others.join(', uid ')}` : ''} or root`
}

/** What the walk is for: names the thing in every refusal, and picks the error class. */
export interface SafePathSubject {
  /** `socket`: refusals are IPC_UNSAFE_SOCKET_PATH; `file`: IPC_UNSAFE_PATH. */
  readonly kind: 'socket' | 'file'
  /** How to name it in a message: "the socket", "the pid file", "the certificate file". */
  readonly label: string
  /** The option or variable that named the path, so a refusal says what to change. */
  readonly option: string
}

function unsafe(subject: SafePathSubject, at: string, reason: string, owner?: number, cause?: unknown): Error {
  const options = cause === undefined ? undefined : { cause }
  return subject.kind === 'socket' ? new UnsafeSocketPathError(at, reason, options, owner) : new UnsafePathError(at, reason, subject.option, owner, options)
}

function writableHint(dir: string, st: Stats, isFinal: boolean, subject: SafePathSubject, name: string): string {
  if (st.mode & S_ISVTX) {
    return `a sticky folder shared with other users (like /tmp) cannot hold ${subject.label} itself; use a private subfolder, e.g. ${path.join(dir, 'naaccord', name)}`
  }
  return isFinal
    ? `use a private subfolder (e.g. ${path.join(dir, 'naaccord', name)}), or, if the folder is yours alone, chmod go-w ${dir}`
    : `chmod go-w ${dir} (whoever can write it can rename what lies below), or choose a ${subject.option} under a folder only its owner can change`
}

/**
 * A folder is safe to lie on the path when a trusted uid owns it and nobody else can create,
 * rename or remove entries in it: no group/other write bit, unless the sticky bit limits renames
 * and removals to each entry's owner (/tmp), which is enough above the final folder (the entry
 * below it is trusted) but never for the final folder itself.
 */
function checkFolder(dir: string, st: Stats, trust: ReadonlySet<number>, isFinal: boolean, subject: SafePathSubject, name: string): void {
  if (!st.isDirectory()) {
    throw unsafe(subject, dir, `is not a folder (${describeStat(st)}); ${subject.label} must be inside a folder`, st.uid)
  }
  if (!trust.has(st.uid)) {
    throw unsafe(
      subject,
      dir,
      `is ${describeStat(st)}, not owned by ${trustedText(trust)}, so its owner could swap what lies below it; ` +
        `use a folder owned by uid ${myUid()} (e.g. chown ${myUid()} ${dir}) or by root${subject.kind === 'socket' && trust.size > 2 ? ', or by the expected server uid' : ''}`,
      st.uid,
    )
  }
  const writableByOthers = (st.mode & 0o022) !== 0
  const sticky = (st.mode & S_ISVTX) !== 0
  if (writableByOthers && !(sticky && !isFinal)) {
    throw unsafe(
      subject,
      dir,
      `is writable by ${st.mode & 0o002 ? 'others' : 'its group'} (${describeStat(st)}; this process is uid ${myUid()}), so another user could replace ` +
        `${isFinal ? subject.label : 'a folder below it'}; ${writableHint(dir, st, isFinal, subject, name)}`,
      st.uid,
    )
  }
}

/**
 * A symlink is followed only when nobody but a trusted uid could have made or can change it:
 * owned by a trusted uid (its containing folder has passed checkFolder, so nobody else can
 * replace it). A link that another user owns, as one planted in /tmp, is refused.
 */
function checkSymlink(link: string, st: Stats, container: Stats, trust: ReadonlySet<number>, subject: SafePathSubject): void {
  if (!trust.has(st.uid)) {
    throw unsafe(
      subject,
      link,
      `is a symlink owned by uid ${st.uid}, in ${path.dirname(link)} (${describeStat(container)}); ${trustedText(trust)} is trusted to make links on the way to ${subject.label}, ` +
        `since another user could point it anywhere. Give the real path as ${subject.option}, or remove the link if it is not yours`,
      st.uid,
    )
  }
}

function accessError(target: string, what: string, err: unknown, parent: Stats | undefined, fix: string): SocketPathAccessError {
  const where = parent ? `; ${path.dirname(target)} is ${describeStat(parent)}` : ''
  return new SocketPathAccessError(target, `cannot ${what} (${errnoOf(err)})${where}; this process runs as uid ${myUid()}. ${fix}`, { cause: err })
}

function isUnfinished(st: Stats, uid: number): boolean {
  return st.isDirectory() && st.uid === uid && (st.mode & 0o1077) === S_ISVTX
}

/** A folder of `uid` with exactly `mode` (and `gid` when given): what finishFolder makes. */
function isFinishedAsAsked(st: Stats, uid: number, mode: number, gid: number | undefined): boolean {
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o7777) !== mode) return false
  // No group asked: only a folder no group can use, or one of our own group, is as asked (a start
  // of ours with a socketGroup may have finished it for another group).
  if (gid === undefined) return (mode & 0o070) === 0 || st.gid === process.getegid?.()
  return st.gid === gid
}

/** How to create missing folders (the server's socket folder); absent: nothing is created. */
export interface CreateFolders {
  /** Mode of the final folder when created. */
  readonly dirMode: number
  /** Group of the final folder when created. */
  readonly gid: number | undefined
}

/**
 * Create one missing folder inside a checked folder (as UNFINISHED_MODE), then finish it. Returns
 * false when something appeared at the name first (the caller looks again).
 */
function createFolder(dir: string, parentSt: Stats, mode: number, gid: number | undefined): boolean {
  try {
    fs.mkdirSync(dir, { mode: UNFINISHED_MODE })
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') return false
    throw accessError(
      dir,
      'create the socket folder',
      err,
      parentSt,
      `Create it for this user first (e.g. install -d -o ${myUid()} -m ${modeText(mode).slice(2)} ${dir}, or systemd RuntimeDirectory=), or choose a socketPath in a folder this user owns`,
    )
  }
  finishFolder(dir, mode, gid, 'created')
  return true
}

/**
 * Set the group, then the mode (last) of a folder of ours that is still UNFINISHED_MODE, through a
 * descriptor opened with O_DIRECTORY|O_NOFOLLOW and confirmed by fstat: never chmod/chown by
 * path, which would follow a link swapped in meanwhile. A process killed in between leaves a
 * folder in the unfinished state, never one that looks finished with the wrong group or mode:
 * the next start recognises it (ours, and no one sets a private folder sticky) and finishes it.
 */
function finishFolder(dir: string, mode: number, gid: number | undefined, how: 'created' | 'resumed'): void {
  const uid = myUid()
  let fd: number
  try {
    fd = fs.openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW)
  } catch (err) {
    throw new UnsafeSocketPathError(dir, `was replaced right after this process (uid ${uid}) ${how === 'created' ? 'created' : 'found'} it (${errnoOf(err)}); someone else is at work in ${path.dirname(dir)}`, { cause: err })
  }
  try {
    const st = fs.fstatSync(fd)
    // Another start of ours (same uid) finished it first, exactly as asked: nothing left to do.
    // Two servers racing on a new folder: each may create-or-resume, and the loser must lose on
    // the lock (IPC_SOCKET_IN_USE), not here.
    if (isFinishedAsAsked(st, uid, mode, gid)) return
    if (!isUnfinished(st, uid)) {
      throw new UnsafeSocketPathError(dir, `is not the folder this process (uid ${uid}) ${how === 'created' ? 'just created' : 'found unfinished'} (${describeStat(st)}); someone else is at work in ${path.dirname(dir)}`)
    }
    if (gid !== undefined) {
      try {
        fs.fchownSync(fd, uid, gid)
      } catch (err) {
        throw new SocketPathAccessError(
          dir,
          `cannot give the new socket folder to group ${gid} (${errnoOf(err)}); this process (uid ${uid}) must be a member of that group, or run as root`,
          { cause: err },
        )
      }
    }
    // The last step: the folder now has its exact mode (no umask) and is finished.
    fs.fchmodSync(fd, mode)
  } finally {
    fs.closeSync(fd)
  }
}

/** Where a walk ended: the real path of the final folder, and of the entry when one was asked for. */
interface WalkEnd {
  readonly realDir: string
  readonly dirStat: Stats
}

/** Where a walk stands: the folders still to walk, the real folder reached, and its counters. */
interface Walk {
  readonly queue: string[]
  real: string
  realSt: Stats
  links: number
  creations: number
  /** Folders this walk created or finished: never finished twice. */
  readonly finished: Set<string>
}

/** The lstat of `next`, or undefined when it does not exist (ENOENT, ENOTDIR); any other error is an access error. */
function lstatOrMissing(next: string, parentSt: Stats, subject: SafePathSubject): Stats | undefined {
  try {
    return fs.lstatSync(next)
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT' && errnoOf(err) !== 'ENOTDIR') {
      throw accessError(next, `look at the folder of ${subject.label}`, err, parentSt, `Give this user search (x) permission on the folders above it, or choose another ${subject.option}`)
    }
    return undefined
  }
}

/** Create the missing folder `next` (the final one with dirMode and gid, others PARENT_DIR_MODE), then look at it again. */
function createMissing(w: Walk, next: string, part: string, isFinal: boolean, create: CreateFolders): void {
  if (++w.creations > MAX_SYMLINKS) throw new UnsafeSocketPathError(next, 'keeps appearing and disappearing while this process creates it; someone else is at work here')
  if (createFolder(next, w.realSt, isFinal ? create.dirMode : PARENT_DIR_MODE, isFinal ? create.gid : undefined)) w.finished.add(next)
  w.queue.unshift(part) // look again: lstat and check what now stands there
}

/** Finish a folder left unfinished by a process of ours killed while creating it, then look at it again. */
function resumeUnfinished(w: Walk, next: string, part: string, isFinal: boolean, create: CreateFolders): void {
  if (++w.creations > MAX_SYMLINKS) throw new UnsafeSocketPathError(next, 'keeps changing while this process finishes it; someone else is at work here')
  finishFolder(next, isFinal ? create.dirMode : PARENT_DIR_MODE, isFinal ? create.gid : undefined, 'resumed')
  w.finished.add(next) // once: a dirMode of 0o1700 would look unfinished for ever
  w.queue.unshift(part)
}

/** Check the symlink `next` and walk its target in its place (from `/` when absolute). */
function followLink(w: Walk, next: string, st: Stats, trust: ReadonlySet<number>, subject: SafePathSubject, target: string): void {
  checkSymlink(next, st, w.realSt, trust, subject)
  if (++w.links > MAX_SYMLINKS) throw unsafe(subject, target, `has more than ${MAX_SYMLINKS} symlinks on its way (a loop?)`)
  const linkTarget = fs.readlinkSync(next)
  if (path.isAbsolute(linkTarget)) {
    w.real = '/'
    w.realSt = fs.lstatSync('/')
  }
  w.queue.unshift(...linkTarget.split('/').filter((p) => p !== '' && p !== '.'))
}

/**
 * Walk the folders of `target` (every component but the last), from `/` down, as written,
 * following trusted links. With `create`, missing folders are made (see createFolder); without
 * it, a missing folder returns `{ missing }`.
 */
function walkFolders(target: string, trust: ReadonlySet<number>, subject: SafePathSubject, create: CreateFolders | undefined): WalkEnd | { missing: string } {
  const uid = myUid()
  const name = path.basename(target)
  const queue = path.dirname(path.resolve(target)).split('/').filter((p) => p !== '' && p !== '.')
  const w: Walk = { queue, real: '/', realSt: fs.lstatSync('/'), links: 0, creations: 0, finished: new Set() }
  checkFolder('/', w.realSt, trust, queue.length === 0, subject, name)
  while (queue.length > 0) {
    const part = queue.shift()!
    if (part === '..') {
      // Every prefix of `real` was checked on the way down.
      w.real = path.dirname(w.real)
      w.realSt = fs.lstatSync(w.real)
      continue
    }
    const next = path.join(w.real, part)
    const isFinal = queue.length === 0
    const st = lstatOrMissing(next, w.realSt, subject)
    if (st === undefined) {
      if (!create) return { missing: next }
      createMissing(w, next, part, isFinal, create)
    } else if (create && isUnfinished(st, uid) && !w.finished.has(next)) {
      resumeUnfinished(w, next, part, isFinal, create)
    } else if (st.isSymbolicLink()) {
      followLink(w, next, st, trust, subject, target)
    } else {
      checkFolder(next, st, trust, isFinal, subject, name)
      w.real = next
      w.realSt = st
    }
  }
  // The walk can end on a folder checked on the way as one above the final one (a sticky /tmp):
  // a link whose target ends in `.` or `..` (`here -> .`, `up -> ..`) leads back to it. Whatever
  // the route, the folder the entry lands in is checked as the final folder.
  checkFolder(w.real, w.realSt, trust, true, subject, name)
  return { realDir: w.real, dirStat: w.realSt }
}

/**
 * Check the folder of `target` and every folder and symlink on the way to it, creating what is
 * missing (with `create`) only after the part above it has been checked. Once checked, nobody
 * but a trusted uid can change any part of the chain, so the returned real folder stays what was
 * checked.
 *
 * @returns the final folder's real path (symlinks resolved), or `{ missing }` without `create`.
 * @throws {UnsafeSocketPathError} IPC_UNSAFE_SOCKET_PATH (kind socket) / {UnsafePathError} IPC_UNSAFE_PATH (kind file).
 * @throws {SocketPathAccessError} IPC_SOCKET_PATH_ACCESS: cannot create or look at a folder.
 * @example
 * const dir = checkFolderChain('/run/naaccord/service.sock', { kind: 'socket', label: 'the socket', option: 'socketPath' }, trustedUids(), { dirMode: 0o700, gid: undefined })
 */
export function checkFolderChain(target: string, subject: SafePathSubject, trust: ReadonlySet<number>, create?: CreateFolders): string | { missing: string } {
  const end = walkFolders(target, trust, subject, create)
  return 'missing' in end ? end : end.realDir
}

/**
 * Check the folder chain of the server's socket, creating missing folders (the socket's folder
 * with `dirMode` and `gid`, those above it 0755), and that this process can create the socket and
 * its lock there. Trusted: this process's uid and root.
 *
 * @returns the socket folder's real path; join the socket's name to it.
 * @throws {UnsafeSocketPathError} IPC_UNSAFE_SOCKET_PATH: a folder or link on the way is unsafe.
 * @throws {SocketPathAccessError} IPC_SOCKET_PATH_ACCESS: cannot create or use the folder.
 * @example
 * const realDir = await ensureSocketFolder('/run/naaccord/service.sock', 0o750, naaccordGid)
 */
export async function ensureSocketFolder(socketPath: string, dirMode: number, gid: number | undefined, option = 'socketPath'): Promise<string> {
  try {
    const subject: SafePathSubject = { kind: 'socket', label: 'the socket', option }
    const real = checkFolderChain(socketPath, subject, trustedUids(), { dirMode, gid }) as string
    try {
      fs.accessSync(real, fsc.W_OK | fsc.X_OK)
    } catch (err) {
      throw accessError(
        path.join(real, path.basename(socketPath)),
        'create the socket or its lock',
        err,
        fs.lstatSync(real),
        `Make the folder this user's (e.g. chown ${myUid()} ${real}, or systemd RuntimeDirectory= with User=), or run the server as its owner`,
      )
    }
    return real
  } catch (err) {
    throw asStartError(err, path.dirname(socketPath), 'check or create the socket folder')
  }
}

/**
 * Every start failure is one of ours: an error that is not (a folder removed under us, EIO...)
 * becomes IPC_SOCKET_PATH_ACCESS naming the path, the errno and our uid, with the cause kept.
 *
 * @example
 * catch (err) { throw asStartError(err, socketPath, 'bind the socket') }
 */
export function asStartError(err: unknown, target: string, what: string): Error {
  if (isIpcError(err)) return err
  return new SocketPathAccessError(target, `cannot ${what} (${errnoOf(err)}: ${err instanceof Error ? err.message : String(err)}) as uid ${myUid()}; check the folder's owner and mode`, { cause: err })
}

/** A socket (or file) found at the end of a checked chain. */
export interface SafeEntry {
  /** The real path: every trusted link resolved; connect or open this, not the path given. */
  readonly realPath: string
  /** lstat of the entry at `realPath`. */
  readonly stat: Stats
}

/**
 * Resolve `target` through the safe-path rules and check the entry at its end: the folders and
 * links on the way as in checkFolderChain; a link at the end is followed only when trusted (and
 * its target checked the same way); the entry must be of `type` and owned by a trusted uid.
 * Nothing is created. A socket's real path must fit sun_path (never truncated).
 *
 * @returns the entry, or `{ missing }` naming the first component that does not exist.
 * @example
 * const entry = resolveSafeEntry('/run/naaccord/service.sock', 'socket', { kind: 'socket', label: 'the socket', option: 'socketPath' }, trustedUids(998))
 * if ('missing' in entry) retryLater(); else net.connect(entry.realPath)
 */
export function resolveSafeEntry(target: string, type: 'socket' | 'file', subject: SafePathSubject, trust: ReadonlySet<number>): SafeEntry | { missing: string } {
  let current = path.resolve(target)
  for (let links = 0; ; links++) {
    const end = walkFolders(current, trust, subject, undefined)
    if ('missing' in end) return end
    const entryPath = path.join(end.realDir, path.basename(current))
    let st: Stats
    try {
      st = fs.lstatSync(entryPath)
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return { missing: entryPath }
      throw accessError(entryPath, `look at ${subject.label}`, err, end.dirStat, `Give this user search (x) permission on ${end.realDir}, or choose another ${subject.option}`)
    }
    if (st.isSymbolicLink()) {
      checkSymlink(entryPath, st, end.dirStat, trust, subject)
      if (links >= MAX_SYMLINKS) throw unsafe(subject, target, `has more than ${MAX_SYMLINKS} symlinks on its way (a loop?)`)
      const linkTarget = fs.readlinkSync(entryPath)
      current = path.resolve(end.realDir, linkTarget)
      continue
    }
    const isType = type === 'socket' ? st.isSocket() : st.isFile()
    if (!isType) {
      throw unsafe(subject, entryPath, `is ${kindOf(st)} (${describeStat(st)}), not ${type === 'socket' ? 'a socket' : 'a regular file'}; check ${subject.option}`, st.uid)
    }
    // A file read for its contents must not be writable by anyone but its owner: another user
    // could rewrite it in place (an ACL granting write shows in the group bits as its mask).
    if (type === 'file' && (st.mode & 0o022) !== 0) {
      throw unsafe(
        subject,
        entryPath,
        `is ${describeStat(st)}: writable by ${st.mode & 0o002 ? 'others' : 'its group'}, so another user could rewrite ${subject.label} in place; chmod go-w ${entryPath}`,
        st.uid,
      )
    }
    if (!trust.has(st.uid)) {
      throw unsafe(
        subject,
        entryPath,
        `is ${describeStat(st)}: ${subject.label} is not owned by ${trustedText(trust)}, so another user may have placed it; ` +
          (subject.kind === 'socket'
            ? `refusing to ${type === 'socket' ? 'connect' : 'use it'}. If that uid is the server's, name it (expectServer: { uid: ${st.uid} })`
            : `chown it to uid ${myUid()} or root, or point ${subject.option} at a file you own`),
        st.uid,
      )
    }
    if (type === 'socket' && Buffer.byteLength(entryPath) > SUN_PATH_MAX) {
      throw new SocketPathTooLongError(entryPath, SUN_PATH_MAX, ` (the real path of ${target})`)
    }
    return { realPath: entryPath, stat: st }
  }
}

function kindOf(st: Stats): string {
  return st.isSymbolicLink() ? 'a symlink' : st.isDirectory() ? 'a folder' : st.isFile() ? 'a regular file' : st.isSocket() ? 'a socket' : 'a special file'
}

/**
 * Read a small file (a pid file, a certificate, a key) through the safe-path rules: the chain
 * checked, then opened with O_NOFOLLOW and fstat'ed so that the descriptor read is the regular
 * file that was checked (same inode, trusted owner, writable by its owner only; with `secret`,
 * not readable by others either). A missing file (or folder on its way) is
 * `{ missing }`, for the caller to word.
 *
 * @throws {UnsafePathError} IPC_UNSAFE_PATH: the file or a folder/link on its way is unsafe, or it is larger than `maxBytes`.
 * @example
 * const r = readSafeFile('/run/naaccord/service.sock.pid', { kind: 'file', label: 'the pid file', option: '--pid-file' }, trustedUids())
 */
export function readSafeFile(
  file: string,
  subject: SafePathSubject,
  trust: ReadonlySet<number>,
  maxBytes = 1 << 20,
  secret = false,
): { data: Buffer; realPath: string; stat: Stats } | { missing: string } {
  const entry = resolveSafeEntry(file, 'file', subject, trust)
  if ('missing' in entry) return entry
  let fd: number
  try {
    fd = fs.openSync(entry.realPath, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK)
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return { missing: entry.realPath }
    throw new SocketPathAccessError(entry.realPath, `cannot open ${subject.label} (${errnoOf(err)}) as uid ${myUid()}`, { cause: err })
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile() || st.ino !== entry.stat.ino || st.dev !== entry.stat.dev || !trust.has(st.uid)) {
      throw unsafe(subject, entry.realPath, `changed between its check and its opening (${describeStat(st)}); someone else is at work in ${path.dirname(entry.realPath)}`, st.uid)
    }
    if (st.size > maxBytes) throw unsafe(subject, entry.realPath, `is ${st.size} bytes, more than the ${maxBytes} expected of ${subject.label}`, st.uid)
    // A secret (a private key) readable by every user is no longer one (group-readable, 0640 with
    // the service's group, is the usual way to share it with one service user).
    if (secret && (st.mode & 0o004) !== 0) {
      throw unsafe(subject, entry.realPath, `is ${describeStat(st)}: readable by every user, so it is no longer secret; chmod o-r ${entry.realPath} (and replace the key if others may have read it)`, st.uid)
    }
    return { data: fs.readFileSync(fd), realPath: entry.realPath, stat: st }
  } finally {
    fs.closeSync(fd)
  }
}
