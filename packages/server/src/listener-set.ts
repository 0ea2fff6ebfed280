import type net from 'node:net'
import type { Socket } from 'node:net'
import type tls from 'node:tls'
import type { Logger } from '@naaccord/ipc-shared'
import { createAcceptor } from './gate/acceptor.js'
import type { ConnectionTracker } from './gate/connection-tracker.js'
import { createPeerCheck, tcpGate, type ConnectionGate } from './gate/peer-check.js'
import type { TlsStage } from './gate/tls-context.js'
import type { ListenerHealth } from './http/health.js'
import type { ResolvedListenTarget, ResolvedServerOptions } from './options.js'
import type { Listener } from './socket/listener.js'
import { listenOnFd, takeInheritedSocket } from './socket/socket-activation.js'
import { openSocketListener, type SocketSource } from './socket/socket-listener.js'
import { openTcpListener } from './socket/tcp-listener.js'

/**
 * Where a socket listener's listening socket comes from: socket activation (systemd,
 * `naaccord-ipc run`) hands one over, which we check (takeInheritedSocket: its path, folder, file,
 * mode) and accept on, and never lock or unlink (the activator made and keeps it); otherwise the
 * given source, by default bind under the lock.
 */
function socketSourceFor(socketPath: string, opts: ResolvedServerOptions, given: SocketSource | undefined): SocketSource | undefined {
  const inheritedFd = takeInheritedSocket(socketPath, opts)
  if (inheritedFd === undefined) return given
  return async (server) => {
    await listenOnFd(server, inheritedFd)
    return { release: async () => {} }
  }
}

/** What the budget's log line names: the TCP address once known (port 0 is filled in). */
function addressOf(target: ResolvedListenTarget): string {
  return target.kind === 'socket' ? target.socketPath : `${target.host}:${target.port}`
}

/**
 * Every listener of one `serve()`, each with its own accept path (createAcceptor: gate, budget,
 * TLS, then HTTP): a Unix listener checks the peer first (SO_PEERCRED against `allow`), a TCP
 * listener has no check before TLS. Made empty; `open()` opens the targets of `opts.listen`.
 *
 * @example
 * const set = new ListenerSet(opts, log)
 * await set.open((socket) => httpServer.emit('connection', socket))
 */
export class ListenerSet {
  /** Where each listener listens, filled in as each opens (the health report reads it live). */
  readonly health: ListenerHealth[] = []
  /** The connection budget of each listener, in `health` order. */
  readonly trackers: ConnectionTracker[] = []
  /** The listening `net.Server` of each listener, in `health` order (once open). */
  readonly netServers: net.Server[] = []
  /** The TLS stage of each listener, with TLS (once open). */
  readonly tlsServers: tls.Server[] = []
  readonly #listeners: Listener[] = []
  readonly #tlsStages: TlsStage[] = []
  readonly #opts: ResolvedServerOptions
  readonly #log: Logger

  constructor(opts: ResolvedServerOptions, log: Logger) {
    this.#opts = opts
    this.#log = log
  }

  /** Connections open now, all listeners together, whatever their state. */
  get connections(): number {
    let n = 0
    for (const t of this.trackers) n += t.size
    return n
  }

  /**
   * Open every target of `opts.listen`, in order, handing each admitted socket to `toHttp`. On a
   * failure, the listeners opened are closed and every connection they accepted is destroyed,
   * then the error is thrown.
   */
  async open(toHttp: (socket: Socket) => void, socketSource?: SocketSource): Promise<void> {
    try {
      const unixGate = createPeerCheck(this.#opts.allow, this.#log, this.#opts.tls !== undefined)
      for (const target of this.#opts.listen) await this.#openOne(target, target.kind === 'socket' ? unixGate : tcpGate, toHttp, socketSource)
    } catch (err) {
      await this.release()
      for (const t of this.trackers) t.destroyAll()
      throw err
    }
    this.netServers.push(...this.#listeners.map((l) => l.server))
    this.tlsServers.push(...this.#tlsStages.map((s) => s.server))
  }

  /** Stop accepting on every listener and give the addresses back (socket file, lock): synchronous up to the release. */
  async release(): Promise<void> {
    await Promise.all(this.#listeners.map((l) => l.close()))
  }

  async #openOne(target: ResolvedListenTarget, gate: ConnectionGate, toHttp: (socket: Socket) => void, given: SocketSource | undefined): Promise<void> {
    const opts = this.#opts
    const withTls = opts.tls !== undefined
    let address = addressOf(target)
    const transport = target.kind === 'socket' ? 'unix' : 'tcp'
    const acceptor = createAcceptor({ gate, transport, where: () => address, opts, log: this.#log, toHttp })
    this.trackers.push(acceptor.tracker)
    if (acceptor.tlsStage) this.#tlsStages.push(acceptor.tlsStage)
    const listener =
      target.kind === 'socket'
        ? await openSocketListener({ socketPath: target.socketPath, tls: withTls }, opts, this.#log, acceptor.onConnection, socketSourceFor(target.socketPath, opts, given))
        : await openTcpListener({ host: target.host, port: target.port, tls: withTls }, acceptor.onConnection)
    address = listener.health.address
    this.#listeners.push(listener)
    this.health.push(listener.health)
  }
}
