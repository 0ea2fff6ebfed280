import { generateKey } from './keys.js'
import { resolveCaOptions, type CaPem, type CreateCaOptions } from './options.js'
import { randomSerialNumber } from './serial-number.js'
import { validityWindow } from './validity.js'
import { x509 } from './x509.js'

/**
 * Create a self-signed CA for naaccord-ipc: an ECDSA P-256 key (by default) and a certificate
 * with basicConstraints CA:true, pathlen 0 (it signs leaves only, never another CA) and
 * keyUsage keyCertSign + cRLSign, both critical, plus a subject key identifier that issued
 * certificates reference in their authority key identifier.
 *
 * Replaces `openssl genrsa -out ca.key 4096; openssl req -new -x509 -days 3650 ...`.
 *
 * @example
 * const ca = await createCa({ commonName: 'NAACCORD-Internal-CA', days: 1825 })
 * await fs.writeFile('ca.crt', ca.certPem)
 */
export async function createCa(options: CreateCaOptions = {}): Promise<CaPem> {
  const o = resolveCaOptions(options)
  const { notBefore, notAfter } = validityWindow(o)
  const key = await generateKey(o.keyAlgorithm)
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialNumber(),
    name: [{ CN: [o.commonName] }],
    notBefore,
    notAfter,
    keys: key.keys,
    signingAlgorithm: key.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(key.keys.publicKey),
    ],
  })
  return { certPem: cert.toString('pem') + '\n', keyPem: key.keyPem }
}
