import { X509Certificate } from 'node:crypto'
import { lstatSync } from 'node:fs'
import net from 'node:net'
import tls, { type TLSSocket } from 'node:tls'
import type { buildConnector } from 'undici'
import {
  PeerRejectedError,
  TimeoutError,
  TlsClientCertRequiredError,
  spkiSha256,
  subjectOf,
  type IpcError,
} from '@naaccord/ipc-shared'
import { attachMappedError, clientCertRefused, mapConnectError, tlsVerifyError, markConnectPhase } from './error-map.js'
import type { ResolvedClientOptions } from './options.js'
import { serverIdProblem } from './server-identity.js'
import { loadPeerCredentials, type ReadPeerCredentials } from './peer-credentials-loader.js'

/** The TLS credentials in force (swapped on rotation). */
export interface ClientTlsMaterial {
  ca: string | undefined
  cert: string | undefined
  key: string | undefined
}

/** A TLS session we may resume, with the server certificate that was verified when it was made. */
interface CachedSession {
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
function verifyServer(socket: TLSSocket, opts: ResolvedClientOptions, offered: CachedSession | undefined): { err: IpcError } | { err: undefined; peer: tls.PeerCertificate } {
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

/** expectServer: compare the server's kernel credentials (read from our own socket) to what was asked. */
function verifyServerProcess(socket: net.Socket, opts: ResolvedClientOptions, getPeerCredentials: ReadPeerCredentials | undefined): IpcError | undefined {
  const expect = opts.expectServer
  if (!expect || !getPeerCredentials) return undefined
  const creds = getPeerCredentials(socket)
  if (expect.uid !== undefined && creds.uid !== expect.uid) {
    return new PeerRejectedError(
      `the server on ${opts.target} runs as uid ${creds.uid} (pid ${creds.pid}), expected uid ${expect.uid}; nothing was sent. Check which process owns the socket`,
    )
  }
  if (expect.gid !== undefined && creds.gid !== expect.gid) {
    return new PeerRejectedError(`the server on ${opts.target} runs as gid ${creds.gid} (pid ${creds.pid}), expected gid ${expect.gid}; nothing was sent`)
  }
  return undefined
}

/** expectServer.checkSocketFile: refuse a socket file owned by someone unexpected, before connecting. */
function checkSocketFile(opts: ResolvedClientOptions): IpcError | undefined {
  const expect = opts.expectServer
  if (!expect?.checkSocketFile || expect.uid === undefined || !opts.socketPath) return undefined
  let st
  try {
    st = lstatSync(opts.socketPath)
  } catch {
    return undefined // connect() reports the missing socket with the usual error
  }
  if (!st.isSocket()) return new PeerRejectedError(`${opts.socketPath} is not a socket; refusing to connect`)
  if (st.uid !== expect.uid) {
    return new PeerRejectedError(`${opts.socketPath} is owned by uid ${st.uid}, expected uid ${expect.uid}; refusing to connect`)
  }
  return undefined
}

type Connector = buildConnector.connector

/**
 * The undici connector: opens a Unix socket or TCP connection (TLS on top when configured),
 * enforces the connect timeout, and runs the checks on who is at the other end before undici
 * writes a byte. TLS sessions are cached per servername only after a connection passed every check.
 */
export function createConnector(opts: ResolvedClientOptions, material: ClientTlsMaterial | undefined): Connector {
  const sessions = new Map<string, CachedSession>()
  const t = opts.tls
  // expectServer needs the native addon: loaded once, before the first connection (see the loader).
  let readPeer: ReadPeerCredentials | undefined
  type Callback = (err: Error | null, socket: net.Socket | null) => void
  const connector = (target: { hostname: string; port: string }, callback: Callback) => {
    if (!opts.expectServer || readPeer) return connect(target, callback)
    loadPeerCredentials().then(
      (read) => {
        readPeer = read
        connect(target, callback)
      },
      (err: Error) => callback(markConnectPhase(err), null),
    )
  }
  const connect = ({ hostname, port }: { hostname: string; port: string }, callback: Callback) => {
    const early = checkSocketFile(opts)
    if (early) {
      callback(markConnectPhase(early), null)
      return
    }
    const where = opts.socketPath ? { path: opts.socketPath } : { host: opts.host ?? hostname, port: Number(opts.port ?? port) }
    let socket: net.Socket
    const offered = t ? sessions.get(t.servername) : undefined
    if (t && material) {
      socket = tls.connect({
        ...where,
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
      })
    } else {
      socket = net.connect(where)
    }
    if (!opts.socketPath) socket.setKeepAlive(true, 60_000)
    socket.setNoDelay(true)

    let done = false
    const finish = (err: Error | null) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (err) {
        socket.destroy()
        callback(err, null)
      } else {
        callback(null, socket)
      }
    }
    const timer = setTimeout(
      () => finish(markConnectPhase(new TimeoutError(opts.target, opts.connectTimeoutMs, t ? 'connect and TLS handshake' : 'connect'))),
      opts.connectTimeoutMs,
    )
    timer.unref()

    let verified: tls.PeerCertificate | undefined
    let pendingSession: Buffer | undefined
    // Whether the server said anything after the handshake: a session ticket or response bytes.
    let heardFromServer = false
    let tls13 = false
    if (t) {
      socket.on('session', (session: Buffer) => {
        heardFromServer = true
        if (verified) sessions.set(t.servername, { session, peer: verified })
        else pendingSession = session
      })
      // A 'readable' listener (not 'data') leaves undici's paused-mode reading as it is.
      socket.on('readable', () => {
        if (socket.readableLength > 0) heardFromServer = true
      })
      // RFC 8446 4.4.2: in TLS 1.3 the client's handshake is complete before the server has
      // checked the client certificate, so a refusal arrives after the socket was handed to
      // undici, which would report it as "other side closed". We turn it into our error here
      // (these listeners run before undici's): the server's alert (certificate required,
      // unknown CA...), or, from servers that just close (Node's rejectUnauthorized, our
      // allowClients), an end of stream or a broken pipe before any session ticket or byte.
      socket.once('end', () => {
        if (done && tls13 && !heardFromServer && !socket.destroyed) socket.destroy(closedAfterHandshake())
      })
    }
    const closedAfterHandshake = (cause?: Error) =>
      clientCertRefused(opts.target, 'it closed the connection right after the TLS handshake, before any session ticket or response; its log says why', cause)
    socket.once(t ? 'secureConnect' : 'connect', () => {
      if (t) tls13 = (socket as TLSSocket).getProtocol() === 'TLSv1.3'
      let err: IpcError | undefined
      let peer: tls.PeerCertificate | undefined
      try {
        if (t) {
          const v = verifyServer(socket as TLSSocket, opts, offered)
          err = v.err
          if (!v.err) peer = v.peer
        }
        err ??= verifyServerProcess(socket, opts, readPeer)
      } catch (e) {
        finish(markConnectPhase(e as Error))
        return
      }
      if (err) {
        if (t) sessions.delete(t.servername)
        finish(markConnectPhase(err))
        return
      }
      if (t && peer) {
        verified = peer
        if (pendingSession) sessions.set(t.servername, { session: pendingSession, peer })
      }
      finish(null)
    })
    socket.on('error', (err) => {
      if (!done) return finish(markConnectPhase(mapConnectError(err, opts)))
      // After the handover (see the 'end' listener above for why).
      const mapped = mapConnectError(err, opts)
      const code = (err as NodeJS.ErrnoException).code
      let refusal: IpcError | undefined
      if (mapped instanceof TlsClientCertRequiredError) refusal = mapped
      else if (tls13 && !heardFromServer && (code === 'EPIPE' || code === 'ECONNRESET')) refusal = closedAfterHandshake(err)
      if (!refusal) return
      // An alert leaves the socket open and undici would replace it by "other side closed" at
      // the end of stream: close with our error. A write error has already destroyed the
      // socket, and undici reports this very error object: attach ours to it.
      if (socket.destroyed) attachMappedError(err, refusal)
      else socket.destroy(refusal)
    })
    return socket
  }
  return connector as unknown as Connector
}
