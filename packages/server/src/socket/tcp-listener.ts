import net, { type AddressInfo, type Socket } from 'node:net'
import { TcpListenError } from '@naaccord/ipc-shared'
import { listen } from './bind-socket.js'
import { halfOpen, stopAccepting, type Listener } from './listener.js'

/**
 * Open a TCP listener: a plain `net.Server` on `host:port` (port 0: any free port, reported in
 * `health.address`) handing every accepted raw socket to `onConnection`.
 *
 * @throws {TcpListenError} IPC_TCP_LISTEN: listen(2) refused (EADDRINUSE, EACCES...); Node's error is the cause.
 * @example
 * const listener = await openTcpListener({ host: '127.0.0.1', port: 8443, tls: true }, (socket) => accept(socket))
 */
export async function openTcpListener(target: { host: string; port: number; tls: boolean }, onConnection: (socket: Socket) => void): Promise<Listener> {
  const server = net.createServer({ noDelay: true, allowHalfOpen: halfOpen(target.tls) })
  server.on('connection', onConnection)
  const address = net.isIPv6(target.host) ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`
  await listen(server, { host: target.host, port: target.port }).catch((err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    const fix = code === 'EADDRINUSE' ? 'another process listens there; stop it or choose another port' : 'check the host and port (a port below 1024 needs CAP_NET_BIND_SERVICE)'
    throw new TcpListenError(address, `${code}; ${fix}`, { cause: err })
  })
  const addr = server.address() as AddressInfo
  return {
    server,
    health: { transport: 'tcp', address: `${addr.address}:${addr.port}`, tls: target.tls },
    async close() {
      stopAccepting(server)
    },
  }
}
