import { closeSync } from 'node:fs'
import net from 'node:net'
import { descriptorOf, dupCloexec } from '@naaccord/ipc-peercred'
import { SupervisorError, isIpcError, type Logger } from '@naaccord/ipc-shared'
import { bindUnderLock } from '../socket/socket-listener.js'

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
  if (fd === undefined) throw new SupervisorError('cannot read the listening socket descriptor from net.Server._handle.fd (has Node changed?)')
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
  const server = net.createServer({ pauseOnConnect: true })
  // Between publish and close below, a connection could be accepted here: it cannot be handed
  // on, so it is closed (the client sees a connection reset before any answer).
  server.on('connection', (socket) => socket.destroy())
  const bound = await bindUnderLock(server, socketPath, { dirMode, socketMode, socketGid: gid }, log)
  let fd: number | undefined
  try {
    fd = dupCloexec(serverFd(server))
    await new Promise<void>((resolve) => server.close(() => resolve()))
  } catch (err) {
    if (fd !== undefined) closeSync(fd)
    await bound.release()
    if (isIpcError(err)) throw err
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    throw new SupervisorError(`cannot hold the socket ${socketPath} outside the event loop (${why}); nothing was started`, { cause: err })
  }
  let released: Promise<void> | undefined
  const heldFd = fd
  return {
    fd: heldFd,
    fsPath: bound.fsPath,
    release() {
      released ??= (async () => {
        await bound.release()
        try {
          closeSync(heldFd)
        } catch {}
      })()
      return released
    },
  }
}
