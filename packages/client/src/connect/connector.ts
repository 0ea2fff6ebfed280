import net from 'node:net'
import tls, { type TLSSocket } from 'node:tls'
import type { buildConnector } from 'undici'
import { TimeoutError, TlsClientCertRequiredError, type IpcError } from '@naaccord/ipc-shared'
import { attachMappedError, mapConnectError } from './connect-errors.js'
import type { ResolvedClientOptions } from '../options.js'
import { loadPeerCredentials, type ReadPeerCredentials } from './peer-credentials-loader.js'
import { checkServerProcess, checkSocketPath } from './server-check.js'
import { verifyServer, type CachedSession } from './tls-verify.js'

/** The TLS credentials in force (swapped on rotation). */
export interface ClientTlsMaterial {
  ca: string | undefined
  cert: string | undefined
  key: string | undefined
}

type Connector = buildConnector.connector

/** An ENOENT as connect(2) would report it: mapped and retried like a socket not there yet. */
function absent(socketPath: string, missing: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`connect ENOENT ${socketPath} (${missing} does not exist)`), { code: 'ENOENT', syscall: 'connect', address: socketPath })
}

/**
 * The undici connector: opens a Unix socket or TCP connection (TLS on top when configured),
 * enforces the connect timeout, and runs the checks on who is at the other end before undici
 * writes a byte. Over the socket, in this order: the safe-path check of the socket path (no
 * folder, link or socket file another user could have placed), connect to the checked real path,
 * the kernel's credentials of the server process, and only then the TLS handshake. TLS sessions
 * are cached per servername only after a connection passed every check.
 */
export function createConnector(opts: ResolvedClientOptions, material: ClientTlsMaterial | undefined): Connector {
  const sessions = new Map<string, CachedSession>()
  const t = opts.tls
  const check = opts.serverCheck
  // The kernel check of the server process needs the native addon: loaded once, before the first connection.
  let readPeer: ReadPeerCredentials | undefined
  type Callback = (err: Error | null, socket: net.Socket | null) => void
  const connector = (target: { hostname: string; port: string }, callback: Callback) => {
    if (check?.processUids === undefined || readPeer) return connect(target, callback)
    loadPeerCredentials().then(
      (read) => {
        readPeer = read
        connect(target, callback)
      },
      (err: Error) => callback(err, null),
    )
  }
  const connect = ({ hostname, port }: { hostname: string; port: string }, callback: Callback) => {
    let where: { path: string } | { host: string; port: number }
    if (opts.socketPath !== undefined && check) {
      let checked: { realPath: string } | { missing: string }
      try {
        checked = checkSocketPath(opts.socketPath, check)
      } catch (err) {
        callback(err as Error, null)
        return
      }
      if ('missing' in checked) {
        callback(mapConnectError(absent(opts.socketPath, checked.missing), opts), null)
        return
      }
      where = { path: checked.realPath }
    } else {
      where = { host: opts.host ?? hostname, port: Number(opts.port ?? port) }
    }
    const offered = t ? sessions.get(t.servername) : undefined
    const tlsOptions = (): tls.ConnectionOptions => ({
      servername: net.isIP(t!.servername) ? undefined : t!.servername,
      ...(material!.ca === undefined ? {} : { ca: material!.ca }),
      ...(material!.cert === undefined ? {} : { cert: material!.cert, key: material!.key }),
      minVersion: t!.minVersion,
      // Verification is done by verifyServer on every connection (see above), and fails closed.
      rejectUnauthorized: false,
      // With a SPIFFE serverId the ID replaces the host name; verifyServer checks it, so Node's own
      // host check must not mark the connection unauthorized.
      ...(t!.serverId === undefined ? {} : { checkServerIdentity: () => undefined }),
      session: offered?.session,
      ALPNProtocols: ['http/1.1'],
    })
    const useTls = t !== undefined && material !== undefined
    // Over the socket, TLS starts only once the server process passed the kernel check: the raw
    // connection comes first. Over TCP, TLS is the check.
    const unixFirst = 'path' in where
    const raw: net.Socket = useTls && !unixFirst ? tls.connect({ ...where, ...tlsOptions() }) : net.connect(where)
    let socket: net.Socket = raw
    if (!unixFirst) raw.setKeepAlive(true, 60_000)
    raw.setNoDelay(true)

    let done = false
    const finish = (err: Error | null) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (err) {
        socket.destroy()
        raw.destroy()
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
    const onSecure = () => {
      let err: IpcError | undefined
      let peer: tls.PeerCertificate | undefined
      try {
        const v = verifyServer(socket as TLSSocket, opts, offered)
        err = v.err
        if (!v.err) peer = v.peer
      } catch (e) {
        finish(e as Error)
        return
      }
      if (err) {
        sessions.delete(t!.servername)
        finish(err)
        return
      }
      if (peer) {
        verified = peer
        if (pendingSession) sessions.set(t!.servername, { session: pendingSession, peer })
      }
      finish(null)
    }
    const watchTls = (s: net.Socket) => {
      s.on('session', (session: Buffer) => {
        if (verified) sessions.set(t!.servername, { session, peer: verified })
        else pendingSession = session
      })
      s.once('secureConnect', onSecure)
    }
    const onError = (err: Error) => {
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
    }
    if (useTls && !unixFirst) {
      watchTls(raw)
    } else {
      raw.once('connect', () => {
        if (unixFirst && check && readPeer) {
          let err: IpcError | undefined
          try {
            err = checkServerProcess(raw, check, readPeer, opts.target)
          } catch (e) {
            finish(e as Error)
            return
          }
          if (err) {
            if (t) sessions.delete(t.servername)
            finish(err)
            return
          }
        }
        if (!useTls) {
          finish(null)
          return
        }
        socket = tls.connect({ socket: raw, ...tlsOptions() })
        socket.on('error', onError)
        watchTls(socket)
      })
    }
    raw.on('error', onError)
    return raw
  }
  return connector as unknown as Connector
}
