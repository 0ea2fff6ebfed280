import { lstatSync } from 'node:fs'
import net from 'node:net'
import tls, { type TLSSocket } from 'node:tls'
import type { buildConnector } from 'undici'
import { PeerRejectedError, TimeoutError, TlsClientCertRequiredError, type IpcError } from '@naaccord/ipc-shared'
import { attachMappedError, mapConnectError } from './error-map.js'
import type { ResolvedClientOptions } from './options.js'
import { loadPeerCredentials, type ReadPeerCredentials } from './peer-credentials-loader.js'
import { verifyServer, type CachedSession } from './tls-verify.js'

/** The TLS credentials in force (swapped on rotation). */
export interface ClientTlsMaterial {
  ca: string | undefined
  cert: string | undefined
  key: string | undefined
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
      (err: Error) => callback(err, null),
    )
  }
  const connect = ({ hostname, port }: { hostname: string; port: string }, callback: Callback) => {
    const early = checkSocketFile(opts)
    if (early) {
      callback(early, null)
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
      () => finish(new TimeoutError(opts.target, opts.connectTimeoutMs, t ? 'connect and TLS handshake' : 'connect')),
      opts.connectTimeoutMs,
    )
    timer.unref()

    let verified: tls.PeerCertificate | undefined
    let pendingSession: Buffer | undefined
    if (t) {
      socket.on('session', (session: Buffer) => {
        if (verified) sessions.set(t.servername, { session, peer: verified })
        else pendingSession = session
      })
    }
    socket.once(t ? 'secureConnect' : 'connect', () => {
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
        finish(e as Error)
        return
      }
      if (err) {
        if (t) sessions.delete(t.servername)
        finish(err)
        return
      }
      if (t && peer) {
        verified = peer
        if (pendingSession) sessions.set(t.servername, { session: pendingSession, peer })
      }
      finish(null)
    })
    socket.on('error', (err) => {
      if (!done) return finish(mapConnectError(err, opts))
      // RFC 8446 4.4.2: in TLS 1.3 the client's handshake is complete before the server has
      // checked our certificate, so its refusal (an alert) arrives after the socket was handed
      // to undici, which would report "other side closed". Only an alert is a refusal; an end of
      // stream or a reset without one stays a lost connection (retried when that is safe).
      const mapped = mapConnectError(err, opts)
      if (!(mapped instanceof TlsClientCertRequiredError)) return
      // An alert leaves the socket open: close it with our error. A write error has already
      // destroyed the socket, and undici reports this very error object: attach ours to it.
      if (socket.destroyed) attachMappedError(err, mapped)
      else socket.destroy(mapped)
    })
    return socket
  }
  return connector as unknown as Connector
}
