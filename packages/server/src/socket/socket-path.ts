import { promises as fsp, type Stats } from 'node:fs'
import { SocketPathAccessError, UnsafeSocketPathError, describeStat, myUid } from '@naaccord/ipc-shared'

// The walk of the socket's folder chain is the shared safe-path module's (one mechanism for
// every surface); these are the server's uses of it.
export { asStartError, ensureSocketFolder, modeText, myUid } from '@naaccord/ipc-shared'

export type SocketPathState = { kind: 'absent' } | { kind: 'socket'; ino: number; uid: number } | { kind: 'other'; what: string }

/** What stands at the socket path, without following a symlink. */
export async function inspectSocketPath(socketPath: string): Promise<SocketPathState> {
  let st: Stats
  try {
    st = await fsp.lstat(socketPath)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' }
    throw new SocketPathAccessError(socketPath, `cannot look at the socket path (${(err as NodeJS.ErrnoException).code}) as uid ${myUid()}; check the folder's permissions`, { cause: err })
  }
  if (st.isSocket()) return { kind: 'socket', ino: st.ino, uid: st.uid }
  const what = st.isSymbolicLink() ? 'a symlink' : st.isDirectory() ? 'a folder' : st.isFile() ? 'a regular file' : 'not a socket'
  return { kind: 'other', what: `${what} (${describeStat(st)})` }
}

/** Refuse anything at the socket path that is not a socket; touch nothing. */
export function refuseNonSocket(socketPath: string, what: string): never {
  throw new UnsafeSocketPathError(
    socketPath,
    `is ${what}, not a socket; naaccord-ipc (running as uid ${myUid()}) never removes it. Remove it yourself if it is yours, or choose another socketPath`,
  )
}
