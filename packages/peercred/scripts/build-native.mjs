// The install script. Where a prebuilt binary in prebuilds/ loads (node-gyp-build layout), there is
// nothing to do and no toolchain is needed. Elsewhere it builds the addon from source with node-gyp
// (needs make, a C compiler and Python 3). It never downloads anything.
//
// A failed source build does not fail the install: a client without `expectServer` and a server
// run with `allow: false` work without the addon, and serve() fails closed at start with
// IPC_PEER_CREDENTIALS_UNAVAILABLE. The outcome is written to install-status.json so that the
// loader's error can say what happened (no prebuild and the build failed, or this script never ran).
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { localNodedir, nodeGypCommand } from './node-gyp-args.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const statusFile = path.join(root, 'install-status.json')
const target = `${process.platform}-${process.arch}`

function record(status, detail) {
  try {
    writeFileSync(statusFile, JSON.stringify({ status, detail, target, node: process.version }) + '\n')
  } catch {}
}

// `npm rebuild @naaccord/ipc-peercred --build-from-source` skips the prebuilt binary.
const fromSource = ['true', '1', ''].includes(process.env.npm_config_build_from_source ?? 'unset')
try {
  if (fromSource) throw new Error('build from source')
  const found = require('node-gyp-build').path(root)
  require(found)
  record('prebuilt', found)
  process.exit(0)
} catch {}

const args = ['rebuild']
const nodedir = localNodedir()
if (nodedir) args.push(`--nodedir=${nodedir}`)
const [command, leading] = nodeGypCommand()
const result = spawnSync(command, [...leading, ...args], { cwd: root, stdio: 'inherit', shell: command === 'node-gyp' })

if (result.status === 0) {
  record('built', path.join(root, 'build', 'Release'))
} else {
  const why = result.error ? result.error.message : `node-gyp exited with ${result.status ?? result.signal}`
  record('build-failed', why)
  console.warn(
    `\n@naaccord/ipc-peercred: WARNING: no prebuilt binary for ${target} and the source build failed (${why}).\n` +
      '  serve() will refuse to start (IPC_PEER_CREDENTIALS_UNAVAILABLE) until the addon loads.\n' +
      '  Install make, a C compiler and Python 3, then run: npm rebuild @naaccord/ipc-peercred (or pnpm rebuild)\n',
  )
}
