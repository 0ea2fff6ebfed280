import { X509Certificate as NodeX509 } from 'node:crypto'
import { InvalidOptionError } from '@naaccord/ipc-shared'
import { CaUnusableError } from './errors.js'
import { generateKey, importSigningKey, keyMatches, type SigningKey } from './keys.js'
import { resolveIssueOptions, type CaPem, type IssueCertificateOptions } from './options.js'
import { randomSerialNumber } from './serial-number.js'
import { subjectNames } from './subject-names.js'
import { validityWindow } from './validity.js'
import { x509 } from './x509.js'

/** A certificate and its private key, as PEM text. */
export interface CertificatePem {
  readonly certPem: string
  readonly keyPem: string
}

/**
 * Issue a server or client certificate signed by `ca`, with a new private key.
 *
 * - Subject: `CN=<names[0]>`. SANs: every name as DNS or IP (`localhost` on a server also gets
 *   IP 127.0.0.1 and ::1); a client also gets the URI SAN `urn:naaccord:client:<names[0]>`.
 * - EKU serverAuth (server) or clientAuth (client); keyUsage digitalSignature, critical (plus
 *   keyEncipherment for RSA keys, for TLS 1.2 RSA key exchange); basicConstraints CA:false;
 *   subject and authority key identifiers; a random positive 16-byte serial.
 * - Valid from 5 minutes ago (clock skew) for `days` days (default 90), unless `notBefore` /
 *   `notAfter` are given; `notAfter` may be in the past, to test expiry handling.
 *
 * Refused with `IPC_CERTS_CA_UNUSABLE` when the CA key does not match the CA certificate, the
 * CA certificate is not a CA, has expired, or would expire before the new certificate.
 *
 * @example
 * const server = await issueCertificate({ ca, kind: 'server', names: ['localhost', 'services.internal'] })
 * const client = await issueCertificate({ ca, kind: 'client', names: ['web-server'], days: 30 })
 */
export async function issueCertificate(options: IssueCertificateOptions): Promise<CertificatePem> {
  const o = resolveIssueOptions(options)
  const { notBefore, notAfter } = validityWindow(o)
  const ca = await loadCa(o.ca)
  checkCaValidity(ca.node, notAfter)

  const names = subjectNames(o.kind, o.names)
  const key = await generateKey(o.keyAlgorithm)
  const keyUsage = x509.KeyUsageFlags.digitalSignature | (o.keyAlgorithm.startsWith('rsa') ? x509.KeyUsageFlags.keyEncipherment : 0)
  const caSki = ca.cert.getExtension(x509.SubjectKeyIdentifierExtension)
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: [{ CN: [names.commonName] }],
    issuer: ca.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: key.keys.publicKey,
    signingKey: ca.key.privateKey,
    signingAlgorithm: ca.key.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(keyUsage, true),
      new x509.ExtendedKeyUsageExtension([o.kind === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth], false),
      new x509.SubjectAlternativeNameExtension([
        ...names.dns.map((value) => ({ type: 'dns' as const, value })),
        ...names.ip.map((value) => ({ type: 'ip' as const, value })),
        ...(o.spiffeId !== undefined ? [o.spiffeId] : names.uri).map((value) => ({ type: 'url' as const, value })),
      ]),
      await x509.SubjectKeyIdentifierExtension.create(key.keys.publicKey),
      caSki ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId, false) : await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey, false),
    ],
  })
  return { certPem: cert.toString('pem') + '\n', keyPem: key.keyPem }
}

interface LoadedCa {
  readonly node: NodeX509
  readonly cert: x509.X509Certificate
  readonly key: SigningKey
}

async function loadCa(pem: CaPem): Promise<LoadedCa> {
  let node: NodeX509
  let cert: x509.X509Certificate
  try {
    node = new NodeX509(pem.certPem)
    cert = new x509.X509Certificate(pem.certPem)
  } catch (cause) {
    throw new InvalidOptionError('ca.certPem', 'holds no certificate that can be parsed', { cause })
  }
  let key: SigningKey
  try {
    key = await importSigningKey(pem.keyPem)
  } catch (cause) {
    throw new InvalidOptionError('ca.keyPem', `is not a usable private key: ${(cause as Error).message}`, { cause })
  }
  if (!node.ca) throw new CaUnusableError(`${subject(node)} is not a CA certificate (basicConstraints CA:false); sign with the certificate made by \`certs init\``)
  if (!keyMatches(key.keyObject, node.publicKey)) {
    throw new CaUnusableError(`the CA key does not belong to the CA certificate ${subject(node)}; check that ca.key and ca.crt come from the same \`certs init\``)
  }
  return { node, cert, key }
}

function checkCaValidity(ca: NodeX509, leafNotAfter: Date): void {
  const caNotAfter = new Date(ca.validTo)
  if (caNotAfter.getTime() <= Date.now()) {
    throw new CaUnusableError(`the CA ${subject(ca)} expired on ${caNotAfter.toISOString()}; make a new one with \`certs init --force\` and reissue every certificate`)
  }
  if (leafNotAfter.getTime() > caNotAfter.getTime()) {
    throw new CaUnusableError(
      `the certificate would expire on ${leafNotAfter.toISOString()}, after its CA ${subject(ca)} (${caNotAfter.toISOString()}); ` +
        'ask for fewer days, or renew the CA with `certs init --force`',
    )
  }
}

function subject(cert: NodeX509): string {
  return cert.subject.replace(/\n/g, ', ')
}
