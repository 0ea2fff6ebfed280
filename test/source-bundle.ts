// A TypeScript entry (a fixture, the CLI) bundled with our sources into one .mjs that plain `node`
// starts: measured here about 0.13 s of CPU against tsx's 0.6 s per process (tsx loads its
// loader and esbuild in every child), which adds up in tests that start dozens of processes.
// The bundle is cached on disk across test files and runs, and rebuilt when any file that went
// into it changed (size or mtime), as tsx's own cache does per file.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CACHE = path.join(ROOT, 'node_modules', '.cache', 'naaccord-test-bundles')
const BUILDER = path.join(ROOT, 'test', 'source-bundle-build.mjs')
/** Bundles no index has named for this long are removed when a new one is written. */
const PRUNE_AFTER_MS = 60 * 60_000

interface Index {
  bundle: string
  inputs: Record<string, string>
}

const fresh = new Map<string, string>()

function stamp(file: string): string {
  try {
    const s = statSync(file)
    return `${s.size}:${s.mtimeMs}`
  } catch {
    return 'missing'
  }
}

function current(indexFile: string): string | undefined {
  let index: Index
  try {
    index = JSON.parse(readFileSync(indexFile, 'utf8')) as Index
  } catch {
    return undefined
  }
  const bundle = path.join(CACHE, index.bundle)
  if (stamp(bundle) === 'missing') return undefined
  for (const [file, was] of Object.entries(index.inputs)) if (stamp(path.join(ROOT, file)) !== was) return undefined
  return bundle
}

function prune(keep: string): void {
  for (const name of readdirSync(CACHE)) {
    const file = path.join(CACHE, name)
    if (name.endsWith('.mjs') && name !== keep && Date.now() - statSync(file, { throwIfNoEntry: false })!.mtimeMs > PRUNE_AFTER_MS) rmSync(file, { force: true })
  }
}

function build(entry: string, key: string, indexFile: string): string {
  const name = `${key}-${process.pid}-${Date.now()}.mjs`
  const out = path.join(CACHE, name)
  const metaFile = `${out}.meta.json`
  execFileSync(process.execPath, [BUILDER, entry, out, metaFile], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], timeout: 60_000 })
  const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as { inputs: Record<string, unknown> }
  rmSync(metaFile, { force: true })
  const inputs: Record<string, string> = {}
  for (const file of Object.keys(meta.inputs)) inputs[file] = stamp(path.join(ROOT, file))
  const tmp = `${indexFile}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify({ bundle: name, inputs } satisfies Index))
  renameSync(tmp, indexFile) // atomic: a parallel test file sees the old index or this one
  prune(name)
  return out
}

/**
 * The cached bundle of `entry` (absolute path), built now when missing or stale. Our packages
 * resolve to their sources (condition `@naaccord/source`); every module but the entry keeps its
 * own `import.meta.url`, so the addon is found in packages/peercred as from source, while the
 * entry's is the bundle's (a CLI's "am I the program" check compares it with argv[1]).
 *
 * @example
 * spawn(process.execPath, [sourceBundle(path.join(ROOT, 'packages/cli/src/cli.ts')), 'run', ...])
 */
export function sourceBundle(entry: string): string {
  const known = fresh.get(entry)
  if (known !== undefined) return known
  mkdirSync(CACHE, { recursive: true })
  const key = `${path.basename(entry, '.ts')}-${createHash('sha256').update(entry).digest('hex').slice(0, 12)}`
  const indexFile = path.join(CACHE, `${key}.json`)
  const bundle = current(indexFile) ?? build(entry, key, indexFile)
  fresh.set(entry, bundle)
  return bundle
}
