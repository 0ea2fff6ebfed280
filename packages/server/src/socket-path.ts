import { constants as fsc, promises as fsp, type Stats } from 'node:fs'
import path from 'node:path'
import { SocketPathAccessError, UnsafeSocketPathError, isIpcError } from '@naaccord/ipc-shared'

const S_ISVTX = 0o1000
/** path_resolution(7): Linux gives up after 40 symlinks (ELOOP). */
const MAX_SYMLINKS = 40
/** Folders above the socket's own folder that we create (mkdir -p) get this mode. */
const PARENT_DIR_MODE = 0o755

/** This process's uid (-1 where the platform has none), as named in refusals. */
export function myUid(): number {
  return process.getuid?.() ?? -1
}

function ownerIsTrusted(st: Stats, uid: number): boolean {
  return st.uid === uid || st.uid === 0
}

/** `0o755`, with the sticky bit when set: `0o1777`. */
export function modeText(mode: number): string {
  return `0o${(mode & 0o7777).toString(8).padStart(3, '0')}`
}

/** "owned by uid 0, mode 0o755" for a message. */
function found(st: Stats): string {
  return `owned by uid ${st.uid}, group ${st.gid}, mode ${modeText(st.mode)}`
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'error'
}

/**
 * What a refused folder should tell the user to do. A sticky folder that others can write (/tmp)
 * is shared by design: the fix is a private subfolder, never `chmod go-w /tmp`.
 */
function writableHint(dir: string, st: Stats, isSocketFolder: boolean, socketName: string): string {
  if (st.mode & S_ISVTX) {
    return `a sticky folder shared with other users (like /tmp) cannot hold the socket itself; use a private subfolder, e.g. ${path.join(dir, 'naaccord', socketName)}`
  }
  return isSocketFolder
    ? `use a private subfolder (e.g. ${path.join(dir, 'naaccord', socketName)}), or, if the folder is yours alone, chmod go-w ${dir}`
    : `chmod go-w ${dir} (whoever can write it can rename what lies below), or choose a socketPath under a folder only its owner can change`
}

/**
 * A folder is safe to lie on the socket's path when its owner is us or root and nobody else can
 * create, rename or remove entries in it: no group/other write bit, unless the sticky bit limits
 * renames and removals to each entry's owner (/tmp), which is enough above the socket's folder
 * (the entry below it is ours or root's) but never for the socket's own folder.
 */
function checkFolder(dir: string, st: Stats, uid: number, isSocketFolder: boolean, socketName: string): void {
  if (!st.isDirectory()) {
    throw new UnsafeSocketPathError(dir, `is not a folder (${found(st)}); the socket path must be inside a folder`)
  }
  if (!ownerIsTrusted(st, uid)) {
    throw new UnsafeSocketPathError(
      dir,
      `is ${found(st)}, not owned by this process (uid ${uid}) or root, so its owner could swap what lies below it; ` +
        `use a folder owned by uid ${uid} (e.g. chown ${uid} ${dir}) or by root`,
    )
  }
  const writableByOthers = (st.mode & 0o022) !== 0
  const sticky = (st.mode & S_ISVTX) !== 0
  if (writableByOthers && !(sticky && !isSocketFolder)) {
    throw new UnsafeSocketPathError(
      dir,
      `is writable by ${st.mode & 0o002 ? 'others' : 'its group'} (${found(st)}; this process is uid ${uid}), so another user could replace ` +
        `${isSocketFolder ? 'the socket' : 'a folder below it'}; ${writableHint(dir, st, isSocketFolder, socketName)}`,
    )
  }
}

/**
 * A symlink on the way is followed only when nobody but us or root could have made or can change
 * it: owned by us or root (its containing folder has passed checkFolder, so nobody else can
 * replace it: a sticky /tmp only lets the link's owner rename or remove it). A link that another
 * user owns, as one planted in /tmp, is refused. systemd's chase() with CHASE_SAFE does the same.
 */
function checkSymlink(link: string, st: Stats, container: Stats, uid: number): void {
  if (!ownerIsTrusted(st, uid)) {
    throw new UnsafeSocketPathError(
      link,
      `is a symlink owned by uid ${st.uid}, in ${path.dirname(link)} (${found(container)}); this process (uid ${uid}) follows only links ` +
        'owned by itself or root, since another user could point it anywhere. Give the real path as socketPath, or remove the link if it is not yours',
    )
  }
}

function accessError(target: string, what: string, err: unknown, parent: Stats | undefined, uid: number, fix: string): SocketPathAccessError {
  const where = parent ? `; ${path.dirname(target)} is ${found(parent)}` : ''
  return new SocketPathAccessError(target, `cannot ${what} (${errnoOf(err)})${where}; this process runs as uid ${uid}. ${fix}`, { cause: err })
}

/**
 * A folder we are still creating: sticky, owner-only (`0o1700`). mkdir(2) makes it so, and only the
 * last step, once the group is set, gives it its real mode. A process killed in between leaves a
 * folder in this state, never one that looks finished with the wrong group or a umask-narrowed
 * mode: the next start recognises it (ours, and no one sets a private folder sticky) and finishes it.
 */
const UNFINISHED_MODE = 0o1700

function isUnfinished(st: Stats, uid: number): boolean {
  return st.isDirectory() && st.uid === uid && (st.mode & 0o1077) === S_ISVTX
}

/**
 * Create one missing folder inside a checked folder (as UNFINISHED_MODE), then finish it. Returns
 * false when something appeared at the name first (the caller looks again).
 */
async function createFolder(dir: string, parentSt: Stats, mode: number, gid: number | undefined, uid: number): Promise<boolean> {
  try {
    await fsp.mkdir(dir, { mode: UNFINISHED_MODE })
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') return false
    throw accessError(
      dir,
      'create the socket folder',
      err,
      parentSt,
      uid,
      `Create it for this user first (e.g. install -d -o ${uid} -m ${modeText(mode).slice(2)} ${dir}, or systemd RuntimeDirectory=), or choose a socketPath in a folder this user owns`,
    )
  }
  await finishFolder(dir, mode, gid, uid, 'created')
  return true
}

/**
 * Set the group, then the mode (last) of a folder of ours that is still UNFINISHED_MODE, through a
 * descriptor opened with O_DIRECTORY|O_NOFOLLOW and confirmed by fstat: never chmod/chown by
 * path, which would follow a link swapped in meanwhile.
 */
async function finishFolder(dir: string, mode: number, gid: number | undefined, uid: number, how: 'created' | 'resumed'): Promise<void> {
  let fh: fsp.FileHandle
  try {
    fh = await fsp.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW)
  } catch (err) {
    throw new UnsafeSocketPathError(dir, `was replaced right after this process (uid ${uid}) ${how === 'created' ? 'created' : 'found'} it (${errnoOf(err)}); someone else is at work in ${path.dirname(dir)}`, { cause: err })
  }
  try {
    const st = await fh.stat()
    if (!isUnfinished(st, uid)) {
      throw new UnsafeSocketPathError(dir, `is not the folder this process (uid ${uid}) ${how === 'created' ? 'just created' : 'found unfinished'} (${found(st)}); someone else is at work in ${path.dirname(dir)}`)
    }
    if (gid !== undefined) {
      await fh.chown(uid, gid).catch((err: unknown) => {
        throw new SocketPathAccessError(
          dir,
          `cannot give the new socket folder to group ${gid} (${errnoOf(err)}); this process (uid ${uid}) must be a member of that group, or run as root`,
          { cause: err },
        )
      })
    }
    // The last step: the folder now has its exact mode (no umask) and is finished.
    await fh.chmod(mode)
  } finally {
    await fh.close()
  }
}

/**
 * Check the socket's folder and every folder and symlink on the way to it, as written, from `/`
 * down, creating what is missing only after the part above it has been checked:
 *
 * - every folder on the way is owned by us or root and not writable by group or others (a sticky
 *   folder such as /tmp is accepted above the socket's folder, never as it);
 * - a symlink on the way (`/var/run -> /run`) is followed only when owned by us or root, and its
 *   target is walked the same way;
 * - a missing folder is created (the socket's folder with `dirMode` and `gid`, those above it 0755)
 *   and its mode and group set through a descriptor (O_DIRECTORY|O_NOFOLLOW, fstat), never by path;
 * - a folder this process cannot write gets `IPC_SOCKET_PATH_ACCESS` with its owner, mode and our uid.
 *
 * Once checked, nobody but us or root can change any part of the chain, so the returned real
 * folder path stays what was checked. Usable on its own (a supervisor that binds a plain
 * net.Server calls this, then acquireSocketLock, clearStaleSocket and bindSocket).
 *
 * @returns the socket folder's real path (symlinks resolved); join the socket's name to it.
 * @throws {UnsafeSocketPathError} IPC_UNSAFE_SOCKET_PATH: a folder or link on the way is unsafe.
 * @throws {SocketPathAccessError} IPC_SOCKET_PATH_ACCESS: cannot create or use the folder.
 * @example
 * const realDir = await ensureSocketFolder('/run/naaccord/service.sock', 0o750, naaccordGid)
 * const fsPath = path.join(realDir, 'service.sock')
 */
export async function ensureSocketFolder(socketPath: string, dirMode: number, gid: number | undefined): Promise<string> {
  try {
    return await walkAndCreate(socketPath, dirMode, gid)
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

async function walkAndCreate(socketPath: string, dirMode: number, gid: number | undefined): Promise<string> {
  const uid = myUid()
  const socketName = path.basename(socketPath)
  const queue = path.dirname(path.resolve(socketPath)).split('/').filter((p) => p !== '' && p !== '.')
  let real = '/'
  let realSt = await fsp.stat('/')
  checkFolder('/', realSt, uid, queue.length === 0, socketName)
  let links = 0
  let creations = 0
  /** Folders this walk created or finished: never finished twice. */
  const finished = new Set<string>()
  while (queue.length > 0) {
    const name = queue.shift()!
    if (name === '..') {
      // Every prefix of `real` was checked on the way down.
      real = path.dirname(real)
      realSt = await fsp.lstat(real)
      continue
    }
    const next = path.join(real, name)
    const isSocketFolder = queue.length === 0
    let st: Stats
    try {
      st = await fsp.lstat(next)
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') {
        throw accessError(next, 'look at the socket folder', err, realSt, uid, 'Give this user search (x) permission on the folders above it, or choose another socketPath')
      }
      if (++creations > MAX_SYMLINKS) throw new UnsafeSocketPathError(next, 'keeps appearing and disappearing while this process creates it; someone else is at work here')
      if (await createFolder(next, realSt, isSocketFolder ? dirMode : PARENT_DIR_MODE, isSocketFolder ? gid : undefined, uid)) finished.add(next)
      queue.unshift(name) // look again: lstat and check what now stands there
      continue
    }
    if (isUnfinished(st, uid) && !finished.has(next)) {
      // Left by a process of ours killed while creating it: finish it now, then look again.
      if (++creations > MAX_SYMLINKS) throw new UnsafeSocketPathError(next, 'keeps changing while this process finishes it; someone else is at work here')
      await finishFolder(next, isSocketFolder ? dirMode : PARENT_DIR_MODE, isSocketFolder ? gid : undefined, uid, 'resumed')
      finished.add(next) // once: a dirMode of 0o1700 would look unfinished for ever
      queue.unshift(name)
      continue
    }
    if (st.isSymbolicLink()) {
      checkSymlink(next, st, realSt, uid)
      if (++links > MAX_SYMLINKS) throw new UnsafeSocketPathError(socketPath, `has more than ${MAX_SYMLINKS} symlinks on its way (a loop?)`)
      const target = await fsp.readlink(next)
      if (path.isAbsolute(target)) {
        real = '/'
        realSt = await fsp.stat('/')
      }
      queue.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'))
      continue
    }
    checkFolder(next, st, uid, isSocketFolder, socketName)
    real = next
    realSt = st
  }
  // The walk can end on a folder checked on the way as one above the socket's (a sticky /tmp):
  // a link whose target ends in `.` or `..` (`here -> .`, `up -> ..`) leads back to it. Whatever
  // the route, the folder the socket lands in is checked as the socket's folder.
  checkFolder(real, realSt, uid, true, socketName)
  // The socket's own folder: this process must be able to create the socket and its lock there.
  try {
    await fsp.access(real, fsc.W_OK | fsc.X_OK)
  } catch (err) {
    throw accessError(
      path.join(real, socketName),
      'create the socket or its lock',
      err,
      realSt,
      uid,
      `Make the folder this user's (e.g. chown ${uid} ${real}, or systemd RuntimeDirectory= with User=), or run the server as its owner`,
    )
  }
  return real
}

export type SocketPathState = { kind: 'absent' } | { kind: 'socket'; ino: number; uid: number } | { kind: 'other'; what: string }

/** What stands at the socket path, without following a symlink. */
export async function inspectSocketPath(socketPath: string): Promise<SocketPathState> {
  let st: Stats
  try {
    st = await fsp.lstat(socketPath)
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return { kind: 'absent' }
    throw new SocketPathAccessError(socketPath, `cannot look at the socket path (${errnoOf(err)}) as uid ${myUid()}; check the folder's permissions`, { cause: err })
  }
  if (st.isSocket()) return { kind: 'socket', ino: st.ino, uid: st.uid }
  const what = st.isSymbolicLink() ? 'a symlink' : st.isDirectory() ? 'a folder' : st.isFile() ? 'a regular file' : 'not a socket'
  return { kind: 'other', what: `${what} (${found(st)})` }
}

/** Refuse anything at the socket path that is not a socket; touch nothing. */
export function refuseNonSocket(socketPath: string, what: string): never {
  throw new UnsafeSocketPathError(
    socketPath,
    `is ${what}, not a socket; naaccord-ipc (running as uid ${myUid()}) never removes it. Remove it yourself if it is yours, or choose another socketPath`,
  )
}
