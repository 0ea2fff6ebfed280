import { InvalidOptionError } from './errors.js'

/**
 * SPIFFE IDs (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md):
 * `spiffe://<trust domain>/<path>`. The trust domain is lower-case letters, digits, `.`, `-`
 * and `_`; path segments are letters, digits, `.`, `-` and `_`, none empty, `.` or `..`; no
 * port, user info, query or fragment; at most 2048 bytes.
 */
const TRUST_DOMAIN = /^[a-z0-9._-]+$/
const SEGMENT = /^[A-Za-z0-9._-]+$/
export const SPIFFE_SCHEME = 'spiffe://'

/** Why `value` is not a SPIFFE ID, or undefined when it is one. */
export function spiffeIdProblem(value: string): string | undefined {
  if (!value.startsWith(SPIFFE_SCHEME)) return 'must start with spiffe://'
  if (Buffer.byteLength(value) > 2048) return 'is longer than 2048 bytes'
  const rest = value.slice(SPIFFE_SCHEME.length)
  const slash = rest.indexOf('/')
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash)
  if (!TRUST_DOMAIN.test(trustDomain)) return `has trust domain "${trustDomain}"; use lower-case letters, digits, ".", "-" and "_" only (no port or user)`
  if (slash === -1) return 'names a trust domain only; a workload ID needs a path, e.g. spiffe://example.org/web-server'
  for (const segment of rest.slice(slash + 1).split('/')) {
    if (segment === '' || segment === '.' || segment === '..' || !SEGMENT.test(segment)) {
      return `has path segment "${segment}"; segments are non-empty letters, digits, ".", "-" and "_" (no trailing slash, query or fragment)`
    }
  }
  return undefined
}

/**
 * Check a SPIFFE ID option and return it unchanged; throws `IPC_INVALID_OPTION` naming `name`.
 *
 * @example
 * parseSpiffeId('tls.serverId', 'spiffe://example.org/services') // 'spiffe://example.org/services'
 */
export function parseSpiffeId(name: string, value: unknown): string {
  if (typeof value !== 'string') throw new InvalidOptionError(name, `must be a SPIFFE ID such as spiffe://example.org/web-server, got ${String(value)}`)
  const problem = spiffeIdProblem(value)
  if (problem) throw new InvalidOptionError(name, `${problem}, got "${value}"`)
  return value
}

/**
 * The URI SANs of a certificate as Node reports them (`subjectaltname` of
 * `getPeerCertificate()` or `X509Certificate.subjectAltName`).
 *
 * @example
 * uriSans('DNS:localhost, URI:spiffe://example.org/services') // ['spiffe://example.org/services']
 */
export function uriSans(subjectAltName: string | undefined): string[] {
  return (subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4))
}
