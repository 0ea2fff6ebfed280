import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { PeerCredentials } from '@naaccord/ipc-peercred'

/** What the server knows of the process or host at the other end of a connection. */
export interface Peer extends Partial<PeerCredentials> {
  /** "unix" (Unix domain socket) or "tcp". */
  transport: 'unix' | 'tcp'
  /** TCP only: the remote address. */
  remoteAddress?: string | undefined
  /** TLS only: the client certificate's identity, when one was presented and verified. */
  certificate?: PeerCertificate | undefined
  /**
   * Behind a trusted reverse proxy (option `trustedProxy`): the client identity the proxy
   * verified and passed in its identity header (e.g. `CN=web-server`). Never set otherwise.
   */
  forwardedIdentity?: string | undefined
}

export interface PeerCertificate {
  subject: string
  commonName: string | undefined
  dnsNames: string[]
  uris: string[]
  fingerprint256: string
  validTo: string
}

declare module 'node:http' {
  interface IncomingMessage {
    /** Set by naaccord-ipc for every request: who is connected (kernel credentials, client certificate). */
    peer?: Peer
  }
}

const peers = new WeakMap<Socket, Peer>()

/** Remember what was learned of a connection (once, at accept or handshake). */
export function setPeer(socket: Socket, peer: Peer): void {
  peers.set(socket, peer)
}

/** The peer of a connection, as set once at accept (or, for TLS, at the end of the handshake). */
export function peerOf(socket: Socket): Peer | undefined {
  return peers.get(socket)
}

/**
 * A copy of `peer` with `extra` set, keeping its accessors: a spread would call the lazy
 * `startTime` getter and read /proc for every connection.
 *
 * @example
 * withPeerFields(peerOf(socket), { certificate })
 */
export function withPeerFields(peer: Peer | undefined, extra: Partial<Peer>): Peer {
  return Object.assign(Object.defineProperties({}, Object.getOwnPropertyDescriptors(peer ?? {})), extra) as Peer
}

export type { IncomingMessage }
