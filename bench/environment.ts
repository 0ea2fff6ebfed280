import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import type { Pinning } from './pinning.js'

export interface Environment {
  readonly date: string
  readonly node: string
  readonly os: string
  readonly kernel: string
  readonly cpu: string
  readonly cores: number
  readonly memoryGiB: number
  readonly pinning: string
  readonly versions: Readonly<Record<string, string>>
  readonly commit: string | undefined
}

const require = createRequire(import.meta.url)

/** The version of a dependency as bench/ resolves it (walks up from its entry point to its package.json). */
function versionOf(name: string): string {
  try {
    let dir = path.dirname(require.resolve(name))
    for (;;) {
      const file = path.join(dir, 'package.json')
      if (existsSync(file)) {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string }
        if (pkg.name === name && pkg.version) return pkg.version
      }
      const up = path.dirname(dir)
      if (up === dir) return 'unknown'
      dir = up
    }
  } catch {
    return 'unknown'
  }
}

function osName(): string {
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1]
    if (pretty) return pretty
  } catch {
    // not Linux, or no os-release
  }
  return `${os.type()} ${os.release()}`
}

function commit(root: string): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return undefined
  }
}

export function describeEnvironment(pinning: Pinning, root: string): Environment {
  return {
    date: new Date().toISOString(),
    node: process.version,
    os: osName(),
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    pinning: pinning.note,
    versions: {
      express: versionOf('express'),
      undici: versionOf('undici'),
      'node bundled undici (global fetch)': process.versions.undici ?? 'unknown',
      openssl: process.versions.openssl,
    },
    commit: commit(root),
  }
}
