import type { Socket } from 'node:net'

/** The connection budget of one listener. */
export interface ConnectionBudget {
  /** Most sockets open at once, whatever their state. */
  readonly maxConnections: number
  /** Of those, most not yet authenticated (before the peer check, mid-handshake, or refused and lingering). */
  readonly maxUnauthenticated: number
}

/** Why a socket was refused as soon as it was accepted. */
export type BudgetRefusal = 'max_connections' | 'max_unauthenticated' | 'closing'

/**
 * Every raw socket one listener accepted, from accept(2) to close, whatever became of it: the
 * one place that bounds how many that listener holds, in two budgets, and that shutdown cuts.
 * A socket is unauthenticated until it is past every check of its listener (the peer check,
 * and with TLS the handshake and the client-certificate policy; a refused peer waiting for its
 * 403 stays unauthenticated), then authenticated. Unauthenticated sockets can hold at most
 * `maxUnauthenticated` of the listener's `maxConnections`: the rest is kept for connections
 * that passed, whatever floods the listener.
 */
export interface ConnectionTracker {
  /** Sockets open now, both kinds. */
  readonly size: number
  /** Of those, not yet authenticated. */
  readonly unauthenticated: number
  /**
   * Track `socket` until it closes, as authenticated or not yet. When its budget is full (or
   * the tracker is closing) it is destroyed instead and the reason returned; undefined when
   * admitted.
   */
  admit(socket: Socket, authenticated: boolean): BudgetRefusal | undefined
  /** Move an admitted socket to the authenticated budget. False when it is no longer tracked (cut meanwhile) or the tracker is closing. */
  authenticate(socket: Socket): boolean
  /** Refuse every socket from now on, and destroy the unauthenticated ones (shutdown). Returns how many were cut. */
  close(): number
  /** Resolves once every tracked socket has closed. */
  drained(): Promise<void>
  /** Destroy every tracked socket (the shutdown deadline). */
  destroyAll(): void
}

/**
 * @example
 * const tracker = createConnectionTracker({ maxConnections: 512, maxUnauthenticated: 128 })
 * netServer.on('connection', (socket) => { if (tracker.admit(socket, false) === undefined) handshake(socket) })
 * // once the handshake and the certificate check passed:
 * if (tracker.authenticate(socket)) http.emit('connection', tlsSocket)
 */
export function createConnectionTracker(budget: ConnectionBudget): ConnectionTracker {
  const pending = new Set<Socket>()
  const passed = new Set<Socket>()
  let closing = false
  let waiters: Array<() => void> = []
  const onClose = (socket: Socket) => {
    if (!pending.delete(socket)) passed.delete(socket)
    if (pending.size + passed.size === 0 && waiters.length > 0) {
      const done = waiters
      waiters = []
      for (const w of done) w()
    }
  }
  const refuse = (socket: Socket, reason: BudgetRefusal): BudgetRefusal => {
    // Refused fast: nothing more is read or written; the peer sees the connection closed.
    socket.on('error', discard)
    socket.destroy()
    return reason
  }
  return {
    get size() {
      return pending.size + passed.size
    },
    get unauthenticated() {
      return pending.size
    },
    admit(socket, authenticated) {
      if (closing) return refuse(socket, 'closing')
      if (pending.size + passed.size >= budget.maxConnections) return refuse(socket, 'max_connections')
      if (!authenticated && pending.size >= budget.maxUnauthenticated) return refuse(socket, 'max_unauthenticated')
      ;(authenticated ? passed : pending).add(socket)
      socket.once('close', () => onClose(socket))
      return undefined
    },
    authenticate(socket) {
      if (closing || !pending.delete(socket)) return false
      passed.add(socket)
      return true
    },
    close() {
      closing = true
      const cut = pending.size
      // Destroyed sockets leave the sets on 'close', a tick later; drained() waits for that.
      for (const s of pending) s.destroy()
      return cut
    },
    drained() {
      if (pending.size + passed.size === 0) return Promise.resolve()
      return new Promise((resolve) => waiters.push(resolve))
    },
    destroyAll() {
      for (const s of pending) s.destroy()
      for (const s of passed) s.destroy()
    },
  }
}

const discard = () => {}
