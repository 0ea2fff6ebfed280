import type { X509Certificate } from 'node:crypto'
import type { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import type { SecureContextOptions, TLSSocket, TlsOptions } from 'node:tls'
import { loadTlsMaterial, watchFiles, type FileWatch, type Logger, type TlsMaterial } from '@naaccord/ipc-shared'
import { peerOf, setPeer, type PeerCertificate } from './peer.js'
import { gateConnections } from './peer-check.js'
import type { ResolvedServerTls } from './tls-options.js'
import { publishRefused } from './server-events.js'

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
export function checkClientCertificate(socket: TLSSocket, tls: ResolvedServerTls): { ok: true; identity: PeerCertificate | undefined } | { ok: false; reason: string } {
  if (tls.clientAuth === 'none') return { ok: true, identity: undefined }
  const cert = socket.getPeerX509Certificate()
  if (!cert) {
    return tls.allowClients ? { ok: false, reason: 'no client certificate, but allowClients is set' } : { ok: true, identity: undefined }
  }
  if (!socket.authorized) return { ok: false, reason: `client certificate ${cert.subject.replace(/\n/g, ', ')} failed verification: ${socket.authorizationError}` }
  const identity = certificateIdentity(cert)
  if (tls.allowClients && !clientAllowed(identity, tls.allowClients)) {
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

/**
 * Check the client certificate of every completed handshake before HTTP: https attaches its
 * parser in its own 'secureConnection' listener, so that listener is put behind the check and a
 * refused certificate's bytes never reach the app. Admitted connections get the peer entry of
 * the raw socket (the Unix credentials) with their certificate identity added. Failed
 * handshakes are logged with the reason Node keeps on the socket.
 */
export function gateClientCertificates(server: EventEmitter, tls: ResolvedServerTls, log: Logger): void {
  gateConnections(
    server,
    (s) => {
      const socket = s as TLSSocket
      const verdict = checkClientCertificate(socket, tls)
      if (!verdict.ok) {
        log.warn({ reason: verdict.reason }, 'refused TLS client')
        publishRefused('client_certificate', socket)
        socket.on('error', () => {})
        socket.destroy()
        return false
      }
      // Node's tls.Server wraps the accepted socket and keeps it as `_parent`: the Unix
      // credentials read at accept are there. The merged entry goes on the TLS socket, which is
      // `req.socket` for every request of this connection (one lookup per request).
      const raw = (socket as TLSSocket & { _parent?: Socket })._parent ?? socket
      const known = peerOf(raw) ?? { transport: 'tcp' as const, remoteAddress: raw.remoteAddress }
      setPeer(socket, { ...known, certificate: verdict.identity })
      return true
    },
    'secureConnection',
  )
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    // A client certificate that fails verification is closed by Node itself (rejectUnauthorized),
    // which reports a bare ECONNRESET; the reason is on the socket.
    const clientCertificate = socket.authorizationError ? String(socket.authorizationError) : undefined
    log.warn({ err: { message: err.message, code: err.code }, clientCertificate }, 'TLS handshake failed')
  })
}
