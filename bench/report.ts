import type { Environment } from './environment.js'
import { baselineId, HOPS, rowsInSection, SECTIONS, type RowSpec } from './rows.js'
import { pairedRatio, type RowResult, type Spread } from './stats.js'
import type { RatioCheck, TargetResult } from './targets.js'

export interface Settings {
  readonly mode: 'full' | 'quick' | 'partial'
  readonly rounds: number
  /** How many times the child processes were started (the rounds shared out over them). */
  readonly lifetimes?: number
  readonly durationMs: number
  readonly warmupMs: number
  readonly order: string
}

export interface BenchReport {
  readonly environment: Environment
  readonly settings: Settings
  readonly runtimeS: number
  readonly rows: readonly RowResult[]
  readonly targets: readonly TargetResult[]
}

type Align = 'l' | 'r'
export type Block =
  | { kind: 'heading'; level: 1 | 2 | 3; text: string }
  | { kind: 'text'; text: string }
  | { kind: 'table'; head: readonly string[]; align: readonly Align[]; body: ReadonlyArray<readonly string[]> }
  | { kind: 'chart' }

const dash = '–'

export function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a'
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a'
  return ms < 1 ? ms.toFixed(3) : ms < 10 ? ms.toFixed(2) : ms.toFixed(1)
}

function fmtUs(us: number): string {
  return Number.isFinite(us) ? (us < 100 ? us.toFixed(1) : us.toFixed(0)) : 'n/a'
}

export function fmtRatio(s: Spread | undefined, withSpread = true): string {
  if (!s || !Number.isFinite(s.median)) return 'n/a'
  return withSpread && s.max > s.min ? `${s.median.toFixed(2)}x (${s.min.toFixed(2)}${dash}${s.max.toFixed(2)})` : `${s.median.toFixed(2)}x`
}

function fmtPercent(s: Spread | undefined): string {
  if (!s || !Number.isFinite(s.median)) return 'n/a'
  const p = (x: number) => `${Math.round(x * 100)}%`
  return s.max > s.min ? `${p(s.median)} (${p(s.min)}${dash}${p(s.max)})` : p(s.median)
}

function fmtPercentMedian(s: Spread | undefined): string {
  return s && Number.isFinite(s.median) ? `${Math.round(s.median * 100)}%` : 'n/a'
}

function fmtRps(s: Spread): string {
  return s.max > s.min ? `${fmtInt(s.median)} (${fmtInt(s.min)}${dash}${fmtInt(s.max)})` : fmtInt(s.median)
}

function signedMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a'
  return `${ms >= 0 ? '+' : '−'}${fmtMs(Math.abs(ms))} ms`
}

function labelIn(spec: RowSpec, section: string): string {
  return spec.appears.find((a) => a.section === section)?.label ?? spec.id
}

function designNoteTable(rows: readonly RowResult[]): Block[] {
  const byId = new Map(rows.map((r) => [r.spec.id, r]))
  const body: string[][] = []
  for (const handler of ['bare', 'serve'] as const) {
    for (const [transport, tls] of [['tcp', false], ['tcp', true], ['unix', false], ['unix', true]] as const) {
      const key = `${transport}-${tls ? 'tls' : 'plain'}-${handler}`
      const c1 = byId.get(`${key}-c1`)
      const c32 = byId.get(`${key}-c32`)
      const base1 = byId.get(baselineId(1))
      const base32 = byId.get(baselineId(32))
      if (!c1 && !c32) continue
      const label = (c1 ?? c32)!.spec.appears[0]!.label
      const isBase = key === 'tcp-plain-bare'
      body.push([
        label + (isBase ? ' (baseline)' : ''),
        isBase ? `${fmtMs(c1?.stats.p50.median ?? NaN)} ms p50` : c1 && base1 ? signedMs(c1.stats.p50.median - base1.stats.p50.median) : 'n/a',
        isBase ? `${fmtMs(c32?.stats.p50.median ?? NaN)} ms p50` : c32 && base32 ? signedMs(c32.stats.p50.median - base32.stats.p50.median) : 'n/a',
        fmtPercent(c1?.vsBaseline?.rps),
        fmtPercent(c32?.vsBaseline?.rps),
        c32 ? `${fmtUs(c32.stats.serverCpuUs.median)} µs (${fmtPercentMedian(c32.vsBaseline?.serverCpuUs)})` : 'n/a',
      ])
    }
  }
  return [
    { kind: 'heading', level: 2, text: 'In the design note\'s shape' },
    {
      kind: 'text',
      text: 'Baseline: plain HTTP over TCP loopback to a bare node:http listener ("today"), at the same concurrency. Latency impact is the change in median p50; throughput is requests/s as a share of the baseline (median of per-round ratios, min–max in brackets); CPU is server CPU time per request at c=32 and its share of the baseline\'s.',
    },
    {
      kind: 'table',
      head: ['Transport · security · handler', 'Latency impact c=1', 'Latency impact c=32', 'Throughput c=1', 'Throughput c=32', 'Server CPU / req (c=32)'],
      align: ['l', 'r', 'r', 'r', 'r', 'r'],
      body,
    },
  ]
}

/** How much of its one CPU each side used (CPU per request x requests/s): near 100% is the bottleneck. */
function busy(r: RowResult): string {
  const share = (us: number) => (Number.isFinite(us) ? `${Math.round((us * r.stats.rps.median) / 1e4)}%` : 'n/a')
  return `${share(r.stats.serverCpuUs.median)}/${share(r.stats.loadCpuUs.median)}`
}

function sectionTables(rows: readonly RowResult[]): Block[] {
  const blocks: Block[] = [{ kind: 'heading', level: 2, text: 'Every row, as ratios to the baseline' }]
  for (const section of SECTIONS) {
    const inSection = rowsInSection(rows, section.id)
    if (inSection.length === 0) continue
    blocks.push({ kind: 'heading', level: 3, text: section.title }, { kind: 'text', text: section.about })
    const body = inSection.map((r) => {
      const notes: string[] = []
      if (r.errors > 0) notes.push(`${r.errors} errors: ${r.samples.find((s) => s.firstError)?.firstError ?? ''}`)
      if (r.resumedShare !== undefined) notes.push(`${Math.round(r.resumedShare * 100)}% resumed`)
      if (Number.isFinite(r.stats.gateUs.median)) notes.push(`connection handling ${r.stats.gateUs.median.toFixed(1)} µs`)
      if (Number.isFinite(r.stats.webCpuUs.median)) notes.push(`web CPU ${fmtUs(r.stats.webCpuUs.median)} µs/req`)
      if (r.otherCpu !== undefined && r.otherCpu >= 0.05) notes.push(`other processes ${Math.round(r.otherCpu * 100)}%`)
      return [
        labelIn(r.spec, section.id),
        String(r.spec.concurrency),
        fmtRps(r.stats.rps),
        fmtRatio(r.vsBaseline?.rps),
        fmtMs(r.stats.p50.median),
        fmtMs(r.stats.p99.median),
        fmtRatio(r.vsBaseline?.p50, false),
        fmtUs(r.stats.serverCpuUs.median),
        fmtUs(r.stats.loadCpuUs.median),
        busy(r),
        notes.join('; '),
      ]
    })
    blocks.push({
      kind: 'table',
      head: ['Row', 'c', 'req/s (min–max)', 'req/s vs baseline', 'p50 ms', 'p99 ms', 'p50 vs baseline', 'server CPU µs/req', 'client CPU µs/req', 'busy server/client', 'notes'],
      align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
      body,
    })
  }
  return blocks
}

/** A judged or context comparison: a ratio ("1.02x") or, for differences, µs ("+3.1 µs"). */
export function fmtCheck(c: Pick<RatioCheck, 'difference' | 'measured'>, withSpread = true): string {
  if (!c.difference) return fmtRatio(c.measured, withSpread)
  const m = c.measured
  if (!m || !Number.isFinite(m.median)) return 'n/a'
  const us = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(1)} µs`
  return withSpread && m.max > m.min ? `${us(m.median)} (${us(m.min)}${dash}${us(m.max)})` : us(m.median)
}

function fmtGoal(c: RatioCheck): string {
  if (!c.goal) return ''
  return c.difference ? `${c.goal.op} ${c.goal.value} µs` : `${c.goal.op} ${c.goal.value.toFixed(2)}x`
}

function checkLine(c: RatioCheck): string {
  const goal = c.goal ? ` (goal ${fmtGoal(c)})` : ''
  const verdict = c.pass === undefined ? '' : c.pass ? ' PASS' : ' MISS'
  return `${c.label}: ${fmtCheck(c)}${goal}${verdict} — ${c.numerator} ${c.difference ? '−' : '/'} ${c.denominator}`
}

function targetBlocks(targets: readonly TargetResult[]): Block[] {
  return [
    { kind: 'heading', level: 2, text: 'Targets (issue 12)' },
    {
      kind: 'text',
      text: 'Median of the per-round ratios (min–max); the CPU-per-request ratios below each target are the figures other processes\' load moves least. Throughput is judged at c=32, p50 at c=1. Benchmarks never gate: a MISS is reported, the exit code stays 0. Compare two runs with pnpm bench:compare a.json b.json.',
    },
    {
      kind: 'table',
      head: ['Item', 'Target', 'Measured', 'Verdict'],
      align: ['r', 'l', 'l', 'l'],
      body: targets.map((t) => [
        String(t.n),
        t.title,
        [...t.checks, ...t.context.filter((c) => c.metric.endsWith('CpuUs')).slice(0, 1)].map((c) => `${c.label}: ${fmtCheck(c)}${c.goal ? ` (goal ${fmtGoal(c)})` : ''}`).join('; '),
        t.verdict === 'n/a' ? 'n/a' : `${t.verdict} (${t.checks.map(fmtGoal).join(', ')})`,
      ]),
    },
    ...targets.map((t): Block => ({ kind: 'text', text: `${t.n}. ${t.verdict} — ${t.title}\n${[...t.checks, ...t.context].map((c) => `   - ${checkLine(c)}`).join('\n')}` })),
  ]
}

/** The headline: the whole hop, each way of calling services, at c=1 and c=32. */
export function hopBlocks(rows: readonly RowResult[]): Block[] {
  const byId = new Map(rows.map((r) => [r.spec.id, r]))
  const today32 = byId.get('hop-agent-c32')
  const today1 = byId.get('hop-agent-c1')
  const body: string[][] = []
  for (const [endpoint, label] of HOPS) {
    const c1 = byId.get(`${endpoint}-c1`)
    const c32 = byId.get(`${endpoint}-c32`)
    if (!c1 && !c32) continue
    const vs = (r: RowResult | undefined, base: RowResult | undefined, m: 'rps' | 'p50' | 'hopCpuUs') =>
      r && base && r !== base ? fmtRatio(pairedRatioOf(r, base, m), false) : r === base && r ? '1.00x' : 'n/a'
    body.push([
      label,
      c1 ? fmtInt(c1.stats.rps.median) : 'n/a',
      c32 ? fmtRps(c32.stats.rps) : 'n/a',
      vs(c32, today32, 'rps'),
      c1 ? `${fmtMs(c1.stats.p50.median)} / ${fmtMs(c1.stats.p99.median)}` : 'n/a',
      vs(c1, today1, 'p50'),
      c32 ? `${fmtMs(c32.stats.p50.median)} / ${fmtMs(c32.stats.p99.median)}` : 'n/a',
      c32 ? fmtUs(c32.stats.webCpuUs.median) : 'n/a',
      c32 ? fmtUs(c32.stats.serverCpuUs.median) : 'n/a',
      c32 ? fmtUs(c32.stats.hopCpuUs.median) : 'n/a',
      vs(c32, today32, 'hopCpuUs'),
    ])
  }
  if (body.length === 0) return []
  return [
    { kind: 'heading', level: 2, text: 'The whole hop' },
    {
      kind: 'text',
      text: 'keep-alive load -> public web app (Express on TCP 127.0.0.1, its own process) -> services (the example-shaped Express app) and back; only the way the web app calls services differs. req/s c=32: median of the rounds (min–max); ratios are to today\'s hop (node:http agent), taken round by round. CPU is per request, c=32: web = the web app process (Express + its services client), services = the services process, hop = both.',
    },
    {
      kind: 'table',
      head: ['Hop', 'req/s c=1', 'req/s c=32 (min–max)', 'req/s c=32 vs today', 'p50 / p99 ms c=1', 'p50 c=1 vs today', 'p50 / p99 ms c=32', 'web CPU µs/req', 'services CPU µs/req', 'hop CPU µs/req', 'hop CPU vs today'],
      align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      body,
    },
  ]
}

function pairedRatioOf(a: RowResult, b: RowResult, metric: 'rps' | 'p50' | 'hopCpuUs'): Spread {
  return pairedRatio(a.samples, b.samples, metric)
}

function otherLoadLine(rows: readonly RowResult[]): string | undefined {
  const all = rows.flatMap((r) => r.samples.map((s) => s.otherCpu)).filter((x): x is number => x !== undefined)
  if (all.length === 0) return undefined
  const sorted = [...all].sort((a, b) => a - b)
  const median = sorted[sorted.length >> 1]!
  const noisy = all.filter((x) => x >= 0.05).length
  return `Other processes (and hypervisor steal) used a median ${(median * 100).toFixed(1)}% of the machine during measurements, at most ${(sorted[sorted.length - 1]! * 100).toFixed(0)}%; ${noisy} of ${all.length} measurements saw 5% or more${noisy > 0 ? ' (rows marked in the notes; their min–max spread shows it)' : ''}.`
}

function headerBlocks(r: BenchReport): Block[] {
  const e = r.environment
  const s = r.settings
  const other = otherLoadLine(r.rows)
  return [
    { kind: 'heading', level: 1, text: `naaccord-ipc benchmarks (${s.mode} run)` },
    {
      kind: 'text',
      text: [
        `Machine: ${e.cpu}, ${e.cores} CPU(s), ${e.memoryGiB} GiB; ${e.os} (${e.kernel})`,
        `Node ${e.node}; ${Object.entries(e.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`,
        `Pinning: ${e.pinning}`,
        ...(other ? [other] : []),
        `Run: ${e.date}${e.commit ? `, commit ${e.commit}` : ''}; ${s.rounds} round(s) x ${r.rows.length} rows, ${s.durationMs} ms measured + ${s.warmupMs} ms warm-up per row and round, ${s.order}; total ${Math.round(r.runtimeS)} s`,
        ...(s.mode === 'quick' ? ['Quick mode: one short round, a smoke test; single samples on a shared VM swing by ±30%, so draw no conclusions from these ratios.'] : []),
        'Reproduce: pnpm bench (full, about 5-6 min on 2 cores), pnpm bench -- --quick (about 1.5 min); compare two runs: pnpm bench:compare a.json b.json; see bench/README.md.',
      ].join('\n'),
    },
  ]
}

export function reportBlocks(r: BenchReport): Block[] {
  return [...headerBlocks(r), ...hopBlocks(r.rows), CHART, ...targetBlocks(r.targets), ...designNoteTable(r.rows), ...sectionTables(r.rows)]
}

/** Where the chart goes in the Markdown (after the whole-hop table); nothing in text output. */
const CHART: Block = { kind: 'chart' }

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|')
}

export function toMarkdown(blocks: readonly Block[], chartFile?: string): string {
  const out: string[] = []
  for (const b of blocks) {
    if (b.kind === 'chart') {
      if (chartFile) out.push(`![whole hop and every row: requests/s and p99](${chartFile})`, '')
      continue
    }
    if (b.kind === 'heading') out.push(`${'#'.repeat(b.level)} ${b.text}`)
    else if (b.kind === 'text') {
      // Hard line breaks, except before a nested list item, which Markdown starts on its own line.
      const lines = b.text.split('\n')
      out.push(lines.map((l, j) => (j < lines.length - 1 && !/^\s+- /.test(lines[j + 1]!) ? `${l}  ` : l)).join('\n'))
    }
    else {
      out.push(`| ${b.head.map(escapeCell).join(' | ')} |`)
      out.push(`|${b.align.map((a) => (a === 'r' ? ' ---: ' : ' --- ')).join('|')}|`)
      for (const row of b.body) out.push(`| ${row.map(escapeCell).join(' | ')} |`)
    }
    out.push('')
  }
  return out.join('\n')
}

export function toText(blocks: readonly Block[]): string {
  const out: string[] = []
  for (const b of blocks) {
    if (b.kind === 'chart') continue
    if (b.kind === 'heading') out.push(b.level === 1 ? `\n=== ${b.text} ===` : b.level === 2 ? `\n--- ${b.text} ---` : `\n${b.text}`)
    else if (b.kind === 'text') out.push(b.text)
    else {
      const widths = b.head.map((h, i) => Math.max(h.length, ...b.body.map((row) => (row[i] ?? '').length)))
      const line = (cells: readonly string[]) =>
        cells.map((c, i) => (b.align[i] === 'r' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()
      out.push(line(b.head), widths.map((w) => '-'.repeat(w)).join('  '))
      for (const row of b.body) out.push(line(row))
    }
  }
  return out.join('\n')
}
