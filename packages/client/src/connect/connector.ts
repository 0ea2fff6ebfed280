import type net from 'node:net'
import type { buildConnector } from 'undici'
import type { ResolvedClientOptions } from '../options.js'
import { ConnectionAttempt, type ConnectCallback, type ConnectContext } from './connection-attempt.js'
import { endpointOf } from './endpoint.js'
import { loadPeerCredentials } from './peer-credentials-loader.js'
import type { ClientTlsMaterial } from './tls-options.js'

type Connector = buildConnector.connector

/**
 * The undici connector: opens a Unix socket or TCP connection (TLS on top when configured),
 * enforces the connect timeout, and runs the checks on who is at the other end before undici
 * writes a byte. Over the socket, in this order: the safe-path check of the socket path (no
 * folder, link or socket file another user could have placed), connect to the checked real path,
 * the kernel's credentials of the server process, and only then the TLS handshake. TLS sessions
 * are cached per servername only after a connection passed every check.
 *
 * @example
 * new Pool(opts.origin, { connect: createConnector(opts, material) })
 */
export function createConnector(opts: ResolvedClientOptions, material: ClientTlsMaterial | undefined): Connector {
  const ctx: ConnectContext = { opts, material, sessions: new Map(), readPeer: undefined }
  const processCheck = opts.serverCheck?.processUids !== undefined
  const connector = (target: { hostname: string; port: string }, callback: ConnectCallback) => {
    if (!processCheck || ctx.readPeer) return open(ctx, target, callback)
    // The kernel check of the server process needs the native addon: loaded once, before the first connection.
    loadPeerCredentials().then(
      (read) => {
        ctx.readPeer = read
        open(ctx, target, callback)
      },
      (err: Error) => callback(err, null),
    )
  }
  return connector as unknown as Connector
}

/** One connection: where to (the path walk), then the attempt that connects and checks. */
function open(ctx: ConnectContext, target: { hostname: string; port: string }, callback: ConnectCallback): net.Socket | undefined {
  const where = endpointOf(ctx.opts, target)
  if (where instanceof Error) {
    callback(where, null)
    return undefined
  }
  return new ConnectionAttempt(ctx, where, callback).raw
}
