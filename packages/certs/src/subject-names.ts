import { isIP } from 'node:net'
import { InvalidOptionError } from '@naaccord/ipc-shared'
import { CLIENT_URI_PREFIX, type CertKind } from './defaults.js'

/** The names a leaf certificate carries: its subject CN and its subjectAltName entries. */
export interface SubjectNames {
  /** The first name: the subject CN. */
  readonly commonName: string
  readonly dns: readonly string[]
  readonly ip: readonly string[]
  readonly uri: readonly string[]
}

// RFC 1123 labels; `*` only as a whole left-most label of a server name (RFC 6125 §6.4.3).
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/
// X.520 ub-common-name: a CN holds at most 64 characters.
const CN_MAX = 64

/**
 * Check and normalise the `names` of a certificate: DNS names are lower-cased, IP literals
 * written in their canonical form, duplicates dropped (the first keeps its place). `option`
 * names the option or flag in the error.
 *
 * @example
 * normaliseNames('names', ['LocalHost', '127.0.0.1'], 'server') // ['localhost', '127.0.0.1']
 */
export function normaliseNames(option: string, names: readonly unknown[], kind: CertKind): string[] {
  if (names.length === 0) throw new InvalidOptionError(option, 'give at least one name; the first becomes the subject CN')
  const out: string[] = []
  names.forEach((raw, i) => {
    // A CLI flag (`--name`) is named as such; an API option by index (`names[1]`).
    const name = normaliseName(option.startsWith('--') ? option : `${option}[${i}]`, raw, kind)
    if (!out.includes(name)) out.push(name)
  })
  const first = out[0] as string
  if (first.length > CN_MAX) {
    throw new InvalidOptionError(option, `the first name becomes the subject CN, which holds at most ${CN_MAX} characters; "${first}" has ${first.length}. Put a shorter name first`)
  }
  return out
}

function normaliseName(option: string, raw: unknown, kind: CertKind): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw new InvalidOptionError(option, `must be a host name or IP address, got ${JSON.stringify(raw)}`)
  const value = raw.trim()
  if (value.includes('%')) throw new InvalidOptionError(option, `"${value}": an IP address with a zone id cannot be certified; drop the "%..." part`)
  const ip = canonicalIp(value)
  if (ip !== undefined) return ip
  const name = value.toLowerCase().replace(/\.$/, '')
  const labels = name.split('.')
  const wildcard = labels[0] === '*'
  if (wildcard && kind === 'client') throw new InvalidOptionError(option, `a client certificate names one client; wildcards such as "${value}" are for servers`)
  if (wildcard && labels.length < 3) throw new InvalidOptionError(option, `a wildcard must sit below a domain with at least two labels (e.g. "*.services.internal"), got "${value}"`)
  const bad = (wildcard ? labels.slice(1) : labels).find((label) => !LABEL.test(label))
  if (name.length > 253 || bad !== undefined) {
    throw new InvalidOptionError(option, `"${value}" is not a valid host name: use letters, digits and hyphens in dot-separated labels of at most 63 characters (RFC 1123), or an IP address`)
  }
  return name
}

/** The canonical text of an IP literal, or undefined when `value` is not one. */
function canonicalIp(value: string): string | undefined {
  const bare = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value
  const family = isIP(bare)
  if (family === 4) return bare.split('.').map(Number).join('.')
  if (family === 6) {
    // new URL() canonicalises IPv6 (lower case, `::` compression, embedded IPv4 as hex).
    return new URL(`http://[${bare}]/`).hostname.slice(1, -1)
  }
  return undefined
}

/**
 * The URI SAN of a client certificate: `urn:naaccord:client:<first name>`.
 *
 * @example
 * clientUri('web-server') // 'urn:naaccord:client:web-server'
 */
export function clientUri(commonName: string): string {
  return `${CLIENT_URI_PREFIX}${commonName}`
}

/**
 * The subject CN and SANs for normalised names.
 *
 * - server: every DNS name and IP literal; `localhost` also gets IP 127.0.0.1 and ::1, because a
 *   client that connects to https://127.0.0.1 checks the IP SAN, not the name (RFC 6125 §6.2.1).
 * - client: the same DNS/IP SANs, plus one URI SAN `urn:naaccord:client:<first name>`, a
 *   stable identity a server can authorise on (`getPeerCertificate().subjectaltname`) without
 *   parsing the subject.
 *
 * @example
 * subjectNames('server', ['localhost']) // { commonName: 'localhost', dns: ['localhost'], ip: ['127.0.0.1', '::1'], uri: [] }
 */
export function subjectNames(kind: CertKind, names: readonly string[]): SubjectNames {
  const dns: string[] = []
  const ip: string[] = []
  const add = (list: string[], v: string) => void (list.includes(v) ? undefined : list.push(v))
  for (const name of names) {
    if (isIP(name)) add(ip, name)
    else add(dns, name)
    if (kind === 'server' && name === 'localhost') {
      add(ip, '127.0.0.1')
      add(ip, '::1')
    }
  }
  const commonName = names[0] ?? ''
  return { commonName, dns, ip, uri: kind === 'client' ? [clientUri(commonName)] : [] }
}

/**
 * The file name (without `.crt`/`.key`) for a certificate whose first name is `name`:
 * lower case, `*` becomes `wildcard`, anything but letters, digits, `.`, `_` and `-` becomes `-`.
 * `ca` is refused by the caller, since `ca.crt` is the CA's.
 *
 * @example
 * fileBaseName('*.services.internal') // 'wildcard.services.internal'
 */
export function fileBaseName(name: string): string {
  const base = name
    .toLowerCase()
    .replace(/\*/g, 'wildcard')
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[.-]+/, '')
  return base === '' ? 'cert' : base
}
