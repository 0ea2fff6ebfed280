import { pairedRatio, type Sample, type Spread } from './stats.js'

/** One ratio between two rows, judged against a goal, or shown for context when `goal` is absent. */
export interface RatioCheck {
  readonly label: string
  readonly numerator: string
  readonly denominator: string
  readonly metric: 'rps' | 'p50' | 'serverCpuUs'
  readonly goal?: { readonly op: '>=' | '<='; readonly value: number }
  readonly measured: Spread | undefined
  readonly pass: boolean | undefined
}

export interface TargetResult {
  readonly n: number
  readonly title: string
  /** Judged ratios: the target is met when every one is. */
  readonly checks: readonly RatioCheck[]
  /** Context ratios, not judged. */
  readonly context: readonly RatioCheck[]
  readonly verdict: 'PASS' | 'MISS' | 'n/a'
}

type CheckSpec = Omit<RatioCheck, 'measured' | 'pass'>

interface TargetSpec {
  readonly title: string
  readonly checks: readonly CheckSpec[]
  readonly context: readonly CheckSpec[]
}

const rps = (label: string, numerator: string, denominator: string, goal?: CheckSpec['goal']): CheckSpec => ({ label, numerator, denominator, metric: 'rps', ...(goal ? { goal } : {}) })
const p50 = (label: string, numerator: string, denominator: string, goal?: CheckSpec['goal']): CheckSpec => ({ label, numerator, denominator, metric: 'p50', ...(goal ? { goal } : {}) })

/** The five aims of issue 5 ("What we aim for"). Throughput is judged at c=32, p50 at c=1. */
export const TARGETS: readonly TargetSpec[] = [
  {
    title: 'Unix socket vs TCP, plain, Express through serve(): throughput >= 1.10x, p50 <= 0.9x',
    checks: [
      rps('throughput, c=32', 'unix-plain-serve-c32', 'tcp-plain-serve-c32', { op: '>=', value: 1.1 }),
      p50('p50, c=1', 'unix-plain-serve-c1', 'tcp-plain-serve-c1', { op: '<=', value: 0.9 }),
    ],
    context: [
      rps('throughput, c=1', 'unix-plain-serve-c1', 'tcp-plain-serve-c1'),
      p50('p50, c=32', 'unix-plain-serve-c32', 'tcp-plain-serve-c32'),
      rps('bare node:http throughput, c=32', 'unix-plain-bare-c32', 'tcp-plain-bare-c32'),
      p50('bare node:http p50, c=1', 'unix-plain-bare-c1', 'tcp-plain-bare-c1'),
    ],
  },
  {
    title: 'Mutual TLS over the socket vs plain HTTP over TCP (today\'s hop), Express through serve(): throughput >= 0.95x',
    checks: [rps('throughput, c=32', 'unix-tls-serve-c32', 'tcp-plain-serve-c32', { op: '>=', value: 0.95 })],
    context: [
      rps('throughput, c=1', 'unix-tls-serve-c1', 'tcp-plain-serve-c1'),
      p50('p50, c=1', 'unix-tls-serve-c1', 'tcp-plain-serve-c1'),
      rps('bare node:http throughput, c=32', 'unix-tls-bare-c32', 'tcp-plain-bare-c32'),
      rps('mTLS over TCP vs plain TCP, serve(), c=32', 'tcp-tls-serve-c32', 'tcp-plain-serve-c32'),
    ],
  },
  {
    title: 'serve() overhead vs the bare Express app on the same socket: throughput >= 0.95x',
    checks: [rps('throughput, c=32', 'unix-plain-serve-c32', 'express-unix-plain-c32', { op: '>=', value: 0.95 })],
    context: [
      rps('throughput, c=1', 'unix-plain-serve-c1', 'express-unix-plain-c1'),
      rps('serve() with requestLog: false, c=32', 'serve-unix-plain-nolog-c32', 'express-unix-plain-c32'),
      { label: 'server CPU per request, c=32', numerator: 'unix-plain-serve-c32', denominator: 'express-unix-plain-c32', metric: 'serverCpuUs' },
    ],
  },
  {
    title: 'Peer check on vs off with keep-alive: throughput >= 0.98x',
    checks: [rps('throughput, c=32', 'unix-plain-serve-c32', 'serve-unix-plain-nopeer-c32', { op: '>=', value: 0.98 })],
    context: [
      rps('throughput, c=1', 'unix-plain-serve-c1', 'serve-unix-plain-nopeer-c1'),
      rps('new connection per request, c=32', 'setup-unix-plain-serve-c32', 'setup-unix-plain-serve-nopeer-c32'),
    ],
  },
  {
    title: 'Our client vs node:http keep-alive agent at concurrency 32: throughput >= 1.5x',
    checks: [rps('throughput, c=32', 'client-ours-c32', 'client-node-http-agent-c32', { op: '>=', value: 1.5 })],
    context: [
      rps('throughput, c=1', 'client-ours-c1', 'client-node-http-agent-c1'),
      rps('raw undici Pool vs agent, c=32', 'client-undici-pool-c32', 'client-node-http-agent-c32'),
      rps('our client vs raw undici Pool, c=32', 'client-ours-c32', 'client-undici-pool-c32'),
    ],
  },
]

function judge(spec: CheckSpec, samples: ReadonlyMap<string, readonly Sample[]>): RatioCheck {
  const a = samples.get(spec.numerator)
  const b = samples.get(spec.denominator)
  const measured = a?.length && b?.length ? pairedRatio(a, b, spec.metric) : undefined
  const ok = measured === undefined || !spec.goal || !Number.isFinite(measured.median)
    ? undefined
    : spec.goal.op === '>=' ? measured.median >= spec.goal.value : measured.median <= spec.goal.value
  return { ...spec, measured, pass: ok }
}

/** Judge every target on the median of the per-round ratios. A MISS is reported, never fatal. */
export function checkTargets(samples: ReadonlyMap<string, readonly Sample[]>): TargetResult[] {
  return TARGETS.map((t, i) => {
    const checks = t.checks.map((c) => judge(c, samples))
    const verdict = checks.some((c) => c.pass === undefined) ? 'n/a' : checks.every((c) => c.pass) ? 'PASS' : 'MISS'
    return { n: i + 1, title: t.title, checks, context: t.context.map((c) => judge(c, samples)), verdict }
  })
}
