import { InvalidOptionError, parseBoolean, parseEnum, parseInteger, parseString, rejectUnknown, parseSpiffeId } from '@naaccord/ipc-shared'
import { CA_CERT_FILE, CA_KEY_FILE, CERT_KINDS, CERTS_DEFAULTS, KEY_ALGORITHMS, type CertKind, type KeyAlgorithm } from './defaults.js'
import { fileBaseName, normaliseNames } from './subject-names.js'
import { parseDate, parseDays } from './validity.js'

/**
 * The options of every entry point, checked and normalised here, once, from `CERTS_DEFAULTS`.
 * Each refusal names the option. Results are frozen.
 */

/** A CA as PEM text: its certificate and its private key. */
export interface CaPem {
  readonly certPem: string
  readonly keyPem: string
}

export interface CreateCaOptions {
  /** Subject CN. Default `'naaccord-ipc internal CA'`. */
  commonName?: string
  /** Lifetime in days. Default 1825 (5 years). */
  days?: number
  /** Default `'ecdsa-p256'`. */
  keyAlgorithm?: KeyAlgorithm
  /** Explicit start of validity; default now minus 5 minutes. */
  notBefore?: Date
  /** Explicit end of validity; default `days` from now. */
  notAfter?: Date
}

export interface ResolvedCaOptions {
  readonly commonName: string
  readonly days: number
  readonly keyAlgorithm: KeyAlgorithm
  readonly notBefore: Date | undefined
  readonly notAfter: Date | undefined
}

const CA_KEYS = ['commonName', 'days', 'keyAlgorithm', 'notBefore', 'notAfter'] as const

/**
 * Check and complete the options of `createCa`.
 *
 * @example
 * resolveCaOptions({ days: 365 }) // { commonName: 'naaccord-ipc internal CA', days: 365, keyAlgorithm: 'ecdsa-p256', ... }
 */
export function resolveCaOptions(options: CreateCaOptions = {}): ResolvedCaOptions {
  rejectUnknown('options', options, CA_KEYS)
  const commonName = options.commonName === undefined ? CERTS_DEFAULTS.caCommonName : parseString('commonName', options.commonName).trim()
  if (commonName === '' || commonName.length > 64) {
    throw new InvalidOptionError('commonName', `must be 1 to 64 characters (X.520 ub-common-name), got ${JSON.stringify(options.commonName)}`)
  }
  return Object.freeze({
    commonName,
    days: options.days === undefined ? CERTS_DEFAULTS.caDays : parseDays('days', options.days),
    keyAlgorithm: resolveKeyAlgorithm(options.keyAlgorithm),
    notBefore: parseDate('notBefore', options.notBefore),
    notAfter: parseDate('notAfter', options.notAfter),
  })
}

export interface IssueCertificateOptions {
  /** The CA that signs: its certificate and private key as PEM text. */
  ca: CaPem
  /** `server` (EKU serverAuth) or `client` (EKU clientAuth). */
  kind: CertKind
  /** Host names and IP literals; the first is the subject CN. */
  names: readonly string[]
  /** Lifetime in days. Default 90. */
  days?: number
  /** Default `'ecdsa-p256'`. */
  keyAlgorithm?: KeyAlgorithm
  /** Explicit start of validity; default now minus 5 minutes. */
  notBefore?: Date
  /** Explicit end of validity; default `days` from now. May be in the past (tests of expiry). */
  notAfter?: Date
  /**
   * A SPIFFE ID (`spiffe://<trust-domain>/<workload>`) as the certificate's one URI SAN, making
   * it an X.509-SVID in shape; a client certificate then carries it instead of
   * `urn:naaccord:client:<name>`. Default none.
   */
  spiffeId?: string
}

export interface ResolvedIssueOptions {
  readonly ca: CaPem
  readonly kind: CertKind
  readonly names: readonly string[]
  readonly days: number
  readonly keyAlgorithm: KeyAlgorithm
  readonly notBefore: Date | undefined
  readonly notAfter: Date | undefined
  readonly spiffeId: string | undefined
}

const ISSUE_KEYS = ['ca', 'kind', 'names', 'days', 'keyAlgorithm', 'notBefore', 'notAfter', 'spiffeId'] as const

/**
 * Check and complete the options of `issueCertificate`.
 *
 * @example
 * resolveIssueOptions({ ca, kind: 'server', names: ['LocalHost'] }).names // ['localhost']
 */
export function resolveIssueOptions(options: IssueCertificateOptions): ResolvedIssueOptions {
  if (options === undefined || options === null) throw new InvalidOptionError('options', 'are required: { ca, kind, names }')
  rejectUnknown('options', options, ISSUE_KEYS)
  const { ca, ...leaf } = options
  return Object.freeze({ ...resolveLeafOptions(leaf), ca: resolveCaPem(ca) })
}

/**
 * Check and complete everything of `issueCertificate` but the CA (so that callers can check options before reading the CA).
 *
 * @example
 * resolveLeafOptions({ kind: 'client', names: ['web-server'] }).days // 90
 */
export function resolveLeafOptions(options: Omit<IssueCertificateOptions, 'ca'>): Omit<ResolvedIssueOptions, 'ca'> {
  const kind = parseEnum('kind', options.kind, CERT_KINDS)
  if (!Array.isArray(options.names)) throw new InvalidOptionError('names', `must be an array of host names or IP addresses, got ${JSON.stringify(options.names)}`)
  return Object.freeze({
    kind,
    names: Object.freeze(normaliseNames('names', options.names, kind)),
    days: options.days === undefined ? CERTS_DEFAULTS.leafDays : parseDays('days', options.days),
    keyAlgorithm: resolveKeyAlgorithm(options.keyAlgorithm),
    notBefore: parseDate('notBefore', options.notBefore),
    notAfter: parseDate('notAfter', options.notAfter),
    spiffeId: options.spiffeId === undefined ? undefined : parseSpiffeId('spiffeId', options.spiffeId),
  })
}

export interface InitCaOptions extends CreateCaOptions {
  /** The certs folder; created 0700 when missing. Default `./certs`. */
  dir?: string
  /** Replace an existing `ca.crt`/`ca.key`. Default false. */
  force?: boolean
}

export interface ResolvedInitCaOptions {
  readonly dir: string
  readonly force: boolean
  readonly ca: ResolvedCaOptions
}

/**
 * Check and complete the options of `initCa`.
 *
 * @example
 * resolveInitCaOptions({}) // { dir: './certs', force: false, ca: { commonName: 'naaccord-ipc internal CA', ... } }
 */
export function resolveInitCaOptions(options: InitCaOptions = {}): ResolvedInitCaOptions {
  rejectUnknown('options', options, [...CA_KEYS, 'dir', 'force'])
  const { dir, force, ...ca } = options
  return Object.freeze({ dir: resolveDir(dir), force: resolveForce(force), ca: resolveCaOptions(ca) })
}

export interface IssueToDirOptions extends Omit<IssueCertificateOptions, 'ca'> {
  /** The certs folder holding `ca.crt` and `ca.key`. Default `./certs`. */
  dir?: string
  /** File name without extension; default the first name, sanitised (`*.a.b` -> `wildcard.a.b`). */
  fileName?: string
  /** Replace an existing `<fileName>.crt`/`.key`. Default false. */
  force?: boolean
}

export interface ResolvedIssueToDirOptions {
  readonly dir: string
  readonly force: boolean
  /** The file name without extension: `fileName`, or the first name sanitised. */
  readonly baseName: string
  readonly leaf: Omit<ResolvedIssueOptions, 'ca'>
}

const ISSUE_TO_DIR_KEYS = [...ISSUE_KEYS.filter((k) => k !== 'ca'), 'dir', 'fileName', 'force'] as const

/**
 * Check and complete the options of `issueToDir`.
 *
 * @example
 * resolveIssueToDirOptions({ kind: 'server', names: ['*.services.internal'] }).baseName // 'wildcard.services.internal'
 */
export function resolveIssueToDirOptions(options: IssueToDirOptions): ResolvedIssueToDirOptions {
  if (options === undefined || options === null) throw new InvalidOptionError('options', 'are required: { dir, kind, names }')
  rejectUnknown('options', options, ISSUE_TO_DIR_KEYS)
  const { dir, fileName, force, ...leafOptions } = options
  const leaf = resolveLeafOptions(leafOptions)
  const baseName = fileName === undefined ? fileBaseName(leaf.names[0] as string) : parseFileName(fileName)
  if (baseName === 'ca') {
    throw new InvalidOptionError(fileName === undefined ? 'names' : 'fileName', `"ca" would overwrite ${CA_CERT_FILE} and ${CA_KEY_FILE}; choose another name`)
  }
  return Object.freeze({ dir: resolveDir(dir), force: resolveForce(force), baseName, leaf })
}

export interface RotateOptions {
  /** The certs folder. Default `./certs`. */
  dir?: string
  /** Reissue leaves that expire within this many days (or have expired). Default 30. */
  withinDays?: number
  /** Lifetime of the reissued certificates, in days. Default 90. */
  days?: number
  /** Reissue even leaves that are not near expiry (e.g. after a key compromise). Default false. */
  all?: boolean
}

export interface ResolvedRotateOptions {
  readonly dir: string
  readonly withinDays: number
  readonly days: number
  readonly all: boolean
}

const ROTATE_KEYS = ['dir', 'withinDays', 'days', 'all'] as const

/**
 * Check and complete the options of `rotate`.
 *
 * @example
 * resolveRotateOptions({ dir: '/srv/certs' }) // { dir: '/srv/certs', withinDays: 30, days: 90, all: false }
 */
export function resolveRotateOptions(options: RotateOptions = {}): ResolvedRotateOptions {
  rejectUnknown('options', options, ROTATE_KEYS)
  return Object.freeze({
    dir: resolveDir(options.dir),
    withinDays: options.withinDays === undefined ? CERTS_DEFAULTS.rotateWithinDays : parseInteger('withinDays', options.withinDays, 0, CERTS_DEFAULTS.maxDays),
    days: options.days === undefined ? CERTS_DEFAULTS.leafDays : parseDays('days', options.days),
    all: options.all === undefined ? false : parseBoolean('all', options.all),
  })
}

function resolveForce(value: unknown): boolean {
  return value === undefined ? false : parseBoolean('force', value)
}

function parseFileName(value: unknown): string {
  const name = parseString('fileName', value)
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(name) || name.length > 200) {
    throw new InvalidOptionError('fileName', `must be a plain file name (letters, digits, ".", "_", "-"; no folder), got ${JSON.stringify(value)}`)
  }
  return name.replace(/\.(crt|key|pem)$/, '')
}

/**
 * The certs folder option: a non-empty path, default `./certs`.
 *
 * @example
 * resolveDir(undefined) // './certs'
 */
export function resolveDir(dir: unknown): string {
  return dir === undefined ? CERTS_DEFAULTS.dir : parseString('dir', dir)
}

/**
 * A key algorithm name, default `'ecdsa-p256'`.
 *
 * @example
 * resolveKeyAlgorithm('rsa-2048') // 'rsa-2048'; resolveKeyAlgorithm('dsa') throws IPC_INVALID_OPTION
 */
export function resolveKeyAlgorithm(value: unknown): KeyAlgorithm {
  return value === undefined ? CERTS_DEFAULTS.keyAlgorithm : parseEnum('keyAlgorithm', value, KEY_ALGORITHMS)
}

function resolveCaPem(ca: unknown): CaPem {
  const pem = ca as Partial<CaPem> | undefined
  if (typeof pem?.certPem !== 'string' || !pem.certPem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new InvalidOptionError('ca.certPem', 'must be the CA certificate as PEM text ("-----BEGIN CERTIFICATE-----")')
  }
  if (typeof pem.keyPem !== 'string' || !/-----BEGIN (RSA |EC |)PRIVATE KEY-----/.test(pem.keyPem)) {
    throw new InvalidOptionError('ca.keyPem', 'must be the CA private key as unencrypted PEM text ("-----BEGIN PRIVATE KEY-----")')
  }
  return Object.freeze({ certPem: pem.certPem, keyPem: pem.keyPem })
}
