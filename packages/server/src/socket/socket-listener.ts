import net, { type Socket } from 'node:net'
import path from 'node:path'
import type { Logger } from '@naaccord/ipc-shared'
import { bindSocket, unlinkIfOursNow } from './bind-socket.js'
import { halfOpen, stopAccepting, type Listener } from './listener.js'
import type { ResolvedServerOptions } from '../options.js'
import { acquireSocketLock } from './socket-lock.js'
import { ensureSocketFolder } from './socket-path.js'
import { clearStaleSocket } from './stale-socket.js'

/** A Unix socket listener's target and the options that shape it. */
export interface SocketListenerTarget {
  /** The socket path as configured. */
  socketPath: string
  /** Whether the listener speaks TLS (reported by health). */
  tls: boolean
}

/** What a socket source gives back once `server` listens: how to give the address back on close. */
export interface ListeningSocket {
  /** Called after the server stopped accepting: remove what this source created, release what it holds. */
  release(): Promise<void>
}

/** What binding a socket reads of the options: its mode, group and the mode of a folder we create. */
export type SocketBindOptions = Pick<ResolvedServerOptions, 'dirMode' | 'socketMode' | 'socketGid'>

/**
 * Where the listening socket comes from: make `server` listen on the socket for `socketPath`.
 * The default, `bindUnderLock`, checks the folder, takes the lock, clears a stale socket and
 * binds with the exact mode; another source (an inherited, already listening descriptor) can be
 * given to `openSocketListener` instead.
 */
export type SocketSource = (server: net.Server, socketPath: string, opts: SocketBindOptions, log: Logger) => Promise<ListeningSocket>

/** A socket bound by `bindUnderLock`: where it is, and how to give it back. */
export interface LockedSocket extends ListeningSocket {
  /** The socket path under the checked real folder. */
  readonly fsPath: string
}

/**
 * The default socket source, and the supervisor's way to hold the socket: safe folder, lock,
 * stale-socket recovery, bind with the exact mode from the first moment. On release: remove the
 * socket if it is still the one we published, then release the lock.
 *
 * @example
 * const listening = await bindUnderLock(net.createServer(), '/run/naaccord/service.sock', opts, log)
 */
export async function bindUnderLock(
  server: net.Server,
  socketPath: string,
  opts: SocketBindOptions,
  log: Logger,
): Promise<LockedSocket> {
  // Every step after the folder check works on the checked real folder, so a symlink above it
  // cannot be repointed in between.
  const realDir = await ensureSocketFolder(socketPath, opts.dirMode, opts.socketGid)
  const fsPath = path.join(realDir, path.basename(socketPath))
  const lock = await acquireSocketLock(fsPath, log)
  let ino: number
  try {
    await clearStaleSocket(fsPath, log)
    ino = (await bindSocket(server, fsPath, opts.socketMode, opts.socketGid)).ino
  } catch (err) {
    await lock.release()
    throw err
  }
  return {
    fsPath,
    // Done before it returns (lock.release() too): a successor started right after finds the path free.
    release() {
      unlinkIfOursNow(fsPath, ino)
      return lock.release()
    },
  }
}

/**
 * Open a Unix socket listener: a plain `net.Server` made to listen by `source` (bind by default),
 * handing every accepted raw socket to `onConnection`. Close stops accepting first, then gives
 * the path back (unlink if ours, release the lock), so a successor can bind at once while the
 * accepted connections drain. `serve()` and the metrics socket of `serveMetrics()` both open
 * their sockets here: every socket we bind goes through the same steps.
 *
 * @example
 * const listener = await openSocketListener({ socketPath, tls: false }, opts, log, (socket) => accept(socket))
 */
export async function openSocketListener(
  target: SocketListenerTarget,
  opts: SocketBindOptions,
  log: Logger,
  onConnection: (socket: Socket) => void,
  source: SocketSource = bindUnderLock,
): Promise<Listener> {
  const server = net.createServer({ allowHalfOpen: halfOpen(target.tls) })
  server.on('connection', onConnection)
  const listening = await source(server, target.socketPath, opts, log)
  let closed: Promise<void> | undefined
  return {
    server,
    health: { transport: 'unix', address: target.socketPath, tls: target.tls },
    close() {
      // Synchronous up to the release: the address is given back before close() returns.
      closed ??= (() => {
        stopAccepting(server)
        return listening.release()
      })()
      return closed
    },
  }
}
