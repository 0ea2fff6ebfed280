import type http from 'node:http'
import type { ConnectionTracker } from './gate/connection-tracker.js'
import type { ListenerSet } from './listener-set.js'
import type { ResolvedServerOptions } from './options.js'

/**
 * What close() cuts at once, after the listeners stopped accepting: every connection that is
 * not yet authenticated (before the peer check, mid-handshake, a refused peer waiting for its
 * 403), since none of them carries a request; with `closeIdle`, also every authenticated
 * connection between requests (Node's `closeIdleConnections()`: idle keep-alive, or connected
 * and not yet sent a first request). Returns how many unauthenticated connections were cut.
 *
 * @example
 * const cut = cutConnectionsWithoutRequest(trackers, httpServer, opts.closeIdleOnShutdown)
 */
export function cutConnectionsWithoutRequest(trackers: readonly ConnectionTracker[], httpServer: http.Server, closeIdle: boolean): number {
  let cut = 0
  for (const t of trackers) cut += t.close()
  if (closeIdle) httpServer.closeIdleConnections()
  return cut
}

/**
 * Drain the connections left after `cutConnectionsWithoutRequest`: requests in flight finish
 * (their answers, and the answer to any request that still arrives on an open connection, carry
 * `Connection: close`, after which Node closes that connection); unless `closeIdleOnShutdown`
 * cut them, idle keep-alive connections are left for the client to close (HTTP/1.1: closing an
 * idle connection races the client's next request), or for the keep-alive timeout. Whatever is
 * still open after `timeoutMs` (slow requests, idle connections) is destroyed.
 *
 * @example
 * const { forced } = await drainConnections(trackers, 10_000)
 */
export async function drainConnections(trackers: readonly ConnectionTracker[], timeoutMs: number): Promise<{ forced: boolean; cut: number }> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), timeoutMs)
  })
  const drained = () => Promise.all(trackers.map((t) => t.drained()))
  const outcome = await Promise.race([drained().then(() => 'drained' as const), deadline])
  clearTimeout(timer)
  if (outcome === 'drained') return { forced: false, cut: 0 }
  let cut = 0
  for (const t of trackers) {
    cut += t.size
    t.destroyAll()
  }
  await drained()
  return { forced: true, cut }
}

/**
 * The connection part of close(), in order: every listener stops accepting and gives its address
 * back (socket file, lock) at once, so a successor can bind while connections drain; everything
 * that carries no request is cut (a handshake flood does not hold the shutdown); the rest drains
 * (drainConnections), cut at `shutdownTimeoutMs`; then the HTTP server is closed.
 *
 * @example
 * await shutdownConnections(listeners, httpServer, opts)
 */
export async function shutdownConnections(
  listeners: ListenerSet,
  httpServer: http.Server,
  opts: Pick<ResolvedServerOptions, 'closeIdleOnShutdown' | 'shutdownTimeoutMs' | 'logger'>,
): Promise<void> {
  const log = opts.logger
  const released = listeners.release()
  const unauthenticated = cutConnectionsWithoutRequest(listeners.trackers, httpServer, opts.closeIdleOnShutdown)
  await released
  log.info({ listeners: listeners.health, connections: listeners.connections, cutUnauthenticated: unauthenticated }, 'stopped accepting; draining')
  const { forced, cut } = await drainConnections(listeners.trackers, opts.shutdownTimeoutMs)
  if (forced) log.warn({ shutdownTimeoutMs: opts.shutdownTimeoutMs, cut }, 'connections still open at the shutdown timeout were cut')
  httpServer.close()
}
