import { fmtInt, fmtMs, type BenchReport } from './report.js'
import { rowsInSection, SECTIONS } from './rows.js'
import type { RowResult, Spread } from './stats.js'

const ROW_H = 18
const BAR_H = 11
const LABEL_W = 400
const PANEL_W = 300
const GAP = 60
const TOP = 70
const WIDTH = LABEL_W + 2 * PANEL_W + 2 * GAP + 20
const COLORS = { rps: '#3b6ea5', p99: '#d9822b', whisker: '#222', grid: '#ddd', text: '#222', muted: '#666' }

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function bar(x0: number, y: number, scale: number, s: Spread, color: string, label: string): string {
  if (!Number.isFinite(s.median) || scale <= 0) return ''
  const w = Math.max(1, s.median * scale)
  const lo = x0 + s.min * scale
  const hi = x0 + s.max * scale
  const mid = y + BAR_H / 2
  return [
    `<rect x="${x0}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${color}"/>`,
    s.max > s.min ? `<line x1="${lo.toFixed(1)}" y1="${mid}" x2="${hi.toFixed(1)}" y2="${mid}" stroke="${COLORS.whisker}" stroke-width="1"/>` : '',
    s.max > s.min ? `<line x1="${lo.toFixed(1)}" y1="${mid - 3}" x2="${lo.toFixed(1)}" y2="${mid + 3}" stroke="${COLORS.whisker}"/><line x1="${hi.toFixed(1)}" y1="${mid - 3}" x2="${hi.toFixed(1)}" y2="${mid + 3}" stroke="${COLORS.whisker}"/>` : '',
    `<text x="${(Math.max(x0 + w, hi) + 4).toFixed(1)}" y="${y + BAR_H - 1}" font-size="10" fill="${COLORS.text}">${esc(label)}</text>`,
  ].join('')
}

/**
 * A horizontal bar chart of every row, section by section: requests/s on the left, p99 latency on
 * the right, each bar the median of the rounds with a min–max whisker. Each section has its own
 * scale (a new connection per request is an order of magnitude slower than keep-alive).
 */
export function renderChart(report: BenchReport): string {
  const parts: string[] = []
  let y = TOP
  const xRps = LABEL_W
  const xP99 = LABEL_W + PANEL_W + GAP
  for (const section of SECTIONS) {
    const rows = rowsInSection(report.rows, section.id)
    if (rows.length === 0) continue
    const finite = (f: (r: RowResult) => number) => Math.max(...rows.map(f).filter(Number.isFinite), 0)
    const rpsScale = (PANEL_W - 70) / (finite((r) => r.stats.rps.max) || 1)
    const p99Scale = (PANEL_W - 70) / (finite((r) => r.stats.p99.max) || 1)
    y += 8
    parts.push(`<text x="10" y="${y + 12}" font-size="13" font-weight="bold" fill="${COLORS.text}">${esc(section.title)}</text>`)
    y += ROW_H + 4
    const top = y
    for (const r of rows) {
      const label = `c=${r.spec.concurrency} · ${r.spec.appears.find((a) => a.section === section.id)!.label}`
      const isBaseline = r.spec.id.startsWith('tcp-plain-bare-c')
      parts.push(`<text x="${LABEL_W - 10}" y="${y + BAR_H - 1}" font-size="11" text-anchor="end" fill="${COLORS.text}"${isBaseline ? ' font-weight="bold"' : ''}>${esc(label)}</text>`)
      parts.push(bar(xRps, y, rpsScale, r.stats.rps, COLORS.rps, fmtInt(r.stats.rps.median)))
      parts.push(bar(xP99, y, p99Scale, r.stats.p99, COLORS.p99, `${fmtMs(r.stats.p99.median)} ms`))
      y += ROW_H
    }
    parts.push(`<line x1="${xRps}" y1="${top - 4}" x2="${xRps}" y2="${y}" stroke="${COLORS.grid}"/>`)
    parts.push(`<line x1="${xP99}" y1="${top - 4}" x2="${xP99}" y2="${y}" stroke="${COLORS.grid}"/>`)
    y += 6
  }
  const e = report.environment
  const height = y + 30
  const head = [
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="22" font-size="16" font-weight="bold" fill="${COLORS.text}">naaccord-ipc: requests/s and p99 latency per row (median of ${report.settings.rounds} round${report.settings.rounds === 1 ? '' : 's'}, whiskers min–max)</text>`,
    `<text x="10" y="40" font-size="11" fill="${COLORS.muted}">${esc(`${e.cpu}, ${e.cores} CPU(s), Node ${e.node}, express ${e.versions.express}, undici ${e.versions.undici}; ${e.pinning}`)}</text>`,
    `<text x="${xRps}" y="${TOP - 6}" font-size="12" font-weight="bold" fill="${COLORS.rps}">requests/s (higher is better)</text>`,
    `<text x="${xP99}" y="${TOP - 6}" font-size="12" font-weight="bold" fill="${COLORS.p99}">p99 latency, ms (lower is better)</text>`,
  ]
  const foot = `<text x="10" y="${height - 10}" font-size="10" fill="${COLORS.muted}">Scales are per section. ${esc(e.date)}${e.commit ? `, commit ${esc(e.commit)}` : ''}. Reproduce: pnpm bench</text>`
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">\n${[...head, ...parts, foot].join('\n')}\n</svg>\n`
}
