import { promises as fsp, type Stats } from 'node:fs'
import path from 'node:path'
import { UnsafeSocketPathError } from '@naaccord/ipc-shared'

const S_ISVTX = 0o1000

function ownerIsTrusted(st: Stats, uid: number): boolean {
  return st.uid === uid || st.uid === 0
}

function modeText(mode: number): string {
  return `0o${(mode & 0o7777).toString(8).padStart(3, '0')}`
}

/**
 * A folder is safe to hold our socket when nobody but its owner can create, rename or remove
 * entries in it (no group/other write bit, unless the sticky bit limits removal to each
 * entry's owner, as on /tmp) and its owner is us or root. The same holds for every folder
 * above it: whoever can rename an ancestor can swap the whole path. Symlinks above the folder
 * (/var/run -> /run) are followed; the check runs on the real path.
 */
async function checkFolder(dir: string, uid: number, isSocketFolder: boolean): Promise<void> {
  const st = await fsp.stat(dir)
  if (!st.isDirectory()) throw new UnsafeSocketPathError(dir, 'is not a folder; the socket path must be inside a folder')
  if (!ownerIsTrusted(st, uid)) {
    throw new UnsafeSocketPathError(
      dir,
      `is owned by uid ${st.uid}, not by this process (uid ${uid}) or root; use a folder this user owns (e.g. chown ${uid} ${dir})`,
    )
  }
  const writableByOthers = (st.mode & 0o022) !== 0
  const sticky = (st.mode & S_ISVTX) !== 0
  if (writableByOthers && !(sticky && !isSocketFolder)) {
    throw new UnsafeSocketPathError(
      dir,
      `is writable by ${st.mode & 0o002 ? 'others' : 'its group'} (mode ${modeText(st.mode)}), so another user could replace the socket; ` +
        `chmod go-w ${dir}${isSocketFolder ? ' or let naaccord-ipc create a private folder' : ''}`,
    )
  }
}

/**
 * Make sure the socket's folder exists with `dirMode` (creating it when missing) and that it
 * and its ancestors are safe. Returns the folder's real path.
 */
export async function ensureSocketFolder(socketPath: string, dirMode: number, gid: number | undefined): Promise<string> {
  const uid = process.getuid?.() ?? -1
  const dir = path.dirname(socketPath)
  let created = false
  try {
    await fsp.mkdir(dir, { mode: dirMode })
    created = true
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      await fsp.mkdir(path.dirname(dir), { recursive: true, mode: 0o755 })
      await fsp.mkdir(dir, { mode: dirMode })
      created = true
    } else if (code !== 'EEXIST') {
      throw new UnsafeSocketPathError(dir, `cannot create the socket folder (${code}); create it owned by uid ${uid} with mode ${modeText(dirMode)}`, { cause: err })
    }
  }
  if (created) {
    // mkdir(2) applies the umask; set the exact mode (it can only have come out narrower).
    await fsp.chmod(dir, dirMode)
    if (gid !== undefined) await fsp.chown(dir, uid, gid)
  }
  // A symlinked folder (/var/run -> /run) is followed: its target must pass the same checks.
  const real = await fsp.realpath(dir)
  await checkFolder(real, uid, true)
  let parent = path.dirname(real)
  for (;;) {
    await checkFolder(parent, uid, false)
    const up = path.dirname(parent)
    if (up === parent) break
    parent = up
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
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' }
    throw err
  }
  if (st.isSocket()) return { kind: 'socket', ino: st.ino, uid: st.uid }
  const what = st.isSymbolicLink() ? 'a symlink' : st.isDirectory() ? 'a folder' : st.isFile() ? 'a regular file' : 'not a socket'
  return { kind: 'other', what }
}

/** Refuse anything at the socket path that is not a socket; touch nothing. */
export function refuseNonSocket(socketPath: string, what: string): never {
  throw new UnsafeSocketPathError(
    socketPath,
    `is ${what}, not a socket; naaccord-ipc never removes it. Remove it yourself if it is yours, or choose another socketPath`,
  )
}
