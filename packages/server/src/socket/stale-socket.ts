import net from 'node:net'
import { promises as fsp } from 'node:fs'
import { getPeerCredentials } from '@naaccord/ipc-peercred'
import { SocketInUseError, UnsafeSocketPathError, type Logger } from '@naaccord/ipc-shared'
import { removeStrayBindFolders } from './bind-socket.js'
import { asStartError, inspectSocketPath, refuseNonSocket } from './socket-path.js'

/** Who listens, from SO_PEERCRED on the probe's connection (the listener's credentials), when the addon can tell. */
interface Listener {
  pid?: number
  uid?: number
}
type Probe = { live: Listener } | 'refused' | 'gone' | { denied: string }

function listenerOf(sock: net.Socket): Listener {
  try {
    const { pid, uid } = getPeerCredentials(sock)
    return { pid: pid > 0 ? pid : undefined, uid }
  } catch {
    return {}
  }
}

/** connect(2) to the socket: a refused connection means nobody listens (stale). */
function probe(socketPath: string, timeoutMs: number): Promise<Probe> {
  return new Promise((resolve) => {
    const sock = net.connect({ path: socketPath })
    const done = (result: Probe) => {
      sock.destroy()
      resolve(result)
    }
    sock.setTimeout(timeoutMs, () => done({ live: {} })) // a listener with a full backlog is still live
    sock.once('connect', () => done({ live: listenerOf(sock) }))
    sock.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') done('refused')
      else if (err.code === 'ENOENT') done('gone')
      else done({ denied: err.code ?? 'error' })
    })
  })
}

/**
 * With the lock held: make the socket path free, or explain why it is not. Private bind folders
 * and a stale socket left by a crash are removed; a live server's socket and anything that is
 * not a socket are never touched.
 *
 * @throws {SocketInUseError} IPC_SOCKET_IN_USE: a live server answers on the socket.
 * @throws {UnsafeSocketPathError} IPC_UNSAFE_SOCKET_PATH: a symlink, file or folder at the path.
 * @example
 * const lock = await acquireSocketLock(fsPath, log)
 * await clearStaleSocket(fsPath, log)
 */
export async function clearStaleSocket(socketPath: string, log: Logger): Promise<void> {
  try {
    await clear(socketPath, log)
  } catch (err) {
    throw asStartError(err, socketPath, 'clear the socket path')
  }
}

async function clear(socketPath: string, log: Logger): Promise<void> {
  await removeStrayBindFolders(socketPath, log)
  const state = await inspectSocketPath(socketPath)
  if (state.kind === 'absent') return
  if (state.kind === 'other') refuseNonSocket(socketPath, state.what)
  const result = await probe(socketPath, 1000)
  if (typeof result === 'object' && 'live' in result) {
    // The caller holds the lock, so whoever answers holds none: name it by the socket's owner and,
    // when the kernel tells, the listening process. Another user's listener is never removed.
    const me = process.getuid?.()
    const uid = result.live.uid ?? state.uid
    const whose = uid === me ? `uid ${uid}, this process's user` : uid === 0 ? 'uid 0, root' : `uid ${uid}, another user`
    throw new SocketInUseError(socketPath, result.live.pid, `a live server (socket owned by uid ${state.uid}; listening process of ${whose}) already listens on`)
  }
  if (result === 'gone') return
  if (typeof result === 'object') {
    throw new UnsafeSocketPathError(
      socketPath,
      `is a socket owned by uid ${state.uid} that this process cannot probe (${result.denied}); remove it as its owner if it is stale`,
    )
  }
  // Remove only the socket we probed: if the inode changed since, someone else is at work here.
  const again = await inspectSocketPath(socketPath)
  if (again.kind !== 'socket' || again.ino !== state.ino) throw new SocketInUseError(socketPath, undefined, 'the socket was replaced while probing')
  try {
    await fsp.unlink(socketPath)
  } catch (err) {
    // Gone meanwhile (ENOENT) is what we wanted; anything else is the folder's permissions.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new UnsafeSocketPathError(socketPath, `cannot remove the stale socket (${(err as NodeJS.ErrnoException).code}) owned by uid ${state.uid} as uid ${process.getuid?.()}; remove it as its owner`, { cause: err })
    }
  }
  log.warn({ socketPath }, 'removed a stale socket left by a server that is no longer running')
}
