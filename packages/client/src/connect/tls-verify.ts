import { X509Certificate } from 'node:crypto'
import tls, { type TLSSocket } from 'node:tls'
import { spkiSha256, subjectOf, type IpcError } from '@naaccord/ipc-shared'
import { tlsVerifyError } from './connect-errors.js'
import type { ResolvedClientOptions } from '../options.js'
import { serverIdProblem } from './server-identity.js'

/** A TLS session we may resume, with the server certificate that was verified when it was made. */
export interface CachedSession {
  readonly session: Buffer
  readonly peer: tls.PeerCertificate
}

/**
 * The server certificate of a connection, as Node's legacy object (for checkServerIdentity).
 * On the client, Node reads it from OpenSSL's peer chain, which a resumed session does not
 * carry (only the leaf is kept in the session, and Node does not read that): a resumed
 * connection shows `{}`. So for a resumed connection we use the certificate that was verified
 * when the session was made, which is the one the session is bound to. We never call
 * getPeerX509Certificate() on the client: in Node 20 it removes the leaf from the peer chain,
 * after which getPeerCertificate() returns `{}` for everyone (undici, the user).
 */
function serverCertificate(socket: TLSSocket, offered: CachedSession | undefined): tls.PeerCertificate | undefined {
  if (socket.isSessionReused() && offered) return offered.peer
  const legacy = socket.getPeerCertificate()
  return legacy?.raw ? legacy : undefined
}

/**
 * Check the server's certificate ourselves on every connection, resumed or not: Node skips
 * checkServerIdentity on resumed sessions, so chain, validity, hostname and pin are all checked
 * here, at secureConnect. Returns an error, or undefined and the certificate that passed.
 */
export function verifyServer(socket: TLSSocket, opts: ResolvedClientOptions, offered: CachedSession | undefined): { err: IpcError } | { err: undefined; peer: tls.PeerCertificate } {
  const result = check(socket, opts, offered)
  // Say so when the refused connection resumed a session: Node itself would have accepted it.
  if (result.err && socket.isSessionReused()) result.err.message += ' (refused on a resumed TLS session)'
  return result
}

function check(socket: TLSSocket, opts: ResolvedClientOptions, offered: CachedSession | undefined): { err: IpcError } | { err: undefined; peer: tls.PeerCertificate } {
  const t = opts.tls!
  const legacy = serverCertificate(socket, offered)
  if (!legacy) return { err: tlsVerifyError('NO_PEER_CERTIFICATE', opts.target, undefined) }
  const cert = new X509Certificate(legacy.raw)
  const facts = { subject: subjectOf(cert), validTo: cert.validTo }
  if (!t.insecureSkipVerify) {
    if (!socket.authorized) return { err: tlsVerifyError(String(socket.authorizationError), opts.target, facts) }
    // A resumed session keeps the verification result of its first handshake: check the dates again.
    if (Date.parse(cert.validTo) <= Date.now()) return { err: tlsVerifyError('CERT_HAS_EXPIRED', opts.target, facts) }
    const idErr = t.serverId === undefined ? undefined : serverIdProblem(cert, t.serverId)
    if (idErr) return { err: tlsVerifyError('ERR_TLS_CERT_ALTNAME_INVALID', opts.target, facts, idErr) }
    // With a SPIFFE serverId, the ID is the identity to check (SVIDs need not name a host).
    const hostErr = t.serverId === undefined ? tls.checkServerIdentity(t.servername, legacy) : undefined
    if (hostErr) return { err: tlsVerifyError('ERR_TLS_CERT_ALTNAME_INVALID', opts.target, facts, `the certificate does not name "${t.servername}" (${hostErr.message})`) }
  }
  if (t.pins.length > 0) {
    const pin = spkiSha256(cert)
    if (!t.pins.includes(pin)) return { err: tlsVerifyError('PIN_MISMATCH', opts.target, facts, `server key pin ${pin} is not one of the configured pins`) }
  }
  return { err: undefined, peer: legacy }
}
