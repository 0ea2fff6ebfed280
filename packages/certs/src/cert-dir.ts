import { access, chmod, mkdir, readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { CA_CERT_FILE, CA_KEY_FILE, MODES } from './defaults.js'
import { CertsDirUnsafeError, CertsFileError } from './errors.js'
import type { CaPem } from './options.js'

/**
 * The layout of a certs folder:
 *
 * ```
 * certs/            0700
 *   ca.crt          0644  the CA certificate (give it to every peer as `ca`)
 *   ca.key          0600  the CA key (needed only to issue and rotate)
 *   <name>.crt      0644  a server or client certificate
 *   <name>.key      0600  its key
 * ```
 */
export interface CertPaths {
  readonly certPath: string
  readonly keyPath: string
}

/**
 * The paths of `<base>.crt` and `<base>.key` in `dir`.
 *
 * @example
 * certPaths('/srv/certs', 'localhost') // { certPath: '/srv/certs/localhost.crt', keyPath: '/srv/certs/localhost.key' }
 */
export function certPaths(dir: string, base: string): CertPaths {
  return { certPath: path.join(dir, `${base}.crt`), keyPath: path.join(dir, `${base}.key`) }
}

/**
 * The paths of the CA's files in `dir`.
 *
 * @example
 * caPaths('/srv/certs').keyPath // '/srv/certs/ca.key'
 */
export function caPaths(dir: string): CertPaths {
  return { certPath: path.join(dir, CA_CERT_FILE), keyPath: path.join(dir, CA_KEY_FILE) }
}

/**
 * Make sure `dir` is a folder fit for private keys, and return its absolute path.
 *
 * - Missing and `create`: made (with parents) mode 0700, then chmod'ed to 0700 since mkdir(2)
 *   applies the umask.
 * - Missing and not `create`: `IPC_CERTS_BAD_FILE`, telling the user to run `certs init`.
 * - Present: it must be a folder, owned by this user or root, and not writable by group or
 *   others (otherwise anyone in that group could swap a key or certificate between our write
 *   and its use): `IPC_CERTS_UNSAFE_DIR`. Its mode is otherwise left alone.
 *
 * @example
 * const dir = await prepareCertDir('./certs', { create: true })
 */
export async function prepareCertDir(dir: string, options: { create: boolean }): Promise<string> {
  const abs = path.resolve(dir)
  let st = await stat(abs).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined
    throw new CertsDirUnsafeError(abs, `cannot be examined (${err.code ?? err.message}); check the path and its parents' permissions`, { cause: err })
  })
  if (st === undefined) {
    if (!options.create) throw new CertsFileError(abs, 'does not exist; create the CA first with `naaccord-ipc certs init --dir <dir>`')
    await mkdir(abs, { recursive: true, mode: MODES.dir })
    await chmod(abs, MODES.dir)
    st = await stat(abs)
  }
  if (!st.isDirectory()) throw new CertsDirUnsafeError(abs, 'is not a folder; choose another --dir')
  const uid = process.getuid?.()
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
    throw new CertsDirUnsafeError(abs, `is owned by uid ${st.uid}, not by this user (uid ${uid}) or root; use a folder of your own`)
  }
  if ((st.mode & 0o022) !== 0) {
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0')
    const advice = (st.mode & 0o1000) !== 0 ? 'it is a shared folder; choose a folder of your own (--dir)' : `run \`chmod go-w ${abs}\` if it is yours, or choose another --dir`
    throw new CertsDirUnsafeError(abs, `is writable by group or others (mode ${mode}); ${advice}`)
  }
  return abs
}

/**
 * Read a PEM file, naming it in the error when it is missing or unreadable.
 *
 * @example
 * const pem = await readPemFile('certs/localhost.crt', 'certificate')
 */
export async function readPemFile(file: string, what: string): Promise<string> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'error'
    const advice = code === 'ENOENT' ? 'check the path' : `check that uid ${process.getuid?.() ?? '?'} may read it`
    throw new CertsFileError(file, `cannot read the ${what} (${code}); ${advice}`, { cause })
  }
  if (!text.includes('-----BEGIN ')) throw new CertsFileError(file, `is not a PEM file; expected the ${what} ("-----BEGIN ...")`)
  return text
}

/**
 * Read `ca.crt` and `ca.key` from a certs folder.
 *
 * @example
 * const ca = await readCa('./certs')
 * const server = await issueCertificate({ ca, kind: 'server', names: ['localhost'] })
 */
export async function readCa(dir: string): Promise<CaPem> {
  const { certPath, keyPath } = caPaths(dir)
  const certPem = await readPemFile(certPath, 'CA certificate')
  const keyPem = await readPemFile(keyPath, 'CA private key')
  if (!certPem.includes('-----BEGIN CERTIFICATE-----')) throw new CertsFileError(certPath, 'holds no certificate')
  if (!/-----BEGIN (RSA |EC |)PRIVATE KEY-----/.test(keyPem)) {
    throw new CertsFileError(keyPath, 'holds no unencrypted private key ("-----BEGIN PRIVATE KEY-----"); encrypted CA keys are not supported')
  }
  return { certPem, keyPem }
}

/**
 * True when `file` exists (whatever it is).
 *
 * @example
 * if (await fileExists('certs/ca.crt')) console.log('a CA is already there')
 */
export async function fileExists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  )
}
