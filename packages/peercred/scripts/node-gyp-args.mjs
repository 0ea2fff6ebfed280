// Where node-gyp and Node's headers are, without downloading anything: node-gyp from this package's
// dependencies or the package manager's own copy on PATH, headers from the running Node's include
// folder when it has one (official builds do).
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'

const require = createRequire(import.meta.url)

/** The folder to pass as --nodedir, or undefined when this Node ships no headers. */
export function localNodedir() {
  const nodedir = path.resolve(path.dirname(process.execPath), '..')
  return existsSync(path.join(nodedir, 'include', 'node', 'node_api.h')) ? nodedir : undefined
}

/** [command, leadingArgs] that run node-gyp. */
export function nodeGypCommand() {
  try {
    return [process.execPath, [require.resolve('node-gyp/bin/node-gyp.js')]]
  } catch {
    return ['node-gyp', []]
  }
}
