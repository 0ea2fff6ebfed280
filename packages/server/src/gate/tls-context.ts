import type { X509Certificate } from 'node:crypto'
import type { Socket } from 'node:net'
import tls, { type SecureContextOptions, type TLSSocket, type TlsOptions } from 'node:tls'
import { loadTlsMaterial, watchFiles, type FileWatch, type Logger, type TlsMaterial } from '@naaccord/ipc-shared'
import { setPeer, withPeerFields, type Peer, type PeerCertificate } from './peer.js'
import type { ResolvedServerTls } from './tls-options.js'
import { publishRefused } from '../server-events.js'

/** The options handed to https.createServer / setSecureContext for the current material. */
export function secureContextOptions(material: TlsMaterial, tls: ResolvedServerTls): SecureContextOptions {
  return { cert: material.cert, key: material.key, ...(material.ca === undefined ? {} : { ca: material.ca }), minVersion: tls.minVersion }
}

/** Server options for https.createServer. */
export function serverTlsOptions(tls: ResolvedServerTls): TlsOptions {
  return {
    ...secureContextOptions(tls.material, tls),
    requestCert: tls.clientAuth !== 'none',
    rejectUnauthorized: tls.clientAuth === 'require',
  }
}

/** The identity of a verified client certificate, read once per connection. */
export function certificateIdentity(cert: X509Certificate): PeerCertificate {
  const sans = (cert.subjectAltName ?? '').split(/,\s*/).filter(Boolean)
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1]
  return {
    subject: cert.subject.replace(/\n/g, ', '),
    commonName: cn,
    dnsNames: sans.filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)),
    uris: sans.filter((s) => s.startsWith('URI:')).map((s) => s.slice(4)),
    fingerprint256: cert.fingerprint256,
    validTo: cert.validTo,
  }
}

/** Whether a client identity matches `allowClients` (CN, DNS or URI SAN, or SHA-256 fingerprint). */
export function clientAllowed(identity: PeerCertificate, allowClients: readonly string[]): boolean {
  const fp = identity.fingerprint256.toUpperCase()
  return allowClients.some(
    (entry) =>
      entry === identity.commonName ||
      identity.dnsNames.includes(entry) ||
      identity.uris.includes(entry) ||
      entry.toUpperCase() === fp,
  )
}

/**
 * Decide on a completed handshake: with clientAuth "optional", a presented certificate that
 * failed verification is refused (no certificate is fine, a bad one is not); `allowClients`
 * narrows verified certificates. Returns the identity, or a reason to refuse.
 */
export function checkClientCertificate(socket: TLSSocket, policy: ResolvedServerTls): { ok: true; identity: PeerCertificate | undefined } | { ok: false; reason: string } {
  if (policy.clientAuth === 'none') return { ok: true, identity: undefined }
  const cert = socket.getPeerX509Certificate()
  if (!cert) {
    return policy.allowClients ? { ok: false, reason: 'no client certificate, but allowClients is set' } : { ok: true, identity: undefined }
  }
  if (!socket.authorized) return { ok: false, reason: `client certificate ${cert.subject.replace(/\n/g, ', ')} failed verification: ${socket.authorizationError}` }
  const identity = certificateIdentity(cert)
  if (policy.allowClients && !clientAllowed(identity, policy.allowClients)) {
    return { ok: false, reason: `client certificate ${identity.subject} (${identity.fingerprint256}) is not in allowClients` }
  }
  return { ok: true, identity }
}

export interface SecureContextTarget {
  setSecureContext(options: SecureContextOptions): void
}

/**
 * Watch the certificate, key and CA files; on change, load and check the new material (key
 * matches certificate, not expired, chains to the CA) and swap it into every TLS server with
 * setSecureContext. New connections get the new certificate; existing ones keep theirs. A bad
 * new file is logged and the old context stays.
 */
export function watchServerCertificates(
  tls: ResolvedServerTls,
  targets: readonly SecureContextTarget[],
  log: Logger,
  onSwap: (material: TlsMaterial) => void,
): FileWatch | undefined {
  if (!tls.watch || tls.material.files.length === 0) return undefined
  let current = tls.material
  return watchFiles(tls.material.files, () => {
    let next: TlsMaterial
    try {
      next = loadTlsMaterial('tls', tls.input)
    } catch (err) {
      log.error({ err }, 'new TLS files rejected; the current certificate stays in use')
      return
    }
    if (next.cert === current.cert && next.key === current.key && next.ca === current.ca) return
    for (const t of targets) t.setSecureContext(secureContextOptions(next, tls))
    current = next
    onSwap(next)
    log.info({ subject: next.leaf.subject.replace(/\n/g, ', '), validTo: next.leaf.validTo, fingerprint256: next.leaf.fingerprint256 }, 'TLS certificate reloaded')
  })
}

/** The server certificate in use: the one loaded at start, then each one the watch swapped in. */
export interface CertificateInUse {
  /** Undefined without TLS. */
  readonly current: TlsMaterial['leaf'] | undefined
  /** Stop watching the files (close() does). */
  stop(): void
}

/**
 * Keep track of the certificate `targets` serve: with TLS and `watch`, the files are watched
 * (watchServerCertificates) and `current` follows every swap; otherwise it stays the one loaded.
 *
 * @example
 * const cert = trackServerCertificate(opts.tls, tlsServers, log)
 * cert.current?.validTo
 */
export function trackServerCertificate(tls: ResolvedServerTls | undefined, targets: readonly SecureContextTarget[], log: Logger): CertificateInUse {
  if (tls === undefined) return { current: undefined, stop() {} }
  let current = tls.material.leaf
  const watch = watchServerCertificates(tls, targets, log, (m) => {
    current = m.leaf
  })
  return {
    get current() {
      return current
    },
    stop() {
      watch?.close()
    },
  }
}

/** The TLS step of one listener: hand it raw sockets that passed the gate; admitted TLS sockets come out of `onSecure`. */
export interface TlsStage {
  /** Where the context lives: `setSecureContext` swaps the certificate for new connections. */
  readonly server: tls.Server
  /** Start the handshake on an admitted raw socket. */
  accept(socket: Socket): void
}

export interface TlsStageOptions {
  tls: ResolvedServerTls
  /** A handshake not finished by then is cut, and its descriptor freed. */
  handshakeTimeoutMs: number
  log: Logger
  /** What the connection is known as before its certificate is added (transport, Unix credentials). Undefined refuses it. */
  peerOf: (socket: TLSSocket) => Peer | undefined
  /**
   * Called with each TLS socket whose certificate passed the policy, with req.peer set, and the
   * raw socket it was made over (the one handed to `accept`, which the listener's budget counts).
   */
  onSecure: (socket: TLSSocket, accepted: Socket | undefined) => void
}

/**
 * The raw socket a server-side TLS socket was made over. Node keeps it as `_parent`
 * (lib/_tls_wrap.js, TLSSocket.prototype._init), as peercred's descriptorOf also relies on;
 * undefined if a Node release moves it, and the caller then refuses the connection (fail
 * closed): test/network.test.ts (the connection budget tests) fails loudly if that happens.
 */
function acceptedSocketOf(socket: TLSSocket): Socket | undefined {
  const parent = (socket as TLSSocket & { _parent?: unknown })._parent
  return parent !== null && typeof parent === 'object' ? (parent as Socket) : undefined
}

/**
 * TLS for one listener on a `tls.Server` that never listens: raw sockets that passed the gate
 * are handed to it with `emit('connection', socket)` (as a listening server would), so Node does
 * the handshake, the handshake timeout, the client-certificate verification (`authorized`),
 * session tickets and `setSecureContext` rotation exactly as for its own connections. Each
 * completed handshake is then checked against the certificate policy (`checkClientCertificate`)
 * before any byte reaches HTTP. Every failed or stalled handshake is destroyed at once: a TLS
 * socket that never finished its handshake cannot flush an HTTP answer, and would otherwise keep
 * its descriptor.
 *
 * @example
 * const onSecure = (s: TLSSocket, raw?: Socket) => (raw && tracker.authenticate(raw) ? http.emit('connection', s) : s.destroy())
 * const stage = createTlsStage({ tls, handshakeTimeoutMs: 10_000, log, peerOf, onSecure })
 * netServer.on('connection', (raw) => stage.accept(raw))
 */
export function createTlsStage(options: TlsStageOptions): TlsStage {
  const { tls: policy, log } = options
  const server = tls.createServer({ ...serverTlsOptions(policy), handshakeTimeout: options.handshakeTimeoutMs })
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.on('error', discard)
    const verdict = checkClientCertificate(socket, policy)
    if (!verdict.ok) {
      log.warn({ reason: verdict.reason }, 'refused TLS client')
      publishRefused('client_certificate', socket)
      socket.destroy()
      return
    }
    const known = options.peerOf(socket)
    if (known === undefined) {
      socket.destroy()
      return
    }
    setPeer(socket, withPeerFields(known, { certificate: verdict.identity }))
    socket.off('error', discard)
    options.onSecure(socket, acceptedSocketOf(socket))
  })
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    // A client certificate that fails verification is closed by Node itself (rejectUnauthorized),
    // which reports a bare ECONNRESET; the reason is on the socket.
    const clientCertificate = socket.authorizationError ? String(socket.authorizationError) : undefined
    log.warn({ err: { message: err.message, code: err.code }, clientCertificate }, 'TLS handshake failed')
    socket.on('error', discard)
    socket.destroy()
  })
  return {
    server,
    accept(socket) {
      server.emit('connection', socket)
    },
  }
}

const discard = () => {}
