import { writeFilesAtomic } from './atomic-write.js'
import { createCa } from './ca.js'
import { caPaths, certPaths, fileExists, prepareCertDir, readCa, type CertPaths } from './cert-dir.js'
import { MODES } from './defaults.js'
import { CertsFileExistsError } from './errors.js'
import { issueCertificate, type CertificatePem } from './issue.js'
import { resolveInitCaOptions, resolveIssueToDirOptions, type InitCaOptions, type IssueToDirOptions } from './options.js'

/** A certificate and key written to a certs folder. */
export interface StoredCertificate extends CertificatePem, CertPaths {
  /** The absolute certs folder. */
  readonly dir: string
  /** True when an existing certificate or key was replaced (`force`). */
  readonly replaced: boolean
}

/**
 * Write a key and certificate to `paths`: the key (0600) then the certificate (0644), each
 * atomically, the key renamed first (see `rotate` for why).
 *
 * @example
 * await writeCertificate(certPaths(dir, 'localhost'), { certPem, keyPem })
 */
export async function writeCertificate(paths: CertPaths, pem: CertificatePem): Promise<void> {
  await writeFilesAtomic([
    { file: paths.keyPath, data: pem.keyPem, mode: MODES.key },
    { file: paths.certPath, data: pem.certPem, mode: MODES.cert },
  ])
}

/**
 * Refuse (`IPC_CERTS_EXISTS`, with `advice`) when the certificate or key of `paths` exists and
 * `force` is false; return whether something will be replaced.
 */
async function refuseOverwrite(paths: CertPaths, force: boolean, advice: string): Promise<boolean> {
  let replaced = false
  for (const file of [paths.certPath, paths.keyPath]) {
    if (await fileExists(file)) {
      if (!force) throw new CertsFileExistsError(file, advice)
      replaced = true
    }
  }
  return replaced
}

/**
 * `certs init`: create a CA and write `ca.crt` and `ca.key` into a certs folder (made 0700 when
 * missing, refused when group/world-writable). An existing CA is never replaced without
 * `force`, since every certificate it issued stops being trusted with it.
 *
 * @example
 * const ca = await initCa({ dir: './certs', commonName: 'NAACCORD-Internal-CA' })
 * ca.certPath // '/srv/app/certs/ca.crt'
 */
export async function initCa(options: InitCaOptions = {}): Promise<StoredCertificate> {
  const o = resolveInitCaOptions(options)
  const dir = await prepareCertDir(o.dir, { create: true })
  const paths = caPaths(dir)
  const replaced = await refuseOverwrite(paths, o.force, 'use --force to replace the CA; every certificate it issued must then be reissued')
  const ca = await createCa(o.ca)
  await writeCertificate(paths, ca)
  return { dir, ...ca, ...paths, replaced }
}

/**
 * `certs issue`: issue a certificate with the CA of a certs folder and write it there as
 * `<name>.crt` (0644) and `<name>.key` (0600). Options are checked before the file system is
 * touched; an existing certificate of that name is replaced only with `force`.
 *
 * @example
 * const server = await issueToDir({ dir: './certs', kind: 'server', names: ['localhost', 'services.internal'] })
 * server.certPath // '/srv/app/certs/localhost.crt'
 * const client = await issueToDir({ dir: './certs', kind: 'client', names: ['web-server'] })
 */
export async function issueToDir(options: IssueToDirOptions): Promise<StoredCertificate> {
  const o = resolveIssueToDirOptions(options)
  const dir = await prepareCertDir(o.dir, { create: false })
  const ca = await readCa(dir)
  const paths = certPaths(dir, o.baseName)
  const replaced = await refuseOverwrite(paths, o.force, 'use --force to replace it, or `naaccord-ipc certs rotate` to renew it')
  const pem = await issueCertificate({ ...o.leaf, ca })
  await writeCertificate(paths, pem)
  return { dir, ...pem, ...paths, replaced }
}
