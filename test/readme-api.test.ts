// The README's option tables are checked against the exported types and the resolvers' DEFAULTS, so
// the front door cannot drift from the code: every property of ServerOptions / ServerLimits /
// ClientOptions / MetricsOptions (with its listen shapes) has a row and every row a property;
// every default the resolver holds is the one the table shows; every NAACCORD_* variable the code
// reads is in the README, and every one the tables name exists. The types are read with the TypeScript compiler from the packages' entry points.
import fs from 'node:fs'
import path from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { CLIENT_DEFAULTS } from '@naaccord/ipc-client'
import { METRICS_DEFAULTS, SERVER_DEFAULTS } from '@naaccord/ipc-server'
import { ENV } from '@naaccord/ipc-shared'
import { ROOT } from './helpers.js'

// The README and the pages under docs/ (the tables live on the pages), read as one text.
const docFiles = ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join('docs', f))]
const readme = docFiles.map((f) => fs.readFileSync(path.join(ROOT, f), 'utf8')).join('\n')

interface Row {
  names: string[]
  env: string[]
  defaultCell: string
}

/** The rows of the table under `### <heading>`: option names (a row may name two, "a / b"), env names, default cell. */
function table(heading: string): Row[] {
  const start = readme.indexOf(`\n### ${heading}\n`)
  if (start < 0) throw new Error(`README has no "### ${heading}" section`)
  const lines = readme.slice(start).split('\n').slice(2)
  const rows: Row[] = []
  let inTable = false
  for (const line of lines) {
    if (!line.startsWith('|')) {
      if (inTable) break
      continue
    }
    inTable = true
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim())
    if (cells[0] === 'option' || /^-+$/.test(cells[0] ?? '')) continue
    rows.push({
      names: [...(cells[0] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!),
      env: [...(cells[1] ?? '').matchAll(/NAACCORD_[A-Z_]+/g)].map((m) => m[0]),
      defaultCell: cells[2] ?? '',
    })
  }
  return rows
}

// One program over both entry points; the checker gives each exported interface's properties.
const program = ts.createProgram([path.join(ROOT, 'packages/server/src/index.ts'), path.join(ROOT, 'packages/client/src/index.ts')], {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  customConditions: ['@naaccord/source'],
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  types: ['node'],
})
const checker = program.getTypeChecker()

function propertiesOf(entry: string, typeName: string): string[] {
  const file = program.getSourceFile(path.join(ROOT, entry))!
  const moduleSymbol = checker.getSymbolAtLocation(file)!
  const exported = checker.getExportsOfModule(moduleSymbol).find((s) => s.name === typeName)
  if (!exported) throw new Error(`${entry} does not export ${typeName}`)
  const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported
  return checker
    .getDeclaredTypeOfSymbol(symbol)
    .getProperties()
    .map((p) => p.name)
    .sort()
}

/** How a default value is written in the README. */
function rendered(key: string, value: unknown): string {
  if (typeof value === 'number' && /mode/i.test(key)) return `0o${value.toString(8)}`
  return String(value)
}

const tables = {
  server: { rows: table('Server options'), entry: 'packages/server/src/index.ts', type: 'ServerOptions', defaults: SERVER_DEFAULTS as Record<string, unknown> },
  client: { rows: table('Client options'), entry: 'packages/client/src/index.ts', type: 'ClientOptions', defaults: CLIENT_DEFAULTS as Record<string, unknown> },
  // The listen.* rows show the defaults the resolver keeps at the top level of METRICS_DEFAULTS.
  metrics: {
    rows: table('Metrics options'),
    entry: 'packages/server/src/index.ts',
    type: 'MetricsOptions',
    defaults: {
      ...METRICS_DEFAULTS,
      'listen.socketMode': METRICS_DEFAULTS.socketMode,
      'listen.dirMode': METRICS_DEFAULTS.dirMode,
      'listen.host': METRICS_DEFAULTS.host,
    } as Record<string, unknown>,
  },
}

describe('README API tables match the exported types', () => {
  it.each(Object.entries(tables))('%s: one row per option of the exported interface, none extra', (_name, t) => {
    let expected = propertiesOf(t.entry, t.type)
    if (t.type === 'ServerOptions') {
      expected = [...expected.filter((p) => p !== 'limits'), ...propertiesOf(t.entry, 'ServerLimits').map((p) => `limits.${p}`)]
    }
    if (t.type === 'MetricsOptions') {
      expected = [...expected, ...['MetricsSocketListen', 'MetricsTcpListen'].flatMap((type) => propertiesOf(t.entry, type).map((p) => `listen.${p}`))]
    }
    expect(expected.length).toBeGreaterThan(10)
    expect(new Set(expected).size).toBe(expected.length)
    const documented = new Set(t.rows.flatMap((r) => r.names))
    expect(expected.filter((n) => !documented.has(n))).toEqual([])
    expect(t.rows.flatMap((r) => r.names).filter((n) => !expected.includes(n))).toEqual([])
  })

  it.each(Object.entries(tables))('%s: every default in the resolver is the one the table shows', (_name, t) => {
    const flat: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(t.defaults)) {
      if (v !== null && typeof v === 'object') for (const [k2, v2] of Object.entries(v)) flat[`${k}.${k2}`] = v2
      else flat[k] = v
    }
    const wrong: string[] = []
    for (const row of t.rows) {
      for (const [i, name] of row.names.entries()) {
        if (!(name in flat)) continue
        // "a / b" rows give their defaults in the same order: "`100` / `1000`".
        const cell = row.names.length > 1 ? (row.defaultCell.split(' / ')[i] ?? '') : row.defaultCell
        const want = rendered(name, flat[name])
        if (!cell.includes(`\`${want}\``)) wrong.push(`${name}: the resolver says ${want}, the README says ${cell}`)
      }
    }
    expect(wrong).toEqual([])
  })

  it('every environment variable the code reads is in the README, and every one the tables name exists', () => {
    const known = new Set<string>(Object.values(ENV))
    expect([...known].filter((v) => !readme.includes(`\`${v}\``))).toEqual([])
    // A variable the tables name must be read somewhere in the packages' sources (ENV or literally).
    const sources = fs
      .readdirSync(path.join(ROOT, 'packages'))
      .flatMap((pkg) => {
        const dir = path.join(ROOT, 'packages', pkg, 'src')
        return fs.existsSync(dir) ? (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts')).map((f) => fs.readFileSync(path.join(dir, f), 'utf8')) : []
      })
      .join('\n')
    const named = Object.values(tables).flatMap((t) => t.rows.flatMap((r) => r.env))
    expect(named.filter((v) => !known.has(v) && !sources.includes(`'${v}'`))).toEqual([])
  })
})
