import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { SecuritySetting } from '../security-report.js'

/** What a listener reports about itself. */
export interface ListenerHealth {
  transport: 'unix' | 'tcp'
  address: string
  tls: boolean
}

export interface TlsConnectionHealth {
  version: string | null
  cipher: string | undefined
  serverCertificate: CertificateHealth | undefined
  peerCertificate: CertificateHealth | undefined
}

export interface CertificateHealth {
  subject: string
  validTo: string
  daysToExpiry: number
  /** True under 30 days to expiry. */
  expiresSoon: boolean
}

export interface Health {
  status: 'ok' | 'warning'
  pid: number
  uptimeSeconds: number
  listeners: ListenerHealth[]
  /** The connection this health request came over (TLS details when TLS). */
  connection: { transport: 'unix' | 'tcp'; tls: TlsConnectionHealth | undefined }
  warnings: string[]
  /**
   * The start-up security report: each setting, its value and source, and whether it weakens the
   * default (`naaccord-ipc doctor` shows each weakening as a warning). Weakenings do not change
   * `status`, which is about the service's health.
   */
  security: SecuritySetting[]
}

export const EXPIRY_WARNING_DAYS = 30

/** Days until `validTo`, rounded down; negative once expired. */
export function certificateHealth(subject: string, validTo: string, now = Date.now()): CertificateHealth {
  const daysToExpiry = Math.floor((Date.parse(validTo) - now) / 86_400_000)
  return { subject, validTo, daysToExpiry, expiresSoon: daysToExpiry < EXPIRY_WARNING_DAYS }
}

function tlsHealth(socket: TLSSocket): TlsConnectionHealth {
  const own = socket.getX509Certificate?.()
  const peer = socket.getPeerX509Certificate?.()
  return {
    version: socket.getProtocol(),
    cipher: socket.getCipher()?.name,
    serverCertificate: own && certificateHealth(own.subject.replace(/\n/g, ', '), own.validTo),
    peerCertificate: peer && certificateHealth(peer.subject.replace(/\n/g, ', '), peer.validTo),
  }
}

/** Build the health report for one request's connection. */
export function healthReport(req: IncomingMessage, listeners: readonly ListenerHealth[], startedAt: number, security: readonly SecuritySetting[] = []): Health {
  const socket = req.socket as TLSSocket
  const tls = socket.encrypted ? tlsHealth(socket) : undefined
  const warnings: string[] = []
  for (const [which, cert] of [
    ['server', tls?.serverCertificate],
    ['client', tls?.peerCertificate],
  ] as const) {
    if (cert?.expiresSoon) warnings.push(`${which} certificate ${cert.subject} expires in ${cert.daysToExpiry} days (${cert.validTo})`)
  }
  return {
    status: warnings.length ? 'warning' : 'ok',
    pid: process.pid,
    uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    listeners: [...listeners],
    connection: { transport: req.peer?.transport ?? (socket.remoteAddress ? 'tcp' : 'unix'), tls },
    warnings,
    security: [...security],
  }
}

/** Send the health report as JSON (status 200 even with warnings: the service answers). */
export function sendHealth(req: IncomingMessage, res: ServerResponse, listeners: readonly ListenerHealth[], startedAt: number, security: readonly SecuritySetting[]): void {
  const body = JSON.stringify(healthReport(req, listeners, startedAt, security))
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
  res.end(body)
}
