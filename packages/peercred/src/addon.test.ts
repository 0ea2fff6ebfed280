// What the loader says when the addon cannot load, in a copy of this package laid out as an install
// would leave it: no prebuild and the install script blocked, the source build failed, a prebuild
// that does not fit, and a matching prebuild (no build/ at all).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs/promises'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

const packageRoot = fileURLToPath(new URL('..', import.meta.url))
const repoRoot = path.resolve(packageRoot, '../..')
const require = createRequire(import.meta.url)
const addonFile = require('node-gyp-build').path(packageRoot) as string
const isLinuxX64 = process.platform === 'linux' && process.arch === 'x64'
let dir: string

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'peercred-pkg-'))
  await fs.cp(path.join(packageRoot, 'src'), path.join(dir, 'src'), { recursive: true, filter: (f) => !f.endsWith('.test.ts') })
  await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: '@naaccord/ipc-peercred', type: 'module' }))
  await fs.mkdir(path.join(dir, 'node_modules', '@naaccord'), { recursive: true })
  await fs.symlink(path.dirname(require.resolve('node-gyp-build/package.json')), path.join(dir, 'node_modules', 'node-gyp-build'))
  await fs.symlink(path.join(repoRoot, 'packages', 'shared'), path.join(dir, 'node_modules', '@naaccord', 'ipc-shared'))
})

afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true })
})

async function load(): Promise<{ ok: boolean; reason?: string; file?: string }> {
  const script = `
    const { loadAddon } = await import(${JSON.stringify(path.join(dir, 'src', 'addon.ts'))})
    const r = loadAddon()
    console.log(JSON.stringify({ ok: r.ok, reason: r.reason, file: r.file }))`
  const env = { ...process.env }
  delete env.NAACCORD_PEERCRED_ADDON
  const child = spawn(process.execPath, ['--conditions=@naaccord/source', '--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
  const [code] = await once(child, 'close')
  expect({ code, err }).toEqual({ code: 0, err: '' })
  return JSON.parse(out) as { ok: boolean; reason?: string }
}

describe.skipIf(!isLinuxX64)('loading the addon from an installed package', () => {
  it('no prebuild and the install script never ran (pnpm 10 blocks it): says so and names onlyBuiltDependencies', async () => {
    const r = await load()
    expect(r.ok).toBe(false)
    expect(r.reason).toContain('no prebuilt binary for linux-x64 glibc in @naaccord/ipc-peercred (it ships: none)')
    expect(r.reason).toContain('its install script did not run')
    expect(r.reason).toContain('"pnpm.onlyBuiltDependencies"')
    expect(r.reason).toContain('with make, a C compiler and Python 3 installed')
  })

  it('no prebuild and the source build failed at install: says the build failed, and what it needs', async () => {
    await fs.writeFile(path.join(dir, 'install-status.json'), JSON.stringify({ status: 'build-failed', detail: 'node-gyp exited with 1' }))
    const r = await load()
    expect(r.ok).toBe(false)
    expect(r.reason).toContain('the source build at install failed (node-gyp exited with 1)')
    expect(r.reason).toContain('install make, a C compiler and Python 3, then run "npm rebuild @naaccord/ipc-peercred"')
    expect(r.reason).not.toContain('onlyBuiltDependencies')
  })

  it('a prebuilt binary that does not load here: names the file, the loader error and --build-from-source', async () => {
    await fs.mkdir(path.join(dir, 'prebuilds', 'linux-x64'), { recursive: true })
    const bad = path.join(dir, 'prebuilds', 'linux-x64', 'node.napi.glibc.node')
    await fs.writeFile(bad, 'not an ELF file '.repeat(256))
    const r = await load()
    expect(r.ok).toBe(false)
    expect(r.reason).toContain(bad)
    expect(r.reason).toContain('invalid ELF header')
    expect(r.reason).toContain('--build-from-source')
  })

  it('a matching prebuilt binary loads with no build/ folder (what an install without scripts gets)', async () => {
    await fs.mkdir(path.join(dir, 'prebuilds', 'linux-x64'), { recursive: true })
    const prebuilt = path.join(dir, 'prebuilds', 'linux-x64', 'node.napi.glibc.node')
    await fs.copyFile(addonFile, prebuilt)
    const r = await load()
    expect(r).toMatchObject({ ok: true, file: prebuilt })
  })
})
