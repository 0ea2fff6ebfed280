// Dependencies run one way (STYLE.md, "The shape of the house"): each package may depend on and
// import only packages of a lower layer (a package's own name, in its JSDoc examples, is no edge). A library (shared, peercred, certs) never reaches up to
// the server, the client or the command; the command (cli) is the top. Checked in each package's
// package.json (every kind of dependency) and in every import of its sources, tests included.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from './helpers.js'

/** The layer of each package: an edge may only go to a lower number. */
const LAYERS: Record<string, number> = {
  '@naaccord/ipc-shared': 0,
  '@naaccord/ipc-peercred': 1,
  '@naaccord/ipc-certs': 1,
  '@naaccord/ipc-client': 2,
  '@naaccord/ipc-server': 2,
  '@naaccord/ipc-cli': 3,
}

const DEPENDENCY_FIELDS = ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies'] as const

function packages(): { name: string; dir: string; json: Record<string, unknown> }[] {
  const base = path.join(ROOT, 'packages')
  return fs.readdirSync(base).flatMap((d) => {
    const file = path.join(base, d, 'package.json')
    if (!fs.existsSync(file)) return []
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>
    return [{ name: json.name as string, dir: path.join(base, d), json }]
  })
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile() && /\.(ts|mts|js|mjs)$/.test(e.name)).map((e) => path.join(e.parentPath, e.name))
}

/** Every `@naaccord/ipc-*` package a file imports (static, dynamic, type-only, re-export). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8')
  return [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"](@naaccord\/ipc-[a-z]+)(?:\/[^'"]*)?['"]/g)].map((m) => m[1]!)
}

describe('the house has no edge up', () => {
  const all = packages()

  it('knows the layer of every package', () => {
    expect(all.map((p) => p.name).sort()).toEqual(Object.keys(LAYERS).sort())
  })

  it.each(all.map((p) => [p.name, p] as const))('%s depends only on packages below it (package.json)', (_name, p) => {
    const up = DEPENDENCY_FIELDS.flatMap((field) => Object.keys((p.json[field] as Record<string, string> | undefined) ?? {}).filter((dep) => dep in LAYERS && LAYERS[dep]! >= LAYERS[p.name]!).map((dep) => `${field}: ${dep}`))
    expect(up).toEqual([])
  })

  it.each(all.map((p) => [p.name, p] as const))('%s imports only packages below it (src/)', (_name, p) => {
    const up = sourceFiles(path.join(p.dir, 'src')).flatMap((file) => importsOf(file).filter((dep) => dep !== p.name && dep in LAYERS && LAYERS[dep]! >= LAYERS[p.name]!).map((dep) => `${path.relative(ROOT, file)} imports ${dep}`))
    expect(up).toEqual([])
  })

  it('only the command package has a bin', () => {
    expect(all.filter((p) => p.json.bin !== undefined).map((p) => p.name)).toEqual(['@naaccord/ipc-cli'])
  })

  it('the import scan sees every form of import (so the checks above can fail)', () => {
    const probe = path.join(ROOT, 'packages', 'cli', 'src', 'index.ts')
    expect(importsOf(probe)).toEqual([])
    const text = `import { a } from '@naaccord/ipc-server'\nimport type { B } from "@naaccord/ipc-client"\nexport { c } from '@naaccord/ipc-cli'\nawait import('@naaccord/ipc-server/supervisor')\nimport '@naaccord/ipc-certs'\n`
    const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nipc-structure-')), 'x.ts')
    try {
      fs.writeFileSync(tmp, text)
      expect(importsOf(tmp)).toEqual(['@naaccord/ipc-server', '@naaccord/ipc-client', '@naaccord/ipc-cli', '@naaccord/ipc-server', '@naaccord/ipc-certs'])
    } finally {
      fs.rmSync(path.dirname(tmp), { recursive: true, force: true })
    }
  })
})

describe('functions a reader can hold in mind', () => {
  it('the longest function of each package (TypeScript and the addon C) is under 60 lines', async () => {
    // `node scripts/function-lengths.mjs` prints the five longest per package; --over 60 the offenders.
    const { functionLengths } = (await import(path.join(ROOT, 'scripts', 'function-lengths.mjs'))) as {
      functionLengths: () => Record<string, { file: string; line: number; name: string; lines: number }[]>
    }
    const lengths = functionLengths()
    expect(Object.keys(lengths).sort()).toEqual(['certs', 'cli', 'client', 'peercred', 'server', 'shared'])
    const over = Object.values(lengths).flatMap((fns) => fns.filter((f) => f.lines >= 60).map((f) => `${f.file}:${f.line} ${f.name} (${f.lines} lines)`))
    expect(over).toEqual([])
  })

  it('the measure sees nested functions and C definitions (so the check above can fail)', async () => {
    const { functionsOf, cFunctionsOf } = (await import(path.join(ROOT, 'scripts', 'function-lengths.mjs'))) as {
      functionsOf: (file: string) => { name: string; lines: number }[]
      cFunctionsOf: (file: string) => { name: string; lines: number }[]
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nipc-fn-'))
    try {
      const ts = path.join(dir, 'a.ts')
      fs.writeFileSync(ts, `export function outer() {\n  const inner = () => {\n${'    void 0\n'.repeat(70)}  }\n  return inner\n}\n`)
      expect(functionsOf(ts).map((f) => [f.name, f.lines])).toEqual([['outer', 75], ['inner', 72]])
      const c = path.join(dir, 'a.c')
      fs.writeFileSync(c, `static int f(int a,\n             int b) {\n${'  a++;\n'.repeat(61)}  return a + b;\n}\n`)
      expect(cFunctionsOf(c).map((f) => [f.name, f.lines])).toEqual([['f', 65]])
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
