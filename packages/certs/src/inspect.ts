import { X509Certificate as NodeX509 } from 'node:crypto'
import { InvalidOptionError } from '@naaccord/ipc-shared'
import { keyAlgorithmOf } from './keys.js'
import { spkiPin } from './spki-pin.js'
import { daysUntil } from './validity.js'
import { x509 } from './x509.js'

/** What `inspectCertificate` reports about one certificate. */
export interface CertificateInfo {
  /** The subject DN, RFC 4514 style: `CN=localhost`. */
  readonly subject: string
  /** The subject CN, or undefined when there is none. */
  readonly commonName: string | undefined
  /** The issuer DN. */
  readonly issuer: string
  /** Subject alternative names by type. */
  readonly sans: { readonly dns: readonly string[]; readonly ip: readonly string[]; readonly uri: readonly string[] }
  /** Upper-case hex, as Node's `X509Certificate.serialNumber`. */
  readonly serialNumber: string
  readonly notBefore: Date
  readonly notAfter: Date
  /** Whole days until notAfter (rounded down); negative once expired. */
  readonly daysToExpiry: number
  /** True once notAfter has passed. */
  readonly expired: boolean
  /** True while notBefore is still ahead. */
  readonly notYetValid: boolean
  /** SHA-256 of the DER certificate, colon-separated upper-case hex, as Node's `X509Certificate.fingerprint256`. */
  readonly fingerprint256: string
  /** Base64 SHA-256 of the DER SubjectPublicKeyInfo (see `spkiPin`); curl takes it as `--pinnedpubkey sha256//<pin>`. */
  readonly spkiPin: string
  /** basicConstraints CA:true. */
  readonly isCa: boolean
  /** True when the issuer is the subject and the certificate verifies with its own key. */
  readonly selfSigned: boolean
  /** keyUsage bits by name, e.g. `['digitalSignature']` or `['keyCertSign', 'cRLSign']`. */
  readonly keyUsage: readonly string[]
  /** extKeyUsage by name where known (`serverAuth`, `clientAuth`, ...), else the OID. */
  readonly extKeyUsage: readonly string[]
  /** The key, in this package's names (`ecdsa-p256`, `rsa-2048`, ...), or the key type when it is not one we make. */
  readonly keyAlgorithm: string
}

const KEY_USAGE_NAMES = Object.entries(x509.KeyUsageFlags).filter((e): e is [string, number] => typeof e[1] === 'number')
const EKU_NAMES = new Map<string, string>(Object.entries(x509.ExtendedKeyUsage).map(([name, oid]) => [oid as string, name]))

/**
 * Read the facts of a PEM certificate (the first one, when the PEM holds a chain) that an
 * operator checks before deploying it: names, issuer, validity, fingerprint and SPKI pin.
 * Throws `IPC_INVALID_OPTION` (option `pem`) when the text holds no parsable certificate.
 *
 * @example
 * const info = inspectCertificate(fs.readFileSync('certs/localhost.crt', 'utf8'))
 * info.sans.dns      // ['localhost', 'services.internal']
 * info.daysToExpiry  // 89
 * info.spkiPin       // 'q4l1…='
 *
 * @param now the moment `daysToExpiry`, `expired` and `notYetValid` are computed for; default now.
 */
export function inspectCertificate(pem: string | Buffer, now = new Date()): CertificateInfo {
  const text = Buffer.isBuffer(pem) ? pem.toString('utf8') : pem
  const block = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text)?.[0]
  if (block === undefined) {
    const hint = /PRIVATE KEY-----/.test(text) ? ' (it holds a private key; inspect the .crt file)' : ''
    throw new InvalidOptionError('pem', `holds no "-----BEGIN CERTIFICATE-----" block${hint}`)
  }
  let node: NodeX509
  let cert: x509.X509Certificate
  try {
    node = new NodeX509(block)
    cert = new x509.X509Certificate(block)
  } catch (cause) {
    throw new InvalidOptionError('pem', 'holds a certificate that cannot be parsed', { cause })
  }

  const sans = { dns: [] as string[], ip: [] as string[], uri: [] as string[] }
  for (const { type, value } of cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? []) {
    if (type === 'dns') sans.dns.push(value)
    else if (type === 'ip') sans.ip.push(value)
    else if (type === 'url') sans.uri.push(value)
  }
  const usages = cert.getExtension(x509.KeyUsagesExtension)?.usages ?? 0
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? []
  const notBefore = cert.notBefore
  const notAfter = cert.notAfter
  let keyAlgorithm: string
  try {
    keyAlgorithm = keyAlgorithmOf(node.publicKey)
  } catch {
    keyAlgorithm = node.publicKey.asymmetricKeyType ?? 'unknown'
  }

  return {
    subject: cert.subject,
    commonName: cert.subjectName.getField('CN')[0],
    issuer: cert.issuer,
    sans,
    serialNumber: node.serialNumber,
    notBefore,
    notAfter,
    daysToExpiry: daysUntil(notAfter, now),
    expired: now > notAfter,
    notYetValid: now < notBefore,
    fingerprint256: node.fingerprint256,
    spkiPin: spkiPin(node),
    isCa: node.ca,
    selfSigned: node.checkIssued(node) && node.verify(node.publicKey),
    keyUsage: KEY_USAGE_NAMES.filter(([, bit]) => (usages & bit) !== 0).map(([name]) => name),
    extKeyUsage: eku.map((oid) => EKU_NAMES.get(String(oid)) ?? String(oid)),
    keyAlgorithm,
  }
}
