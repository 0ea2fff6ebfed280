import type { Server } from 'node:http'

/**
 * Close servers gracefully: stop accepting, close idle keep-alive connections now, let in-flight
 * requests finish (their answers carry `Connection: close`, and each connection is closed once
 * idle), and cut whatever is left after `timeoutMs`.
 */
export async function closeGracefully(servers: readonly Server[], timeoutMs: number): Promise<{ forced: boolean }> {
  const closed = servers.map(
    (server) =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve()
        server.close(() => resolve())
      }),
  )
  for (const server of servers) server.closeIdleConnections()
  let forced = false
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      forced = true
      for (const server of servers) server.closeAllConnections()
      resolve()
    }, timeoutMs)
  })
  await Promise.race([Promise.all(closed), deadline])
  clearTimeout(timer)
  if (forced) await Promise.all(closed)
  return { forced }
}
