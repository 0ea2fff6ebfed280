// Packs every publishable package with `pnpm pack` (which, unlike `npm pack`, rewrites
// `workspace:*` to the real version and applies publishConfig), into one folder.
// Usage as a module: `await packAll(dest)` -> [{ name, dir, tarball, bytes }]; as a script:
// `node scripts/pack.mjs <dest>` prints the tarballs and their sizes.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
/** Dependencies first, so that each package's prepack finds the types of those it uses. */
export const PACKAGES = ['shared', 'peercred', 'certs', 'client', 'server', 'cli']

export function packAll(dest) {
  mkdirSync(dest, { recursive: true })
  return PACKAGES.map((pkg) => {
    const dir = path.join(ROOT, 'packages', pkg)
    const { name, version } = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'))
    const before = new Set(readdirSync(dest))
    execFileSync('pnpm', ['pack', '--pack-destination', dest], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] })
    const tarball = readdirSync(dest).find((f) => !before.has(f) && f.endsWith('.tgz'))
    if (!tarball) throw new Error(`pnpm pack made no tarball for ${name} in ${dest}`)
    const file = path.join(dest, tarball)
    return { name, version, dir, tarball: file, bytes: statSync(file).size }
  })
}

/**
 * The tarballs: with `--from DIR` in argv, those `node scripts/pack.mjs DIR` made earlier (CI packs
 * once for lint:packages and test:consumer); else freshly packed into `dest`.
 */
export function tarballs(dest, argv = process.argv) {
  const i = argv.indexOf('--from')
  if (i < 0) return packAll(dest)
  const from = path.resolve(argv[i + 1] ?? '')
  return PACKAGES.map((pkg) => {
    const dir = path.join(ROOT, 'packages', pkg)
    const { name, version } = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'))
    const file = path.join(from, `${name.replace('@', '').replace('/', '-')}-${version}.tgz`)
    return { name, version, dir, tarball: file, bytes: statSync(file).size }
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dest = path.resolve(process.argv[2] ?? path.join(ROOT, '.pack'))
  for (const p of packAll(dest)) console.log(`${p.name}@${p.version}\t${(p.bytes / 1024).toFixed(1)} kB\t${p.tarball}`)
}
