import { closeSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { descriptorOf, dupCloexec } from '@naaccord/ipc-peercred'
import type { Logger } from '@naaccord/ipc-shared'
import { bindSocket, unlinkIfOurs } from '../bind-socket.js'
import { acquireSocketLock } from '../socket-lock.js'
import { ensureSocketFolder } from '../socket-path.js'
import { clearStaleSocket } from '../stale-socket.js'

export interface HeldSocket {
  /** The listening socket, as a descriptor outside Node's event loop (close-on-exec). */
  readonly fd: number
  /** The socket path under the checked real folder. */
  readonly fsPath: string
  /** Remove the socket if still ours, release the lock, close our descriptor. Idempotent. */
  release(): Promise<void>
}

/** The descriptor under a listening net.Server (descriptorOf reads Node's handle). */
function serverFd(server: net.Server): number {
  const fd = descriptorOf(server)
  if (fd === undefined) throw new Error('cannot read the listening socket descriptor from net.Server._handle.fd (has Node changed?)')
  return fd
}

/**
 * The socket safety work of serve(), done once for the supervisor's life: folder checks, the
 * lock, stale-socket recovery, and the atomic bind with the exact mode and group. The supervisor
 * must hold the socket without ever accepting on it itself, so the bound socket is copied to a
 * descriptor Node does not watch and Node's own handle is closed (which removes only the private
 * bind path, already gone; the published path stays).
 *
 * @example
 * const held = await holdSocket('/run/naaccord/service.sock', 0o600, 0o700, undefined, log)
 * spawn(cmd, args, { stdio: ['inherit', 'inherit', 'inherit', held.fd] })
 */
export async function holdSocket(socketPath: string, socketMode: number, dirMode: number, gid: number | undefined, log: Logger): Promise<HeldSocket> {
  const realDir = await ensureSocketFolder(socketPath, dirMode, gid)
  const fsPath = path.join(realDir, path.basename(socketPath))
  const lock = await acquireSocketLock(fsPath, log)
  let fd: number | undefined
  let ino: number | undefined
  try {
    await clearStaleSocket(fsPath, log)
    const server = net.createServer({ pauseOnConnect: true })
    // Between publish and close below, a connection could be accepted here: it cannot be handed
    // on, so it is closed (the client sees a connection reset before any answer).
    server.on('connection', (socket) => socket.destroy())
    const bound = await bindSocket(server, fsPath, socketMode, gid)
    ino = bound.ino
    fd = dupCloexec(serverFd(server))
    await new Promise<void>((resolve) => server.close(() => resolve()))
  } catch (err) {
    if (fd !== undefined) closeSync(fd)
    if (ino !== undefined) await unlinkIfOurs(fsPath, ino)
    await lock.release()
    throw err
  }
  let released: Promise<void> | undefined
  const heldFd = fd
  const heldIno = ino
  return {
    fd: heldFd,
    fsPath,
    release() {
      released ??= (async () => {
        await unlinkIfOurs(fsPath, heldIno)
        await lock.release()
        try {
          closeSync(heldFd)
        } catch {}
      })()
      return released
    },
  }
}
