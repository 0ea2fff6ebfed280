import fs, { constants as fsc, promises as fsp } from 'node:fs'
import type { ListenOptions, Server } from 'node:net'
import path from 'node:path'
import {
  BIND_PATH_EXTRA_BYTES,
  SERVER_SOCKET_PATH_MAX,
  SUN_PATH_MAX,
  SocketInUseError,
  SocketPathAccessError,
  SocketPathTooLongError,
  UnsafeSocketPathError,
  isIpcError,
  type Logger,
} from '@naaccord/ipc-shared'
import { myUid } from './socket-path.js'

/** server.listen() as a promise that rejects on the listen error (EADDRINUSE, EACCES...). */
export function listen(server: Server, options: ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(options, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

export interface BoundSocket {
  /** Inode of the socket file we published: removal on close only if it is still this one. */
  readonly ino: number
}

/** mkdtemp(3) replaces six X with letters and digits. */
const TEMP_SUFFIX = /^[A-Za-z0-9]{6}$/
const BOUND_NAME = 's'
/** link(2) errors that mean the filesystem has no hard links (vfat, some FUSE and network filesystems). */
const NO_HARD_LINKS = new Set(['EPERM', 'EOPNOTSUPP', 'ENOTSUP', 'ENOSYS'])

/** The prefix of the private bind folders of `socketPath`: `.<name>.` in the same folder. */
function bindFolderPrefix(socketPath: string): string {
  return `.${path.basename(socketPath)}.`
}

/**
 * Whether `boundPath` (as getsockname reports it) is exactly the name bindSocket binds
 * `socketPath` under before publishing it: `<folder>/.<name>.XXXXXX/s`, in the very folder of
 * `socketPath` (both real paths; compared as strings, nothing resolved). A socket that
 * `naaccord-ipc run` hands to its app reports this name, since the kernel keeps the name a socket
 * was bound to after link(2) publishes it and the private folder is removed.
 *
 * @example
 * isPrivateBindPath('/run/naaccord/.service.sock.Ab12Cd/s', '/run/naaccord/service.sock') // true
 * isPrivateBindPath('/run/naaccord/.evil/s', '/run/naaccord/service.sock') // false
 */
export function isPrivateBindPath(boundPath: string, socketPath: string): boolean {
  const folder = path.dirname(boundPath)
  const prefix = bindFolderPrefix(socketPath)
  const name = path.basename(folder)
  return (
    path.basename(boundPath) === BOUND_NAME &&
    path.dirname(folder) === path.dirname(socketPath) &&
    name.startsWith(prefix) &&
    TEMP_SUFFIX.test(name.slice(prefix.length))
  )
}


/**
 * Bind `server` to `socketPath` so that the socket is never reachable with a wider mode than
 * `mode`, not even for a moment. bind(2) creates the file with the process umask and Node has no
 * mode option, and the kernel checks the mode at connect(2); so we bind inside a private 0700
 * folder beside the final path (`.<name>.XXXXXX/s`: nobody else can reach the socket there), set
 * mode and group, and then publish it at the final path with link(2), which, unlike rename(2),
 * refuses to replace a file that appeared there meanwhile. The private folder is removed at once;
 * one left by a crash is removed by the next start (removeStrayBindFolders, under the lock).
 * HAProxy publishes its sockets by renaming a bound socket the same way. No umask juggling.
 *
 * The bound path is 10 bytes longer than `socketPath` and must fit sun_path: refused with
 * IPC_SOCKET_PATH_TOO_LONG before anything is created. Call with the socket lock held and the
 * folder checked (ensureSocketFolder); works on any net.Server (http, https, plain).
 *
 * @throws {SocketPathTooLongError} IPC_SOCKET_PATH_TOO_LONG: the bound path would not fit sun_path.
 * @throws {SocketInUseError} IPC_SOCKET_IN_USE: a file appeared at `socketPath` meanwhile.
 * @throws {SocketPathAccessError} IPC_SOCKET_PATH_ACCESS: the folder, bind or link failed (EACCES, EROFS...).
 * @example
 * const server = net.createServer()
 * const { ino } = await bindSocket(server, '/run/naaccord/service.sock', 0o660, naaccordGid)
 */
export async function bindSocket(server: Server, socketPath: string, mode: number, gid: number | undefined): Promise<BoundSocket> {
  const dir = path.dirname(socketPath)
  assertBindPathFits(socketPath, dir)
  const privateDir = await createPrivateBindFolder(dir, socketPath)
  const tmpPath = path.join(privateDir, BOUND_NAME)
  try {
    await makePrivate(privateDir)
    await bindPrivately(server, tmpPath, mode, gid)
    await publish(tmpPath, socketPath)
    const st = await fsp.lstat(socketPath)
    return { ino: st.ino }
  } catch (err) {
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()))
    if (isIpcError(err)) throw err
    throw new SocketPathAccessError(socketPath, `cannot bind the socket (${(err as NodeJS.ErrnoException).code ?? String(err)}) as uid ${myUid()}`, { cause: err })
  } finally {
    await fsp.rm(privateDir, { recursive: true, force: true })
  }
}

/** Refuse, before anything is created, a socket path whose private bind path would not fit sun_path. */
function assertBindPathFits(socketPath: string, dir: string): void {
  const longest = path.join(dir, `${bindFolderPrefix(socketPath)}XXXXXX`, BOUND_NAME)
  if (Buffer.byteLength(longest) > SUN_PATH_MAX) {
    throw new SocketPathTooLongError(
      socketPath,
      SERVER_SOCKET_PATH_MAX,
      ` for a server (the socket is bound ${BIND_PATH_EXTRA_BYTES} bytes deeper, at ${longest}, and sun_path holds ${SUN_PATH_MAX})`,
    )
  }
}

/** mkdtemp the private bind folder `.<name>.XXXXXX` beside the socket. */
async function createPrivateBindFolder(dir: string, socketPath: string): Promise<string> {
  try {
    return await fsp.mkdtemp(path.join(dir, bindFolderPrefix(socketPath)))
  } catch (err) {
    throw new SocketPathAccessError(dir, `cannot create the private bind folder (${(err as NodeJS.ErrnoException).code}) as uid ${myUid()}; the server needs write access to its socket folder`, { cause: err })
  }
}

/** mkdtemp makes the folder 0700 less the umask; make it exactly 0700 through a descriptor. */
async function makePrivate(folder: string): Promise<void> {
  const fh = await fsp.open(folder, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW)
  try {
    await fh.chmod(0o700)
  } finally {
    await fh.close()
  }
}

/** Bind inside the private folder, then set the socket's mode and group there. */
async function bindPrivately(server: Server, tmpPath: string, mode: number, gid: number | undefined): Promise<void> {
  try {
    await listen(server, { path: tmpPath, backlog: 511 })
  } catch (err) {
    throw new SocketPathAccessError(tmpPath, `cannot bind the socket (${(err as NodeJS.ErrnoException).code}) as uid ${myUid()}`, { cause: err })
  }
  // Inside our private 0700 folder nobody else can swap the socket: path calls are safe here.
  await fsp.chmod(tmpPath, mode)
  if (gid !== undefined) await fsp.chown(tmpPath, myUid(), gid)
}

/** Publish the bound socket at `socketPath` with link(2), which never replaces a file that appeared there. */
async function publish(tmpPath: string, socketPath: string): Promise<void> {
  try {
    await fsp.link(tmpPath, socketPath)
    await fsp.unlink(tmpPath)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') throw new SocketInUseError(socketPath, undefined, 'another socket appeared at', { cause: err })
    if (!NO_HARD_LINKS.has(code ?? '')) {
      // ENOSPC, EDQUOT, EACCES, EROFS, EIO...: the folder or its filesystem, not the lack of hard links.
      const dir = path.dirname(socketPath)
      throw new SocketPathAccessError(
        socketPath,
        `cannot publish the socket with link(2) (${code}) as uid ${myUid()}; ${code === 'ENOSPC' || code === 'EDQUOT' ? `the filesystem of ${dir} is full (space, inodes or quota): free some` : "check the folder's owner, mode and filesystem"}`,
        { cause: err },
      )
    }
    throw new UnsafeSocketPathError(
      socketPath,
      `cannot publish the socket with link(2) (${code}); put the socket on a filesystem with hard links, such as /run (tmpfs)`,
      { cause: err },
    )
  }
}

/**
 * With the socket lock held: remove private bind folders of this socket (`.<name>.XXXXXX/`) left
 * by a server killed while binding. Only folders of exactly that name, owned by this process's
 * uid, holding nothing but the bound socket `s`, are removed (nobody else binds for this name
 * while we hold its lock); anything else is left alone and logged.
 *
 * @returns how many folders were removed.
 * @example
 * await removeStrayBindFolders('/run/naaccord/service.sock', log)
 */
export async function removeStrayBindFolders(socketPath: string, log: Logger): Promise<number> {
  const dir = path.dirname(socketPath)
  const prefix = bindFolderPrefix(socketPath)
  let removed = 0
  let names: string[]
  try {
    names = await fsp.readdir(dir)
  } catch {
    return 0
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !TEMP_SUFFIX.test(name.slice(prefix.length))) continue
    const folder = path.join(dir, name)
    try {
      const st = await fsp.lstat(folder)
      if (!st.isDirectory() || st.uid !== myUid()) {
        log.warn({ path: folder, uid: st.uid }, 'left alone: looks like a private bind folder but is not ours')
        continue
      }
      const inside = await fsp.readdir(folder)
      if (inside.some((n) => n !== BOUND_NAME)) {
        log.warn({ path: folder, entries: inside.length }, 'left alone: a private bind folder holding something else')
        continue
      }
      if (inside.length > 0) await fsp.unlink(path.join(folder, BOUND_NAME))
      await fsp.rmdir(folder)
      removed++
      log.warn({ path: folder }, 'removed a private bind folder left by a server that stopped while binding')
    } catch (err) {
      log.warn({ path: folder, err: { code: (err as NodeJS.ErrnoException).code } }, 'could not remove a stray private bind folder')
    }
  }
  return removed
}

/**
 * Remove the socket only if it is still the one we published (same inode). Idempotent and safe
 * to call at any time, also while connections are still draining (they stay open).
 *
 * @example
 * await unlinkIfOurs('/run/naaccord/service.sock', bound.ino) // true when removed
 */
export async function unlinkIfOurs(socketPath: string, ino: number): Promise<boolean> {
  return unlinkIfOursNow(socketPath, ino)
}

/**
 * unlinkIfOurs, done before it returns: close() gives the path back at once (two syscalls), so a
 * successor started right after `close()` is called finds it free.
 */
export function unlinkIfOursNow(socketPath: string, ino: number): boolean {
  try {
    const st = fs.lstatSync(socketPath)
    if (!st.isSocket() || st.ino !== ino) return false
    fs.unlinkSync(socketPath)
    return true
  } catch {
    return false
  }
}
