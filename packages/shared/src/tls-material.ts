import { X509Certificate, createPrivateKey, createHash, type KeyObject } from 'node:crypto'
import path from 'node:path'
import { TlsConfigError, isIpcError } from './errors.js'
import { readSafeFile, trustedUids } from './safe-path.js'

/** A PEM file larger than this is not a certificate bundle or key. */
const MAX_PEM_BYTES = 4 << 20

/**
 * Certificates and keys are given as PEM text or as file paths. Paths are remembered so that
 * server and client can watch them and reload on rotation.
 */
export type PemSource = string | Buffer

export interface LoadedPem {
  /** The PEM text. */
  readonly pem: string
  /** The file it came from, when it came from a file. */
  readonly file: string | undefined
}

function isPemText(value: string): boolean {
  return value.includes('-----BEGIN ')
}

/**
 * Read one PEM option: inline PEM text, or a path to a file holding it. The file is read through
 * the shared safe-path rules: a regular file owned by this process's uid or root, every folder
 * and link on the way owned by one of them and writable by nobody else (a CA bundle another user
 * could swap would let them impersonate the other side). An unsafe file throws `IPC_UNSAFE_PATH`;
 * one that cannot be read, or holds no PEM block, throws `IPC_TLS_CONFIG` naming the option and the file.
 *
 * @example
 * const cert = loadPem('tls.cert', '/etc/naaccord/certs/services.crt')
 */
export function loadPem(option: string, value: PemSource, secret = false): LoadedPem {
  if (Buffer.isBuffer(value)) value = value.toString('utf8')
  if (typeof value !== 'string' || value.length === 0) {
    throw new TlsConfigError(`${option} must be PEM text or a path to a PEM file`)
  }
  if (isPemText(value)) return { pem: value, file: undefined }
  const file = path.resolve(value)
  let pem: string
  try {
    const read = readSafeFile(file, { kind: 'file', label: secret ? 'the private key file' : 'the certificate file', option }, trustedUids(), MAX_PEM_BYTES, secret)
    if ('missing' in read) throw Object.assign(new Error(`${read.missing} does not exist`), { code: 'ENOENT' })
    pem = read.data.toString('utf8')
  } catch (cause) {
    if (isIpcError(cause, 'IPC_UNSAFE_PATH')) throw cause
    const code = (isIpcError(cause) ? cause.code : (cause as NodeJS.ErrnoException).code) ?? 'error'
    throw new TlsConfigError(`${option}: cannot read ${file} (${code}); check the path and that this process (uid ${process.getuid?.()}) may read it`, { cause })
  }
  if (!isPemText(pem)) throw new TlsConfigError(`${option}: ${file} holds no PEM block (expected "-----BEGIN ...")`)
  return { pem, file }
}

/** Split a PEM bundle into its certificates. */
export function parseCertificates(option: string, loaded: LoadedPem): X509Certificate[] {
  const blocks = loaded.pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  if (blocks.length === 0) throw new TlsConfigError(`${option}: ${loaded.file ?? 'the PEM text'} holds no certificate`)
  try {
    return blocks.map((b) => new X509Certificate(b))
  } catch (cause) {
    throw new TlsConfigError(`${option}: ${loaded.file ?? 'the PEM text'} holds a certificate that cannot be parsed`, { cause })
  }
}

/** Parse a private key, naming the option and file when it is unreadable or encrypted. */
export function parsePrivateKey(option: string, loaded: LoadedPem): KeyObject {
  try {
    return createPrivateKey(loaded.pem)
  } catch (cause) {
    throw new TlsConfigError(`${option}: ${loaded.file ?? 'the PEM text'} is not a usable private key (encrypted keys are not supported)`, { cause })
  }
}

/** Base64 SHA-256 of the certificate's DER SubjectPublicKeyInfo: the pin form of curl's `--pinnedpubkey sha256//...`. */
export function spkiSha256(cert: X509Certificate): string {
  const der = cert.publicKey.export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(der).digest('base64')
}

/** The short subject line used in messages: `CN=localhost`. */
export function subjectOf(cert: X509Certificate): string {
  return cert.subject.replace(/\n/g, ', ')
}

export interface TlsMaterial {
  readonly cert: string
  readonly key: string
  readonly ca: string | undefined
  /** Leaf certificate (the first in `cert`). */
  readonly leaf: X509Certificate
  /** Files to watch for rotation. */
  readonly files: readonly string[]
}

export interface TlsMaterialInput {
  cert?: PemSource | undefined
  key?: PemSource | undefined
  ca?: PemSource | undefined
}

/**
 * Load and check a certificate, its key and the CA bundle: the key must match the certificate,
 * the certificate must be inside its validity window and must chain to one of the CA
 * certificates (when a CA is given). Used at start (fail closed) and before every reload
 * (a bad new file keeps the old context).
 *
 * @example
 * const m = loadTlsMaterial('tls', { cert: 'certs/localhost.crt', key: 'certs/localhost.key', ca: 'certs/ca.crt' })
 */
export function loadTlsMaterial(scope: string, input: TlsMaterialInput, now = Date.now()): TlsMaterial {
  if (input.cert === undefined || input.key === undefined) {
    throw new TlsConfigError(`${scope}.cert and ${scope}.key are both required`)
  }
  const certPem = loadPem(`${scope}.cert`, input.cert)
  const keyPem = loadPem(`${scope}.key`, input.key, true)
  const caPem = input.ca === undefined ? undefined : loadPem(`${scope}.ca`, input.ca)
  const chain = parseCertificates(`${scope}.cert`, certPem)
  const leaf = chain[0]!
  const key = parsePrivateKey(`${scope}.key`, keyPem)
  const where = certPem.file ?? `${scope}.cert`
  if (!leaf.checkPrivateKey(key)) {
    throw new TlsConfigError(`${scope}.key (${keyPem.file ?? 'PEM text'}) does not match the certificate ${subjectOf(leaf)} in ${where}`)
  }
  if (Date.parse(leaf.validTo) <= now) {
    throw new TlsConfigError(`${where}: certificate ${subjectOf(leaf)} expired on ${leaf.validTo}; issue a new one (naaccord-ipc certs rotate)`)
  }
  if (Date.parse(leaf.validFrom) > now) {
    throw new TlsConfigError(`${where}: certificate ${subjectOf(leaf)} is not valid before ${leaf.validFrom}`)
  }
  if (caPem) {
    const cas = parseCertificates(`${scope}.ca`, caPem)
    const pool = [...chain.slice(1), ...cas]
    if (!chainsTo(leaf, pool, cas)) {
      throw new TlsConfigError(
        `${where}: certificate ${subjectOf(leaf)} (issuer ${leaf.issuer.replace(/\n/g, ', ')}) does not chain to the CA in ${caPem.file ?? `${scope}.ca`}`,
      )
    }
  }
  const files = [certPem.file, keyPem.file, caPem?.file].filter((f): f is string => f !== undefined)
  return Object.freeze({ cert: certPem.pem, key: keyPem.pem, ca: caPem?.pem, leaf, files: Object.freeze(files) })
}

/** Load only a CA bundle (a client that verifies the server but shows no certificate). */
export function loadCaBundle(option: string, value: PemSource): { pem: string; file: string | undefined } {
  const loaded = loadPem(option, value)
  parseCertificates(option, loaded)
  return loaded
}

function chainsTo(cert: X509Certificate, pool: X509Certificate[], roots: X509Certificate[], depth = 0): boolean {
  if (depth > 8) return false
  for (const root of roots) if (cert.checkIssued(root) && cert.verify(root.publicKey)) return true
  for (const next of pool) {
    if (next !== cert && cert.checkIssued(next) && cert.verify(next.publicKey) && chainsTo(next, pool, roots, depth + 1)) return true
  }
  return false
}
