import type { ConnectionTracker } from './connection-tracker.js'

/**
 * Drain accepted connections after the listeners stopped accepting: requests in flight finish
 * (their answers, and the answer to any request that still arrives on an open connection, carry
 * `Connection: close`, after which Node closes that connection); idle keep-alive connections are
 * left for the client to close (HTTP/1.1: closing an idle connection races the client's next
 * request), or for the keep-alive timeout. Whatever is still open after `timeoutMs` (slow
 * requests, stalled handshakes, idle connections) is destroyed.
 *
 * @example
 * const { forced } = await drainConnections(tracker, 10_000)
 */
export async function drainConnections(tracker: ConnectionTracker, timeoutMs: number): Promise<{ forced: boolean; cut: number }> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), timeoutMs)
  })
  const outcome = await Promise.race([tracker.drained().then(() => 'drained' as const), deadline])
  clearTimeout(timer)
  if (outcome === 'drained') return { forced: false, cut: 0 }
  const cut = tracker.size
  tracker.destroyAll()
  await tracker.drained()
  return { forced: true, cut }
}
