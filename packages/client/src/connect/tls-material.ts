import { loadCaBundle, loadTlsMaterial, watchFiles, type FileWatch } from '@naaccord/ipc-shared'
import type { ResolvedClientOptions } from '../options.js'
import type { ClientTlsMaterial } from './tls-options.js'

/** The TLS credentials read from their sources, and the files they came from (watched for rotation). */
export type LoadedTlsMaterial = ClientTlsMaterial & { files: readonly string[] }

/**
 * Read the client's TLS credentials: the CA that verifies the server, and our own pair for
 * mutual TLS. Undefined without `tls`.
 *
 * @example
 * const material = loadClientTlsMaterial(opts) // { ca, cert, key, files: ['/etc/naaccord/client.crt', ...] }
 */
export function loadClientTlsMaterial(opts: ResolvedClientOptions): LoadedTlsMaterial | undefined {
  const t = opts.tls
  if (!t) return undefined
  // The CA is loaded on its own: it verifies the server, it is not the issuer check of our pair.
  const ca = t.ca === undefined ? undefined : loadCaBundle('tls.ca', t.ca)
  const pair = t.cert === undefined ? undefined : loadTlsMaterial('tls', { cert: t.cert, key: t.key, ca: undefined })
  const files = [...(pair?.files ?? []), ...(ca?.file ? [ca.file] : [])]
  return { ca: ca?.pem, cert: pair?.cert, key: pair?.key, files }
}

/**
 * Rotation: watch the files of `material` (unless `tls.watch` is false) and hand each changed
 * set that loads to `use`; files that do not load, or that `use` refuses, leave the current
 * credentials in use (logged).
 *
 * @example
 * const watch = watchClientTlsMaterial(opts, material, (next) => dispatcher.swap(createPool(opts, next)))
 */
export function watchClientTlsMaterial(opts: ResolvedClientOptions, material: LoadedTlsMaterial | undefined, use: (next: LoadedTlsMaterial) => void): FileWatch | undefined {
  const shouldWatch = opts.tls?.watch ?? true
  if (!material || !shouldWatch || material.files.length === 0) return undefined
  const log = opts.logger
  let current = material
  return watchFiles(material.files, () => {
    try {
      const next = loadClientTlsMaterial(opts)!
      if (next.cert === current.cert && next.key === current.key && next.ca === current.ca) return
      current = next
      use(next)
      log.info({ files: next.files }, 'client TLS files reloaded; new connections use them')
    } catch (err) {
      log.error({ err }, 'new client TLS files rejected; the current ones stay in use')
    }
  })
}
