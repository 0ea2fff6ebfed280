import type http from 'node:http'
import type { ConnectionTracker } from './gate/connection-tracker.js'

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
