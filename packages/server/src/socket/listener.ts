import type { Server } from 'node:net'
import type { ListenerHealth } from '../http/health.js'

/** One open listener, whatever its kind: the listening net.Server and how to give its address back. */
export interface Listener {
  /** The listening server; each accepted raw socket goes to the `onConnection` it was opened with. */
  readonly server: Server
  /** Where it listens, as reported by health and logs. */
  readonly health: ListenerHealth
  /**
   * Stop accepting and give the address back (for a socket we bound: remove the socket file if
   * still ours, release the lock), so a successor can listen at once. Connections already
   * accepted are not touched: draining them is the caller's.
   */
  close(): Promise<void>
}

/** Stop accepting new connections now; connections already accepted live on. */
export function stopAccepting(server: Server): void {
  // net.Server.close() closes the listening handle at once; its callback would wait for every
  // accepted connection, which the shutdown drain tracks instead.
  if (server.listening) server.close()
}

/**
 * allowHalfOpen for a listener's raw sockets, as Node's own servers set it: http.createServer()
 * keeps a half-closed plain connection open so the answer can still be written; under TLS
 * (tls.createServer()) it is off, so a peer that hangs up mid-handshake is seen at once.
 */
export function halfOpen(tls: boolean): boolean {
  return !tls
}
