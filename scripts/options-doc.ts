// The options tables of the docs, rendered from the option tables in code (SERVER_OPTIONS,
// CLIENT_OPTIONS, METRICS_OPTIONS): one row per option, its env and default cells from the
// table's entry, its meaning from the entry's JSDoc (read with the TypeScript compiler from the
// exported options type, i.e. what an editor shows). A table sits in README.md or a page under
// docs/ between `<!-- options:NAME -->` and `<!-- /options:NAME -->`; moving the block moves it.
//
//   pnpm exec tsx --conditions=@naaccord/source scripts/options-doc.ts          # check, exit 1 on drift
//   pnpm exec tsx --conditions=@naaccord/source scripts/options-doc.ts --write  # rewrite the blocks
//
// test/readme-api.test.ts runs the check.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { CLIENT_OPTIONS } from '../packages/client/src/options.js'
import { METRICS_OPTIONS } from '../packages/server/src/metrics/metrics-options.js'
import { SERVER_OPTIONS } from '../packages/server/src/options.js'
import { docRows, type DocRow, type OptionTable } from '../packages/shared/src/option-table.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** Each documented options table: its marker, the table, and the exported type whose JSDoc gives the meanings. */
export const OPTION_DOCS = [
  { marker: 'server', table: SERVER_OPTIONS as OptionTable, entry: 'packages/server/src/index.ts', type: 'ServerOptions' },
  { marker: 'client', table: CLIENT_OPTIONS as OptionTable, entry: 'packages/client/src/index.ts', type: 'ClientOptions' },
  { marker: 'metrics', table: METRICS_OPTIONS as OptionTable, entry: 'packages/server/src/index.ts', type: 'MetricsOptions' },
] as const

/** The exported types of the packages, read once with the TypeScript checker. */
export function createTypeReader() {
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
  const typeOf = (entry: string, typeName: string): ts.Type => {
    const file = program.getSourceFile(path.join(ROOT, entry))!
    const exported = checker.getExportsOfModule(checker.getSymbolAtLocation(file)!).find((s) => s.name === typeName)
    if (!exported) throw new Error(`${entry} does not export ${typeName}`)
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported
    return checker.getDeclaredTypeOfSymbol(symbol)
  }
  /** The property at a dotted path (`limits.maxBodyBytes`), looked up in each member of a union (`listen`). */
  const propertyAt = (type: ts.Type, dotted: string): ts.Symbol | undefined => {
    let symbol: ts.Symbol | undefined
    let current: ts.Type | undefined = type
    for (const key of dotted.split('.')) {
      const members: ts.Type[] = current === undefined ? [] : current.isUnion() ? current.types : [current]
      symbol = members.map((m) => m.getProperty(key)).find((s) => s !== undefined)
      current = symbol && checker.getNonNullableType(checker.getTypeOfSymbol(symbol))
    }
    return symbol
  }
  return {
    /** The property names of an exported type, sorted. */
    propertiesOf: (entry: string, typeName: string): string[] =>
      typeOf(entry, typeName)
        .getProperties()
        .map((p) => p.name)
        .sort(),
    /** The JSDoc text of an option, on one line. */
    docOf: (entry: string, typeName: string, dotted: string): string => {
      const symbol = propertyAt(typeOf(entry, typeName), dotted)
      if (!symbol) throw new Error(`${typeName} has no option ${dotted}`)
      return ts.displayPartsToString(symbol.getDocumentationComment(checker)).replace(/\s+/g, ' ').trim()
    },
  }
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|')
}

function renderRow(row: DocRow, meaning: string): string {
  const env = [row.env.map((e) => `\`${e}\``).join(', '), row.envNote ?? ''].filter(Boolean).join(' ')
  return `|${[`\`${row.name}\``, env, row.default, meaning].map((c) => (c ? ` ${cell(c)} ` : ' ')).join('|')}|`
}

/** One options table as the docs show it: a Markdown table, a row per option in the code table's order. */
export function renderOptionsTable(doc: (typeof OPTION_DOCS)[number], reader: ReturnType<typeof createTypeReader>): string {
  const rows = docRows(doc.table).map((row) => renderRow(row, reader.docOf(doc.entry, doc.type, row.name)))
  return ['| option | env | default | meaning |', '|---|---|---|---|', ...rows].join('\n')
}

/** The Markdown files a table may be in: README.md and every page under docs/. */
export function docFiles(): string[] {
  const docs = path.join(ROOT, 'docs')
  const pages = fs.existsSync(docs) ? (fs.readdirSync(docs, { recursive: true }) as string[]).filter((f) => f.endsWith('.md')).map((f) => path.join(docs, f)) : []
  return [path.join(ROOT, 'README.md'), ...pages]
}

const markers = (name: string) => [`<!-- options:${name} -->\n`, `\n<!-- /options:${name} -->`] as const

/** Where the block of a table is: the file and the text between its markers. Throws when no file or two files hold it. */
export function findBlock(name: string): { file: string; text: string; body: string; start: number; end: number } {
  const [open, close] = markers(name)
  const found = docFiles().flatMap((file) => {
    const text = fs.readFileSync(file, 'utf8')
    const start = text.indexOf(open)
    if (start < 0) return []
    const end = text.indexOf(close, start)
    if (end < 0) throw new Error(`${file}: ${open.trim()} without ${close.trim()}`)
    return [{ file, text, body: text.slice(start + open.length, end), start: start + open.length, end }]
  })
  if (found.length !== 1) throw new Error(`the options table "${name}" must be in exactly one of README.md, docs/*.md (marked ${open.trim()}); found in ${found.length}`)
  return found[0]!
}

function main(): void {
  const write = process.argv.includes('--write')
  const reader = createTypeReader()
  let drift = 0
  for (const doc of OPTION_DOCS) {
    const block = findBlock(doc.marker)
    const want = renderOptionsTable(doc, reader)
    if (block.body === want) continue
    drift++
    if (write) fs.writeFileSync(block.file, block.text.slice(0, block.start) + want + block.text.slice(block.end))
    console.log(`${write ? 'rewrote' : 'out of date'}: options:${doc.marker} in ${path.relative(ROOT, block.file)}`)
  }
  if (drift > 0 && !write) process.exitCode = 1
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) main()
