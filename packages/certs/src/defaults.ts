/** Key algorithms this tool can generate. ECDSA P-256 is the default: small, fast, and accepted by every TLS stack we use. */
export const KEY_ALGORITHMS = ['ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const

export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number]

/** What a leaf certificate is for: `server` gets EKU serverAuth, `client` gets EKU clientAuth. */
export const CERT_KINDS = ['server', 'client'] as const

export type CertKind = (typeof CERT_KINDS)[number]

/**
 * Every default of the certs package, in one place. Options resolvers read these; code
 * downstream never writes `?? default`.
 */
export const CERTS_DEFAULTS = Object.freeze({
  /** Subject CN of a new CA. */
  caCommonName: 'naaccord-ipc internal CA',
  /** Lifetime of a new CA, in days (5 years). */
  caDays: 1825,
  /** Lifetime of a server or client certificate, in days. Short on purpose: `certs rotate` renews them. */
  leafDays: 90,
  /** `rotate` reissues leaves that expire within this many days. */
  rotateWithinDays: 30,
  keyAlgorithm: 'ecdsa-p256' as KeyAlgorithm,
  /** The folder the CLI reads and writes, relative to the working directory. */
  dir: './certs',
  /** notBefore is set this far in the past so that a peer whose clock runs behind still accepts a new certificate. */
  clockSkewMs: 5 * 60 * 1000,
  /** Longest lifetime accepted for any certificate (about 100 years): a typo such as `--days 36500000` is refused. */
  maxDays: 36_500,
})

/** File and folder modes: the folder and keys are private to the owner; certificates are public. */
export const MODES = Object.freeze({
  dir: 0o700,
  key: 0o600,
  cert: 0o644,
})

/** File names inside a certs folder. */
export const CA_CERT_FILE = 'ca.crt'
export const CA_KEY_FILE = 'ca.key'

/** Prefix of the URI SAN written into client certificates: `urn:naaccord:client:<name>`. */
export const CLIENT_URI_PREFIX = 'urn:naaccord:client:'
