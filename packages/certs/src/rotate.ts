import { X509Certificate as NodeX509 } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { writeFilesAtomic } from './atomic-write.js'
import { certPaths, fileExists, prepareCertDir, readCa } from './cert-dir.js'
import { CA_CERT_FILE, MODES, type CertKind } from './defaults.js'
import { inspectCertificate } from './inspect.js'
import { issueCertificate, type CertificatePem } from './issue.js'
import { keyAlgorithmOf } from './keys.js'
import { resolveRotateOptions, type RotateOptions } from './options.js'

/** A certificate that `rotate` reissued. */
export interface RotatedCertificate {
  /** The file name without extension (`localhost` for localhost.crt). */
  readonly name: string
  readonly certPath: string
  readonly keyPath: string
  readonly kind: CertKind
  /** The names carried over: subject CN first, then the other DNS and IP SANs. */
  readonly names: readonly string[]
  readonly previousNotAfter: Date
  readonly notAfter: Date
}

/** A certificate that `rotate` left alone, and why. */
export interface KeptCertificate {
  readonly name: string
  readonly certPath: string
  /** Undefined when the file could not be parsed. */
  readonly notAfter: Date | undefined
  readonly daysToExpiry: number | undefined
  /** e.g. `expires in 80 days`, `is a CA`, `not issued by ca.crt`. */
  readonly reason: string
}

export interface RotateResult {
  /** The absolute certs folder. */
  readonly dir: string
  readonly rotated: readonly RotatedCertificate[]
  readonly kept: readonly KeptCertificate[]
}

interface Plan {
  readonly rotated: RotatedCertificate
  readonly pem: CertificatePem
}

const DAY_MS = 24 * 60 * 60 * 1000

/**
 * `certs rotate`: reissue, in place and with a NEW key, every leaf certificate of a certs folder
 * that expires within `withinDays` days (or has expired). Each keeps its kind (from its EKU:
 * serverAuth -> server, clientAuth -> client), its subject CN and its DNS/IP SANs, and its key
 * algorithm. The CA is never rotated, nor are certificates the folder's CA did not issue or
 * that have no `.key` beside them; they are reported in `kept` with the reason.
 *
 * All certificates are issued in memory first, so a refusal (an expired CA, or a CA that would
 * expire before the new certificate) changes no file. Then each pair is written: both files
 * are staged and fsync'ed, then the KEY is renamed over the old key, then the CERTIFICATE over
 * the old certificate. Between the two renames a reader sees the new key with the old
 * certificate; our server checks that a key matches its certificate before it swaps TLS
 * contexts and its file watcher is debounced, so it skips that state and loads the pair on the
 * certificate's rename, the last event. The certificate goes last because it is what peers see
 * and what watchers key on: once it changes, its key is already in place.
 *
 * @example
 * const { rotated, kept } = await rotate({ dir: './certs', withinDays: 30 })
 * for (const r of rotated) console.log(`${r.name}: now valid until ${r.notAfter.toISOString()}`)
 */
export async function rotate(options: RotateOptions = {}): Promise<RotateResult> {
  const o = resolveRotateOptions(options)
  const dir = await prepareCertDir(o.dir, { create: false })
  const ca = await readCa(dir)
  const caCert = new NodeX509(ca.certPem)
  const now = Date.now()

  const files = (await readdir(dir)).filter((f) => f.endsWith('.crt') && f !== CA_CERT_FILE && !f.startsWith('.')).sort()
  const plans: Plan[] = []
  const kept: KeptCertificate[] = []
  for (const file of files) {
    const name = file.slice(0, -'.crt'.length)
    const { certPath, keyPath } = certPaths(dir, name)
    const keep = (reason: string, notAfter?: Date) =>
      kept.push({ name, certPath, notAfter, daysToExpiry: notAfter && Math.floor((notAfter.getTime() - now) / DAY_MS), reason })

    let node: NodeX509
    let info: ReturnType<typeof inspectCertificate>
    try {
      const pem = await readFile(certPath, 'utf8')
      info = inspectCertificate(pem)
      node = new NodeX509(pem)
    } catch {
      keep('cannot be read or parsed as a certificate')
      continue
    }
    const kind: CertKind | undefined = info.extKeyUsage.includes('serverAuth') ? 'server' : info.extKeyUsage.includes('clientAuth') ? 'client' : undefined
    if (info.isCa) keep('is a CA', info.notAfter)
    else if (!node.checkIssued(caCert) || !node.verify(caCert.publicKey)) keep(`not issued by ${CA_CERT_FILE}`, info.notAfter)
    else if (kind === undefined) keep('has neither serverAuth nor clientAuth extended key usage', info.notAfter)
    else if (!(await fileExists(keyPath))) keep(`no ${path.basename(keyPath)} beside it`, info.notAfter)
    else if (!o.all && info.notAfter.getTime() - now > o.withinDays * DAY_MS) keep(`expires in ${info.daysToExpiry} days`, info.notAfter)
    else {
      const names = [...new Set([info.commonName ?? '', ...info.sans.dns, ...info.sans.ip].filter(Boolean))]
      const spiffeId = info.sans.uri.find((u) => u.startsWith('spiffe://'))
      const pem = await issueCertificate({ ca, kind, names, days: o.days, keyAlgorithm: keyAlgorithmOf(node.publicKey), ...(spiffeId === undefined ? {} : { spiffeId }) })
      const notAfter = inspectCertificate(pem.certPem).notAfter
      plans.push({ pem, rotated: { name, certPath, keyPath, kind, names, previousNotAfter: info.notAfter, notAfter } })
    }
  }

  for (const { pem, rotated } of plans) {
    // Key first, certificate last: see the comment above.
    await writeFilesAtomic([
      { file: rotated.keyPath, data: pem.keyPem, mode: MODES.key },
      { file: rotated.certPath, data: pem.certPem, mode: MODES.cert },
    ])
  }
  return { dir, rotated: plans.map((p) => p.rotated), kept }
}
