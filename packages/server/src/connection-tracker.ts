import type { Socket } from 'node:net'

/**
 * Every raw socket the listeners accepted, from accept(2) to close, whatever became of it
 * (refused, mid-handshake, HTTP, idle keep-alive): the one place that bounds how many a server
 * holds (`maxConnections`) and that the shutdown deadline cuts.
 */
export interface ConnectionTracker {
  /** Sockets open now. */
  readonly size: number
  /** Track `socket` until it closes. Returns false (and destroys it) when the server is full. */
  admit(socket: Socket): boolean
  /** Resolves once every tracked socket has closed. */
  drained(): Promise<void>
  /** Destroy every tracked socket (the shutdown deadline). */
  destroyAll(): void
}

/**
 * @example
 * const tracker = createConnectionTracker(512)
 * netServer.on('connection', (socket) => { if (tracker.admit(socket)) handle(socket) })
 */
export function createConnectionTracker(maxConnections: number): ConnectionTracker {
  const sockets = new Set<Socket>()
  let waiters: Array<() => void> = []
  const onClose = (socket: Socket) => {
    sockets.delete(socket)
    if (sockets.size === 0 && waiters.length > 0) {
      const done = waiters
      waiters = []
      for (const w of done) w()
    }
  }
  return {
    get size() {
      return sockets.size
    },
    admit(socket) {
      if (sockets.size >= maxConnections) {
        // Refused fast: no peer check, no TLS, no HTTP; the peer sees the connection closed.
        socket.on('error', () => {})
        socket.destroy()
        return false
      }
      sockets.add(socket)
      socket.once('close', () => onClose(socket))
      return true
    },
    drained() {
      if (sockets.size === 0) return Promise.resolve()
      return new Promise((resolve) => waiters.push(resolve))
    },
    destroyAll() {
      for (const s of sockets) s.destroy()
    },
  }
}
