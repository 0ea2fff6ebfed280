// pnpm bench:compare a.json b.json: do two runs agree on every target? For each judged and
// context comparison of every target: both runs' medians, their relative difference, and
// whether it is within 5% (differences in µs: within 5% or 1 µs), plus both verdicts.
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { BenchReport } from './report.js'
import { fmtCheck, hopBlocks, toMarkdown, type Block } from './report.js'
import { ROOT } from './server-control.js'
import type { RatioCheck } from './targets.js'

export const AGREEMENT = Object.freeze({ relative: 0.05, absoluteUs: 1 })

export interface Agreement {
  readonly target: string
  readonly label: string
  readonly judged: boolean
  readonly a: RatioCheck
  readonly b: RatioCheck
  /** |a - b| / mean(a, b) of the medians; NaN when either is missing. */
  readonly relative: number
  readonly agree: boolean | undefined
}

/** Compare every check of every target present in both runs. */
export function compareRuns(a: BenchReport, b: BenchReport): Agreement[] {
  const out: Agreement[] = []
  for (const [i, ta] of a.targets.entries()) {
    const tb = b.targets[i]?.title === ta.title ? b.targets[i] : b.targets.find((t) => t.title === ta.title)
    if (!tb) continue
    for (const [judged, list] of [[true, ta.checks], [false, ta.context]] as const) {
      for (const ca of list) {
        const cb = [...tb.checks, ...tb.context].find((c) => c.label === ca.label)
        if (!cb) continue
        const x = ca.measured?.median
        const y = cb.measured?.median
        const both = x !== undefined && y !== undefined && Number.isFinite(x) && Number.isFinite(y)
        const relative = both ? Math.abs(x - y) / Math.max(Math.abs((x + y) / 2), Number.EPSILON) : NaN
        const agree = !both ? undefined : relative <= AGREEMENT.relative || (ca.difference === true && Math.abs(x - y) <= AGREEMENT.absoluteUs)
        out.push({ target: `${ta.n}. ${ta.title}`, label: ca.label, judged, a: ca, b: cb, relative, agree })
      }
    }
  }
  return out
}

/** The page that holds the results block (`--readme`); its links are relative to its folder. */
const RESULTS_PAGE = path.join(ROOT, 'docs', 'performance.md')
const MARKERS = ['<!-- bench:results:start -->', '<!-- bench:results:end -->'] as const

/**
 * The results block of docs/performance.md, from two full runs: the whole-hop table and chart of run B, each
 * target's verdict in both runs with the judged figures, and whether the runs agree.
 */
export function readmeBlock(a: BenchReport, b: BenchReport, fileA: string, fileB: string): string {
  const rel = (f: string) => path.relative(path.dirname(RESULTS_PAGE), path.resolve(f)).split(path.sep).join('/')
  const rows = compareRuns(a, b)
  const e = b.environment
  const blocks: Block[] = [
    {
      kind: 'text',
      text: `Two full runs (\`pnpm bench\`, ${b.settings.rounds} alternated rounds each over ${b.settings.lifetimes ?? 1} start(s) of the processes, ${Math.round(a.runtimeS)} s and ${Math.round(b.runtimeS)} s) on ${e.cpu}, ${e.cores} CPU(s), ${e.os}, Node ${e.node}, express ${e.versions.express}, undici ${e.versions.undici}; commit ${a.environment.commit ?? '?'} and ${e.commit ?? '?'}. Every row, spread and profile hint: [run A](${rel(fileA.replace(/\.json$/, '.md'))}), [run B](${rel(fileB.replace(/\.json$/, '.md'))}). The table and chart are run B.`,
    },
    ...hopBlocks(b.rows).slice(1),
    {
      kind: 'table',
      head: ['Item', 'Target', 'Judged figure', 'Run A', 'Run B', 'Runs agree (within 5%)'],
      align: ['r', 'l', 'l', 'r', 'r', 'l'],
      body: b.targets.flatMap((t) => {
        // The judged figures of each target; for the noise floor (item 2, nothing judged) its A/A figures.
        const ofTarget = rows.filter((r) => r.target === `${t.n}. ${t.title}`)
        const judged = t.n === 2 ? ofTarget : ofTarget.filter((r) => r.judged)
        const va = a.targets.find((x) => x.title === t.title)?.verdict ?? 'n/a'
        if (judged.length === 0) return []
        return judged.map((r, i) => [
          i === 0 ? String(t.n) : '',
          i === 0 ? `${t.title} — A ${va}, B ${t.verdict}` : '',
          r.label,
          fmtCheck(r.a),
          fmtCheck(r.b),
          r.agree === undefined ? 'n/a' : `${r.agree ? 'yes' : 'no'} (${(r.relative * 100).toFixed(1)}%)`,
        ])
      }),
    },
  ]
  const chart = rel(fileB.replace(/\.json$/, '.svg'))
  return toMarkdown(blocks).trimEnd() + `\n\n![whole hop and every row: requests/s and p99 (run B)](${chart})\n`
}

function writeReadme(block: string): void {
  const text = readFileSync(RESULTS_PAGE, 'utf8')
  const start = text.indexOf(MARKERS[0])
  const end = text.indexOf(MARKERS[1])
  if (start === -1 || end < start) throw new Error(`${path.relative(ROOT, RESULTS_PAGE)} has no ${MARKERS[0]} ... ${MARKERS[1]} block`)
  writeFileSync(RESULTS_PAGE, `${text.slice(0, start + MARKERS[0].length)}\n${block}${text.slice(end)}`)
}

function main(): void {
  const argv = process.argv.slice(2).filter((x) => x !== '--')
  const updateReadme = argv.includes('--readme')
  const files = argv.filter((x) => x !== '--readme')
  if (files.length !== 2) {
    console.error('usage: pnpm bench:compare <run-a.json> <run-b.json> [--readme]   (bench/results/run-*.json; --readme rewrites the results block of docs/performance.md)')
    process.exitCode = 2
    return
  }
  const [a, b] = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as BenchReport) as [BenchReport, BenchReport]
  const rows = compareRuns(a, b)
  console.log(`A: ${path.basename(files[0]!)} (${a.environment.date}, commit ${a.environment.commit ?? '?'}, ${a.settings.rounds} rounds)`)
  console.log(`B: ${path.basename(files[1]!)} (${b.environment.date}, commit ${b.environment.commit ?? '?'}, ${b.settings.rounds} rounds)`)
  let target = ''
  for (const r of rows) {
    if (r.target !== target) {
      target = r.target
      const va = a.targets.find((t) => `${t.n}. ${t.title}` === target)?.verdict
      const vb = b.targets.find((t) => `${t.n}. ${t.title}` === target)?.verdict
      console.log(`\n${target}\n  verdict A ${va}, B ${vb}${va === vb ? '' : '  <- verdicts differ'}`)
    }
    const diff = Number.isFinite(r.relative) ? `${(r.relative * 100).toFixed(1)}%` : 'n/a'
    const mark = r.agree === undefined ? 'n/a' : r.agree ? 'agree' : 'DISAGREE'
    console.log(`  ${r.judged ? '*' : ' '} ${r.label}: A ${fmtCheck(r.a, false)}  B ${fmtCheck(r.b, false)}  diff ${diff}  ${mark}`)
  }
  const judged = rows.filter((r) => r.judged && r.agree !== undefined)
  const agreeing = judged.filter((r) => r.agree).length
  console.log(
    `\n${agreeing} of ${judged.length} judged comparisons (*) agree within ${AGREEMENT.relative * 100}% (µs differences: or within ${AGREEMENT.absoluteUs} µs); ` +
      `${rows.filter((r) => r.agree).length} of ${rows.filter((r) => r.agree !== undefined).length} including context.`,
  )
  if (updateReadme) {
    writeReadme(readmeBlock(a, b, files[0]!, files[1]!))
    console.log('docs/performance.md: results block rewritten from these two runs')
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) main()
