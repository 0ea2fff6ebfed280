import type { X509Certificate } from 'node:crypto'
import { parseSpiffeId, pick, uriSans, type Env } from '@naaccord/ipc-shared'

/** Environment variable of `tls.serverId`. */
export const SERVER_ID_ENV = 'NAACCORD_TLS_SERVER_ID'

/**
 * Check `tls.serverId` (explicit, then NAACCORD_TLS_SERVER_ID): a SPIFFE ID, or undefined.
 *
 * @example
 * resolveServerId('spiffe://example.org/services', {}) // 'spiffe://example.org/services'
 */
export function resolveServerId(value: unknown, env: Env): string | undefined {
  const raw = pick(value, env, SERVER_ID_ENV)
  return raw === undefined ? undefined : parseSpiffeId('tls.serverId', raw)
}

/**
 * Why the server certificate does not prove `serverId`, or undefined when one of its URI SANs
 * is exactly that ID (SPIFFE X.509-SVID: the ID is the URI SAN; compared as a whole string).
 *
 * @example
 * serverIdProblem(cert, 'spiffe://example.org/services') // undefined, or 'the certificate carries ...'
 */
export function serverIdProblem(cert: X509Certificate, serverId: string): string | undefined {
  const uris = uriSans(cert.subjectAltName)
  if (uris.includes(serverId)) return undefined
  return `the certificate carries ${uris.length ? uris.join(', ') : 'no URI SAN'}, not the expected server ID ${serverId}`
}
