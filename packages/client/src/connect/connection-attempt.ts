import net from 'node:net'
import tls, { type TLSSocket } from 'node:tls'
import { TimeoutError, TlsClientCertRequiredError, type IpcError } from '@naaccord/ipc-shared'
import type { ResolvedClientOptions } from '../options.js'
import { attachMappedError, mapConnectError } from './connect-errors.js'
import type { Endpoint } from './endpoint.js'
import type { ReadPeerCredentials } from './peer-credentials-loader.js'
import { checkServerProcess } from './server-check.js'
import { tlsConnectOptions, type ClientTlsMaterial } from './tls-options.js'
import { verifyServer, type CachedSession } from './tls-verify.js'

/** What the connections of one connector share. */
export interface ConnectContext {
  readonly opts: ResolvedClientOptions
  readonly material: ClientTlsMaterial | undefined
  /** TLS sessions that passed every check, by servername: offered for resumption. */
  readonly sessions: Map<string, CachedSession>
  /** The kernel's credentials of the peer, once the addon is loaded (the server-process check is on). */
  readPeer: ReadPeerCredentials | undefined
}

/** How undici's connector reports: a socket ready for HTTP, or an error. */
export type ConnectCallback = (err: Error | null, socket: net.Socket | null) => void

/**
 * One connection being opened to a checked endpoint, reported once to undici. Over the socket,
 * in this order: connect to the checked real path, the kernel's credentials of the server
 * process (before TLS sends a byte), then the TLS handshake and our verification of the server
 * certificate. Over TCP, TLS is the check. The connect timeout covers all of it; every socket
 * error becomes one of our errors.
 */
export class ConnectionAttempt {
  /** The connection as opened (plain over the socket; TLS at once over TCP). */
  readonly raw: net.Socket
  /** What undici gets: `raw`, or the TLS socket on top of it. */
  private socket: net.Socket
  private readonly unixFirst: boolean
  private readonly useTls: boolean
  private readonly offered: CachedSession | undefined
  private readonly timer: NodeJS.Timeout
  private done = false
  private verified: tls.PeerCertificate | undefined
  private pendingSession: Buffer | undefined

  constructor(
    private readonly ctx: ConnectContext,
    where: Endpoint,
    private readonly callback: ConnectCallback,
  ) {
    const { opts, material } = ctx
    const t = opts.tls
    this.offered = t ? ctx.sessions.get(t.servername) : undefined
    this.useTls = t !== undefined && material !== undefined
    // Over the socket, TLS starts only once the server process passed the kernel check: the raw
    // connection comes first. Over TCP, TLS is the check.
    this.unixFirst = 'path' in where
    this.raw = this.useTls && !this.unixFirst ? tls.connect({ ...where, ...this.tlsOptions() }) : net.connect(where)
    this.socket = this.raw
    if (!this.unixFirst) this.raw.setKeepAlive(true, 60_000)
    this.raw.setNoDelay(true)
    this.timer = setTimeout(this.onTimeout, opts.connectTimeoutMs)
    this.timer.unref()
    if (this.useTls && !this.unixFirst) this.watchTls(this.raw)
    else this.raw.once('connect', this.onConnect)
    this.raw.on('error', this.onError)
  }

  private tlsOptions(): tls.ConnectionOptions {
    return tlsConnectOptions(this.ctx.opts.tls!, this.ctx.material!, this.offered)
  }

  private finish(err: Error | null): void {
    if (this.done) return
    this.done = true
    clearTimeout(this.timer)
    if (err) {
      this.socket.destroy()
      this.raw.destroy()
      this.callback(err, null)
    } else {
      this.callback(null, this.socket)
    }
  }

  /** A refusal of who is at the other end: the session of that servername is not offered again. */
  private refuse(err: IpcError): void {
    const t = this.ctx.opts.tls
    if (t) this.ctx.sessions.delete(t.servername)
    this.finish(err)
  }

  private readonly onTimeout = (): void => {
    const opts = this.ctx.opts
    this.finish(new TimeoutError(opts.target, opts.connectTimeoutMs, opts.tls ? 'connect and TLS handshake' : 'connect'))
  }

  /** The plain connection is up: check the server process (over the socket), then TLS when configured. */
  private readonly onConnect = (): void => {
    if (!this.peerPassed()) return
    if (!this.useTls) return this.finish(null)
    this.socket = tls.connect({ socket: this.raw, ...this.tlsOptions() })
    this.socket.on('error', this.onError)
    this.watchTls(this.socket)
  }

  /** The kernel's credentials of the server process, before TLS sends a byte; false when refused (reported). */
  private peerPassed(): boolean {
    const { opts, readPeer } = this.ctx
    const check = opts.serverCheck
    if (!this.unixFirst || !check || !readPeer) return true
    let err: IpcError | undefined
    try {
      err = checkServerProcess(this.raw, check, readPeer, opts.target)
    } catch (e) {
      this.finish(e as Error)
      return false
    }
    if (err) this.refuse(err)
    return err === undefined
  }

  private watchTls(s: net.Socket): void {
    s.on('session', this.onSession)
    s.once('secureConnect', this.onSecure)
  }

  /** Sessions are cached only once the connection passed every check. */
  private readonly onSession = (session: Buffer): void => {
    if (this.verified) this.ctx.sessions.set(this.ctx.opts.tls!.servername, { session, peer: this.verified })
    else this.pendingSession = session
  }

  private readonly onSecure = (): void => {
    let v: ReturnType<typeof verifyServer>
    try {
      v = verifyServer(this.socket as TLSSocket, this.ctx.opts, this.offered)
    } catch (e) {
      this.finish(e as Error)
      return
    }
    if (v.err) return this.refuse(v.err)
    this.verified = v.peer
    if (this.pendingSession) this.ctx.sessions.set(this.ctx.opts.tls!.servername, { session: this.pendingSession, peer: v.peer })
    this.finish(null)
  }

  private readonly onError = (err: Error): void => {
    const mapped = mapConnectError(err, this.ctx.opts)
    if (!this.done) return this.finish(mapped)
    // RFC 8446 4.4.2: in TLS 1.3 the client's handshake is complete before the server has
    // checked our certificate, so its refusal (an alert) arrives after the socket was handed
    // to undici, which would report "other side closed". Only an alert is a refusal; an end of
    // stream or a reset without one stays a lost connection (retried when that is safe).
    if (!(mapped instanceof TlsClientCertRequiredError)) return
    // An alert leaves the socket open: close it with our error. A write error has already
    // destroyed the socket, and undici reports this very error object: attach ours to it.
    if (this.socket.destroyed) attachMappedError(err, mapped)
    else this.socket.destroy(mapped)
  }
}
