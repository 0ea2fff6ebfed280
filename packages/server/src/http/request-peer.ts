import type { IncomingMessage } from 'node:http'
import { peerOf, withPeerFields, type Peer } from '../gate/peer.js'
import { takeForwardedIdentity, type ResolvedTrustedProxy } from './trusted-proxy.js'

/**
 * Set `req.peer`: what was learned of the connection once, at accept or handshake; behind a
 * trusted proxy, with the identity the proxy forwarded. The identity header is taken off the
 * request whoever sent it (see takeForwardedIdentity).
 *
 * @returns the connection's peer (without a forwarded identity), for the request log
 * @example
 * const peer = attachPeer(req, opts.trustedProxy) // req.peer?.uid
 */
export function attachPeer(req: IncomingMessage, trustedProxy: ResolvedTrustedProxy | undefined): Peer | undefined {
  const peer = peerOf(req.socket)
  if (peer) req.peer = peer
  if (trustedProxy) {
    const forwardedIdentity = takeForwardedIdentity(req, trustedProxy)
    if (forwardedIdentity !== undefined) req.peer = withPeerFields(req.peer, { forwardedIdentity })
  }
  return peer
}
