// publint and Are the Types Wrong (attw) on the tarballs `pnpm pack` makes, for every package:
// what users install, not the workspace folders. Exits non-zero on any error or warning.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ROOT, tarballs } from './pack.mjs'

const dest = mkdtempSync(path.join(os.tmpdir(), 'naaccord-pack-'))
let failed = 0
try {
  for (const p of tarballs(dest)) {
    console.log(`\n== ${p.name} (${(p.bytes / 1024).toFixed(1)} kB)`)
    const bin = (name) => path.join(ROOT, 'node_modules', '.bin', name)
    // publint: --strict turns warnings into errors; suggestions are printed but do not fail.
    const lint = spawnSync(bin('publint'), ['run', p.tarball, '--strict'], { stdio: 'inherit' })
    // attw: ESM-only packages ("type": "module", no require condition): the esm-only profile skips
    // the CommonJS resolution modes, which have nothing to resolve here by design.
    const types = spawnSync(bin('attw'), [p.tarball, '--profile', 'esm-only', '--no-emoji', '--no-color', '--format', 'table-flipped'], { stdio: 'inherit' })
    if (lint.status !== 0 || types.status !== 0) failed++
  }
} finally {
  rmSync(dest, { recursive: true, force: true })
}
if (failed > 0) {
  console.error(`\nlint:packages: ${failed} package(s) failed publint or attw`)
  process.exit(1)
}
console.log('\nlint:packages: publint and attw clean for every package')
