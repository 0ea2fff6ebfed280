// The docs' option tables are checked against the code, so the front door cannot drift from it:
// each table (between `<!-- options:NAME -->` markers in README.md or a page under docs/) is
// exactly the rendering of the option table in code (scripts/options-doc.ts: one row per entry,
// env and default from the entry, meaning from its JSDoc); every property of ServerOptions /
// ServerLimits / ClientOptions / MetricsOptions (with its listen shapes) has a row and every row a
// property; every default the resolver holds is the one the table shows; every NAACCORD_*
// variable the code reads is in the docs, and every one the tables name exists. The types are
// read with the TypeScript compiler from the packages' entry points.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { CLIENT_DEFAULTS } from '@naaccord/ipc-client'
import { METRICS_DEFAULTS, SERVER_DEFAULTS } from '@naaccord/ipc-server'
import { READY_ENV } from '@naaccord/ipc-server/supervisor'
import { SUPERVISOR_OPTIONS } from '../packages/server/src/supervisor/options.js'
import { ENV, envOf, type OptionTable } from '@naaccord/ipc-shared'
import { OPTION_DOCS, createTypeReader, docFiles, findBlock, renderOptionsTable } from '../scripts/options-doc.js'
import { RUN_FLAGS } from '@naaccord/ipc-cli'
import { ROOT } from './helpers.js'

const docs = docFiles()
  .map((f) => fs.readFileSync(f, 'utf8'))
  .join('\n')

interface Row {
  names: string[]
  env: string[]
  defaultCell: string
}

/** The rows of the table marked `options:<name>`: option names (a row may name two, "a / b"), env names, default cell. */
function table(name: string): Row[] {
  const rows: Row[] = []
  for (const line of findBlock(name).body.split('\n')) {
    if (!line.startsWith('|')) continue
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

const reader = createTypeReader()

/** How a default value is written in the docs. */
function rendered(key: string, value: unknown): string {
  if (typeof value === 'number' && /mode/i.test(key)) return `0o${value.toString(8)}`
  return String(value)
}

const tables = {
  server: { rows: table('server'), entry: 'packages/server/src/index.ts', type: 'ServerOptions', defaults: SERVER_DEFAULTS as Record<string, unknown> },
  client: { rows: table('client'), entry: 'packages/client/src/index.ts', type: 'ClientOptions', defaults: CLIENT_DEFAULTS as Record<string, unknown> },
  // The listen.* rows show the defaults the resolver keeps at the top level of METRICS_DEFAULTS.
  metrics: {
    rows: table('metrics'),
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

describe('docs option tables match the code', () => {
  it.each(OPTION_DOCS.map((d) => [d.marker, d] as const))('%s: the table in the docs is the rendering of the option table in code', (_name, doc) => {
    // On a difference: pnpm exec tsx --conditions=@naaccord/source scripts/options-doc.ts --write
    expect(findBlock(doc.marker).body).toBe(renderOptionsTable(doc, reader))
  })

  it.each(Object.entries(tables))('%s: one row per option of the exported interface, none extra', (_name, t) => {
    let expected = reader.propertiesOf(t.entry, t.type)
    if (t.type === 'ServerOptions') {
      expected = [...expected.filter((p) => p !== 'limits'), ...reader.propertiesOf(t.entry, 'ServerLimits').map((p) => `limits.${p}`)]
    }
    if (t.type === 'MetricsOptions') {
      expected = [...expected, ...['MetricsSocketListen', 'MetricsTcpListen'].flatMap((type) => reader.propertiesOf(t.entry, type).map((p) => `listen.${p}`))]
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
        if (!cell.includes(`\`${want}\``)) wrong.push(`${name}: the resolver says ${want}, the docs say ${cell}`)
      }
    }
    expect(wrong).toEqual([])
  })

  it('every environment variable the code reads is in the docs, and every one the tables name exists', () => {
    const sources = fs
      .readdirSync(path.join(ROOT, 'packages'))
      .flatMap((pkg) => {
        const dir = path.join(ROOT, 'packages', pkg, 'src')
        return fs.existsSync(dir) ? (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts')).map((f) => fs.readFileSync(path.join(dir, f), 'utf8')) : []
      })
      .join('\n')
    // Every variable an option table reads, ENV, and every NAACCORD_* literal in the sources; the
    // supervisor's ready flag is set by the supervisor for its own child, not by anyone configuring.
    const fromTables = [...OPTION_DOCS.map((d) => d.table), SUPERVISOR_OPTIONS as OptionTable].flatMap((t) => Object.values(envOf(t)))
    const literals = [...sources.matchAll(/'(NAACCORD_[A-Z_]+)'/g)].map((m) => m[1]!).filter((v) => v !== READY_ENV)
    const known = new Set<string>([...Object.values(ENV), ...fromTables, ...literals])
    expect(fromTables.length).toBeGreaterThan(20)
    expect([...known].filter((v) => !docs.includes(`\`${v}\``))).toEqual([])
    // A variable the tables name must be read somewhere in the packages' sources (ENV or literally).
    const named = Object.values(tables).flatMap((t) => t.rows.flatMap((r) => r.env))
    expect(named.filter((v) => !known.has(v) && !sources.includes(`'${v}'`))).toEqual([])
  })
})

describe('the supervisor table matches the run command', () => {
  // `naaccord-ipc run` declares its flags once (RUN_FLAGS, packages/cli); the env and default of each
  // come from the supervisor's option table. The docs table, keyed by flag, names every flag with
  // the same variable and default, and no flag the command lacks.
  it('every flag of `naaccord-ipc run` is in the options:supervisor block with its variable and default', () => {
    const rows = findBlock('supervisor')
      .body.split('\n')
      .filter((l) => l.startsWith('| `--'))
      .map((l) => l.split('|').map((c) => c.trim()))
    const documented = new Map<string, { env: string; def: string }>()
    for (const [, names, env, def] of rows) {
      const flags = [...names!.matchAll(/`--([a-z-]+)`/g)].map((m) => m[1]!)
      const envs = [...env!.matchAll(/`(NAACCORD_[A-Z_]+)`/g)].map((m) => m[1]!)
      flags.forEach((f, i) => documented.set(f, { env: envs[i] ?? envs[0] ?? '', def: def! }))
    }
    expect([...documented.keys()].sort()).toEqual(RUN_FLAGS.map((f) => f.name).sort())
    for (const f of RUN_FLAGS) {
      expect(documented.get(f.name)?.env, `--${f.name}`).toBe(f.env ?? '')
      if (typeof f.default === 'number') expect(documented.get(f.name)?.def, `--${f.name}`).toBe(`\`${f.default}\``)
    }
  })
})
