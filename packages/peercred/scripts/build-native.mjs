// Builds the peer-credential addon at install time with node-gyp, unless a prebuilt binary for
// this platform ships in prebuilds/ (node-gyp-build layout). Never downloads anything: Node's
// headers are taken from the running Node's own include folder when it has one.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)

try {
  require('node-gyp-build').path(root)
  console.log('@naaccord/ipc-shared: peer-credential addon present, not rebuilding')
  process.exit(0)
} catch {}

const args = ['rebuild']
const nodedir = path.resolve(path.dirname(process.execPath), '..')
if (existsSync(path.join(nodedir, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${nodedir}`)

let gyp
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js')
} catch {
  gyp = null
}
const result = gyp
  ? spawnSync(process.execPath, [gyp, ...args], { cwd: root, stdio: 'inherit' })
  : spawnSync('node-gyp', args, { cwd: root, stdio: 'inherit', shell: true })

if (result.status !== 0) {
  // Fail closed happens at run time: serve() refuses to start without the addon unless the
  // user opts out with allow: false. The install itself goes on so that opting out is possible.
  console.warn(
    '\n@naaccord/ipc-shared: WARNING: the peer-credential addon did not build.\n' +
      '  serve() will refuse to start (IPC_PEER_CREDENTIALS_UNAVAILABLE) until it does.\n' +
      '  Install a C toolchain and Python 3, then run: pnpm --filter @naaccord/ipc-shared run install\n'
  )
}
