// Makes the N-API prebuilt binary for this platform with prebuildify, into
// prebuilds/<platform>-<arch>/node.napi.<libc>.node, where node-gyp-build finds it at run time.
// Part of `pnpm build` (and so of prepack): the published package carries the binary and its users
// need no toolchain. Headers come from the running Node (no download).
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { localNodedir, nodeGypCommand } from './node-gyp-args.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
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
