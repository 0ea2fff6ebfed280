import net, { type AddressInfo, type Socket } from 'node:net'
import { listen } from './bind-socket.js'
import { halfOpen, stopAccepting, type Listener } from './listener.js'

/**
 * Open a TCP listener: a plain `net.Server` on `host:port` (port 0: any free port, reported in
 * `health.address`) handing every accepted raw socket to `onConnection`.
 *
 * @example
 * const listener = await openTcpListener({ host: '127.0.0.1', port: 8443, tls: true }, (socket) => accept(socket))
 */
export async function openTcpListener(target: { host: string; port: number; tls: boolean }, onConnection: (socket: Socket) => void): Promise<Listener> {
  const server = net.createServer({ noDelay: true, allowHalfOpen: halfOpen(target.tls) })
  server.on('connection', onConnection)
  await listen(server, { host: target.host, port: target.port })
  const addr = server.address() as AddressInfo
  return {
    server,
    health: { transport: 'tcp', address: `${addr.address}:${addr.port}`, tls: target.tls },
    async close() {
      stopAccepting(server)
    },
  }
}
