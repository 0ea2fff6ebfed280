import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { build } from 'esbuild'
import { loadNativeAddon } from '@naaccord/ipc-peercred'
import { FIXTURES, ROOT } from './helpers.js'

/**
 * A fixture bundled with our sources into one plain .mjs file in a 0711 temp folder (0644 file):
 * starts in a tenth of the time tsx takes (tests that spawn dozens of servers) and runs as any
 * uid without access to the checkout. The native addon is handed over by path
 * (NAACCORD_PEERCRED_ADDON), since the bundle no longer sits in the shared package.
 */
export async function bundleFixture(file: string): Promise<{ script: string; env: NodeJS.ProcessEnv; cleanup: () => void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nipc-bundle-'))
  fs.chmodSync(dir, 0o711)
  const script = path.join(dir, file.replace(/\.ts$/, '.mjs'))
  await build({
    entryPoints: [path.join(FIXTURES, file)],
    outfile: script,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['@naaccord/source'],
    absWorkingDir: ROOT,
    logLevel: 'error',
    // Bundled CommonJS (pino, node-gyp-build) calls require() for Node's own modules.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  })
  fs.chmodSync(script, 0o644)
  // A copy of the addon beside the script, so that a process of another uid can load it too.
  const addon = loadNativeAddon()
  const env: NodeJS.ProcessEnv = {}
  if (addon.ok) {
    const copy = path.join(dir, 'peercred.node')
    fs.copyFileSync(addon.file, copy)
    fs.chmodSync(copy, 0o644)
    env.NAACCORD_PEERCRED_ADDON = copy
  }
  return { script, env, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

/** Run a bundled fixture with plain node. */
export function spawnBundle(bundle: { script: string; env: NodeJS.ProcessEnv }, args: string[], options: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, [bundle.script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options,
    env: { ...process.env, NAACCORD_LOG_LEVEL: 'warn', ...bundle.env, ...options.env },
  })
}
