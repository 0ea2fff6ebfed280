import { X509Certificate } from 'node:crypto'
import { spkiSha256 } from '@naaccord/ipc-shared'

/**
 * The SPKI pin of a certificate: base64 SHA-256 of its DER SubjectPublicKeyInfo. This is the
 * HPKP `pin-sha256` value (RFC 7469 §2.4) and what curl's `--pinnedpubkey sha256//<pin>`
 * expects. It is the same as
 * `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`.
 * The pin follows the key, not the certificate: a renewal that keeps the key keeps the pin,
 * and `certs rotate` (which makes new keys) changes it.
 *
 * @example
 * spkiPin(fs.readFileSync('certs/localhost.crt', 'utf8')) // 'q4l1…='
 * spkiPin(tlsSocket.getPeerX509Certificate())
 */
export function spkiPin(cert: string | Buffer | X509Certificate): string {
  return spkiSha256(cert instanceof X509Certificate ? cert : new X509Certificate(cert))
}
