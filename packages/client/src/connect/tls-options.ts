import net from 'node:net'
import type tls from 'node:tls'
import type { ResolvedClientOptions } from '../options.js'
import type { CachedSession } from './tls-verify.js'

/** The TLS credentials in force (swapped on rotation). */
export interface ClientTlsMaterial {
  ca: string | undefined
  cert: string | undefined
  key: string | undefined
}

/**
 * The options of one TLS handshake: our credentials, the session offered for resumption, and
 * Node's own verification left to `verifyServer` (run on every connection, resumed or not, and
 * failing closed).
 *
 * @example
 * tls.connect({ socket: raw, ...tlsConnectOptions(opts.tls, material, sessions.get(opts.tls.servername)) })
 */
export function tlsConnectOptions(t: NonNullable<ResolvedClientOptions['tls']>, material: ClientTlsMaterial, offered: CachedSession | undefined): tls.ConnectionOptions {
  return {
    servername: net.isIP(t.servername) ? undefined : t.servername,
    ...(material.ca === undefined ? {} : { ca: material.ca }),
    ...(material.cert === undefined ? {} : { cert: material.cert, key: material.key }),
    minVersion: t.minVersion,
    // Verification is done by verifyServer on every connection (see above), and fails closed.
    rejectUnauthorized: false,
    // With a SPIFFE serverId the ID replaces the host name; verifyServer checks it, so Node's own
    // host check must not mark the connection unauthorized.
    ...(t.serverId === undefined ? {} : { checkServerIdentity: () => undefined }),
    session: offered?.session,
    ALPNProtocols: ['http/1.1'],
  }
}
