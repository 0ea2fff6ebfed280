import { lstatSync } from 'node:fs'
import net from 'node:net'
import tls, { type TLSSocket } from 'node:tls'
import type { buildConnector } from 'undici'
import {
  PeerRejectedError,
  TimeoutError,
  getPeerCredentials,
  spkiSha256,
  subjectOf,
  type IpcError,
} from '@naaccord/ipc-shared'
import { mapConnectError, tlsVerifyError, markConnectPhase } from './error-map.js'
import type { ResolvedClientOptions } from './options.js'

/** The TLS credentials in force (swapped on rotation). */
export interface ClientTlsMaterial {
  ca: string | undefined
  cert: string | undefined
  key: string | undefined
}

/**
 * Check the server's certificate ourselves on every connection, resumed or not: Node skips
 * checkServerIdentity on resumed sessions, so chain, hostname and pin are all checked here, at
 * secureConnect, from the peer certificate the session carries. Returns an error or undefined.
 */
function verifyServer(socket: TLSSocket, opts: ResolvedClientOptions): IpcError | undefined {
  const t = opts.tls!
  const cert = socket.getPeerX509Certificate()
  const facts = cert ? { subject: subjectOf(cert), validTo: cert.validTo } : undefined
  if (!cert) return tlsVerifyError('NO_PEER_CERTIFICATE', opts.target, undefined)
  if (!t.insecureSkipVerify) {
    if (!socket.authorized) return tlsVerifyError(String(socket.authorizationError), opts.target, facts)
    const hostErr = tls.checkServerIdentity(t.servername, socket.getPeerCertificate())
    if (hostErr) return tlsVerifyError('ERR_TLS_CERT_ALTNAME_INVALID', opts.target, facts, `the certificate does not name "${t.servername}" (${hostErr.message})`)
  }
  if (t.pins.length > 0) {
    const pin = spkiSha256(cert)
    if (!t.pins.includes(pin)) return tlsVerifyError('PIN_MISMATCH', opts.target, facts, `server key pin ${pin} is not one of the configured pins`)
  }
  return undefined
}

/** expectServer: compare the server's kernel credentials (read from our own socket) to what was asked. */
function verifyServerProcess(socket: net.Socket, opts: ResolvedClientOptions): IpcError | undefined {
  const expect = opts.expectServer
  if (!expect) return undefined
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
  const sessions = new Map<string, Buffer>()
  const t = opts.tls
  return (({ hostname, port }: { hostname: string; port: string }, callback: (err: Error | null, socket: net.Socket | null) => void) => {
    const early = checkSocketFile(opts)
    if (early) {
      callback(markConnectPhase(early), null)
      return
    }
    const where = opts.socketPath ? { path: opts.socketPath } : { host: opts.host ?? hostname, port: Number(opts.port ?? port) }
    let socket: net.Socket
    if (t && material) {
      socket = tls.connect({
        ...where,
        servername: net.isIP(t.servername) ? undefined : t.servername,
        ...(material.ca === undefined ? {} : { ca: material.ca }),
        ...(material.cert === undefined ? {} : { cert: material.cert, key: material.key }),
        minVersion: t.minVersion,
        // Verification is done by verifyServer on every connection (see above), and fails closed.
        rejectUnauthorized: false,
        session: sessions.get(t.servername),
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

    let verified = false
    let pendingSession: Buffer | undefined
    if (t) {
      socket.on('session', (session: Buffer) => {
        if (verified) sessions.set(t.servername, session)
        else pendingSession = session
      })
    }
    socket.once(t ? 'secureConnect' : 'connect', () => {
      let err: IpcError | undefined
      try {
        err = (t ? verifyServer(socket as TLSSocket, opts) : undefined) ?? verifyServerProcess(socket, opts)
      } catch (e) {
        finish(markConnectPhase(e as Error))
        return
      }
      if (err) {
        sessions.delete(t?.servername ?? '')
        finish(markConnectPhase(err))
        return
      }
      verified = true
      if (t && pendingSession) sessions.set(t.servername, pendingSession)
      finish(null)
    })
    socket.on('error', (err) => finish(markConnectPhase(mapConnectError(err, opts))))
    return socket
  }) as unknown as Connector
}
