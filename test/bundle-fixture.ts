import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { build } from 'esbuild'
import { FIXTURES } from './helpers.js'

/**
 * Bundle a TypeScript fixture (our packages from their sources, undici, pino...) into one plain
 * `.mjs` file in a fresh 0711 temp folder, so a process run as another uid can execute it
 * without reading the checkout (which may sit in a 0700 folder such as /root). The file is
 * 0644. `cleanup()` removes the folder.
 *
 * @example
 * const { file, cleanup } = await bundleFixture('client.ts')
 * spawn(process.execPath, [file, socketPath], { uid: 65534, gid: 65534 })
 */
export async function bundleFixture(name: string): Promise<{ file: string; cleanup: () => void }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nipc-fx-'))
  chmodSync(dir, 0o711)
  const file = path.join(dir, name.replace(/\.ts$/, '.mjs'))
  await build({
    entryPoints: [path.join(FIXTURES, name)],
    outfile: file,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['@naaccord/source'],
    logLevel: 'error',
    // CommonJS dependencies (pino) call require(): give the ES module bundle one.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  })
  chmodSync(file, 0o644)
  return { file, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}
