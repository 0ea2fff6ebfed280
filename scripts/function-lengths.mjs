// The longest functions of each package, as a reader meets them: every function, method, arrow
// function and accessor in packages/*/src (tests excluded), measured in source lines from its first
// to its last line (a nested function counts in its parent too, as a reader reads it), and the
// functions of the native addon's C source.
//
//   node scripts/function-lengths.mjs            the five longest per package
//   node scripts/function-lengths.mjs --over 60  only functions of 60 lines or more; exit 1 if any
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** Every function-like node of one file, with its name and its length in lines. */
export function functionsOf(file) {
  const text = fs.readFileSync(file, 'utf8')
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found = []
  const nameOf = (node) => {
    if (node.name && ts.isIdentifier(node.name)) return node.name.text
    if (node.name) return node.name.getText(source)
    const parent = node.parent
    if (parent && ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text
    if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText(source)
    return '(anonymous)'
  }
  const visit = (node) => {
    if (ts.isFunctionLike(node) && node.body) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line
      found.push({ file: path.relative(ROOT, file), line: start + 1, name: nameOf(node), lines: end - start + 1 })
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

/**
 * The functions of one C file: a definition starts at column 0 with `name(...) {` and ends at the
 * first `}` at column 0 (the layout of native/*.c).
 */
export function cFunctionsOf(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n')
  const found = []
  let signature // { name, line } from a column-0 `type name(` line until its `{`
  let open
  lines.forEach((line, i) => {
    if (open === undefined) {
      const head = /^[A-Za-z][^;=#]*?\b([A-Za-z_]\w*)\s*\(/.exec(line)
      if (head && !line.trimEnd().endsWith(';')) signature = { name: head[1], line: i + 1 }
      if (signature && line.trimEnd().endsWith('{')) [open, signature] = [signature, undefined]
      else if (line.trimEnd().endsWith(';')) signature = undefined
    } else if (line.startsWith('}')) {
      found.push({ file: path.relative(ROOT, file), line: open.line, name: open.name, lines: i + 1 - open.line + 1 })
      open = undefined
    }
  })
  return found
}

/** The source files of one package (no tests, no declarations). */
export function sourcesOf(pkgDir) {
  const out = []
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(p)
      else if (/\.(ts|mts|js|mjs|c)$/.test(entry.name) && !/\.test\.|\.d\.ts$/.test(entry.name)) out.push(p)
    }
  }
  for (const sub of ['src', 'bin', 'native']) if (fs.existsSync(path.join(pkgDir, sub))) walk(path.join(pkgDir, sub))
  return out
}

/** The functions of every package, longest first, keyed by package folder name. */
export function functionLengths() {
  const result = {}
  for (const pkg of fs.readdirSync(path.join(ROOT, 'packages')).sort()) {
    const dir = path.join(ROOT, 'packages', pkg)
    if (!fs.existsSync(path.join(dir, 'package.json'))) continue
    result[pkg] = sourcesOf(dir).flatMap((f) => (f.endsWith('.c') ? cFunctionsOf(f) : functionsOf(f))).sort((a, b) => b.lines - a.lines)
  }
  return result
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const overAt = process.argv.indexOf('--over')
  const over = overAt > 0 ? Number(process.argv[overAt + 1]) : undefined
  let failed = false
  for (const [pkg, fns] of Object.entries(functionLengths())) {
    const shown = over === undefined ? fns.slice(0, 5) : fns.filter((f) => f.lines >= over)
    if (over !== undefined && shown.length > 0) failed = true
    console.log(`${pkg}: longest ${fns[0]?.lines ?? 0} lines`)
    for (const f of shown) console.log(`  ${String(f.lines).padStart(4)}  ${f.name}  ${f.file}:${f.line}`)
  }
  if (failed) process.exitCode = 1
}
