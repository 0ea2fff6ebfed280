import { pairedDifference, pairedRatio, type Metric, type Sample, type Spread } from './stats.js'

/**
 * One comparison between two rows, judged against a goal, or shown for context when `goal` is
 * absent: a ratio a / b (the default), or for `difference` a - b in the metric's own unit.
 */
export interface RatioCheck {
  readonly label: string
  readonly numerator: string
  readonly denominator: string
  readonly metric: Metric
  readonly difference?: boolean
  readonly goal?: { readonly op: '>=' | '<='; readonly value: number }
  readonly measured: Spread | undefined
  readonly pass: boolean | undefined
}

export interface TargetResult {
  /** The item of issue 12 the target comes from. */
  readonly n: number
  readonly title: string
  /** Judged comparisons: the target is met when every one is. */
  readonly checks: readonly RatioCheck[]
  /** Context, not judged. */
  readonly context: readonly RatioCheck[]
  readonly verdict: 'PASS' | 'MISS' | 'n/a'
}

type CheckSpec = Omit<RatioCheck, 'measured' | 'pass'>

interface TargetSpec {
  readonly n: number
  readonly title: string
  readonly checks: readonly CheckSpec[]
  readonly context: readonly CheckSpec[]
}

const check = (metric: Metric) => (label: string, numerator: string, denominator: string, goal?: CheckSpec['goal']): CheckSpec => ({
  label,
  numerator,
  denominator,
  metric,
  ...(goal ? { goal } : {}),
})
const rps = check('rps')
const p50 = check('p50')
const serverCpu = check('serverCpuUs')
const hopCpu = check('hopCpuUs')
const clientCpu = check('loadCpuUs')

/**
 * The targets of issue 12 ("What to build and reach"). Throughput is judged at c=32, p50 at c=1.
 * Every judged req/s ratio has the CPU-per-request ratio beside it as context: on a shared
 * machine CPU time per request moves least with other processes' load (see bench/README.md).
 */
export const TARGETS: readonly TargetSpec[] = [
  {
    n: 1,
    title: 'Whole hop over the socket, defaults (request log on, peer check on): >= 1.10x today\'s node:http-agent hop at c=32, >= 1.0x an undici Agent on TCP, p50 <= 0.9x at c=1',
    checks: [
      rps('vs node:http agent hop, req/s c=32', 'hop-ours-c32', 'hop-agent-c32', { op: '>=', value: 1.1 }),
      rps('vs undici Agent hop, req/s c=32', 'hop-ours-c32', 'hop-undici-c32', { op: '>=', value: 1.0 }),
      p50('vs node:http agent hop, p50 c=1', 'hop-ours-c1', 'hop-agent-c1', { op: '<=', value: 0.9 }),
    ],
    context: [
      hopCpu('hop CPU/req (web + services) vs node:http agent hop, c=32', 'hop-ours-c32', 'hop-agent-c32'),
      hopCpu('hop CPU/req vs undici Agent hop, c=32', 'hop-ours-c32', 'hop-undici-c32'),
      rps('vs node:http agent hop, req/s c=1', 'hop-ours-c1', 'hop-agent-c1'),
      rps('undici Agent hop vs node:http agent hop, req/s c=32', 'hop-undici-c32', 'hop-agent-c32'),
    ],
  },
  {
    n: 1,
    title: 'Whole hop over the socket with mutual TLS: >= 0.95x today\'s plain TCP hop (node:http agent) at c=32',
    checks: [rps('vs node:http agent hop, req/s c=32', 'hop-ours-tls-c32', 'hop-agent-c32', { op: '>=', value: 0.95 })],
    context: [
      hopCpu('hop CPU/req vs node:http agent hop, c=32', 'hop-ours-tls-c32', 'hop-agent-c32'),
      p50('vs node:http agent hop, p50 c=1', 'hop-ours-tls-c1', 'hop-agent-c1'),
    ],
  },
  {
    n: 2,
    title: 'Noise floor: two identical serve() servers (same app, same options) measured as a pair; 1.00x is what a perfect method would show',
    checks: [],
    context: [
      serverCpu('A/A server CPU/req c=32', 'serve-unix-plain-twin-c32', 'unix-plain-serve-c32'),
      rps('A/A req/s c=32', 'serve-unix-plain-twin-c32', 'unix-plain-serve-c32'),
      rps('A/A req/s c=1', 'serve-unix-plain-twin-c1', 'unix-plain-serve-c1'),
    ],
  },
  {
    n: 3,
    title: 'serve() next to the bare Express app on the same socket, request log on: >= 0.97x throughput and <= 1.03x server CPU per request (c=32)',
    checks: [
      rps('req/s c=32', 'unix-plain-serve-c32', 'express-unix-plain-c32', { op: '>=', value: 0.97 }),
      serverCpu('server CPU/req c=32', 'unix-plain-serve-c32', 'express-unix-plain-c32', { op: '<=', value: 1.03 }),
    ],
    context: [
      rps('req/s c=1', 'unix-plain-serve-c1', 'express-unix-plain-c1'),
      serverCpu('server CPU/req, requestLog: false, c=32', 'serve-unix-plain-nolog-c32', 'express-unix-plain-c32'),
      serverCpu('server CPU/req, peer check off, c=32', 'serve-unix-plain-nopeer-c32', 'express-unix-plain-c32'),
    ],
  },
  {
    n: 4,
    title: 'Our client next to a raw undici Pool over the socket: >= 0.97x throughput at c=32',
    checks: [rps('req/s c=32', 'client-ours-c32', 'client-undici-pool-c32', { op: '>=', value: 0.97 })],
    context: [
      clientCpu('client CPU/req c=32', 'client-ours-c32', 'client-undici-pool-c32'),
      rps('req/s c=1', 'client-ours-c1', 'client-undici-pool-c1'),
      rps('our client vs node:http agent, req/s c=32', 'client-ours-c32', 'client-node-http-agent-c32'),
    ],
  },
  {
    n: 5,
    title: 'New connections: the peer check adds <= 10 µs per new connection',
    checks: [
      {
        label: 'connection handling, peer check on minus off (median per connection, µs), c=1',
        numerator: 'setup-unix-plain-serve-c1',
        denominator: 'setup-unix-plain-serve-nopeer-c1',
        metric: 'gateUs',
        difference: true,
        goal: { op: '<=', value: 10 },
      },
    ],
    context: [
      { label: 'server CPU/connection, on minus off (µs), c=1', numerator: 'setup-unix-plain-serve-c1', denominator: 'setup-unix-plain-serve-nopeer-c1', metric: 'serverCpuUs', difference: true },
      { label: 'connection handling, on minus off (µs), c=32', numerator: 'setup-unix-plain-serve-c32', denominator: 'setup-unix-plain-serve-nopeer-c32', metric: 'gateUs', difference: true },
      rps('keep-alive req/s, peer check on vs off, c=32', 'unix-plain-serve-c32', 'serve-unix-plain-nopeer-c32'),
    ],
  },
  {
    n: 6,
    title: 'Transport reference (bare node:http): what the socket saves is the ceiling for what the framework can pass on',
    checks: [],
    context: [
      rps('Unix vs TCP, plain, req/s c=32', 'unix-plain-bare-c32', 'tcp-plain-bare-c32'),
      serverCpu('Unix vs TCP, plain, server CPU/req c=32', 'unix-plain-bare-c32', 'tcp-plain-bare-c32'),
      p50('Unix vs TCP, plain, p50 c=1', 'unix-plain-bare-c1', 'tcp-plain-bare-c1'),
      rps('Unix mTLS vs TCP plain, req/s c=32', 'unix-tls-bare-c32', 'tcp-plain-bare-c32'),
      rps('serve(): Unix vs TCP, plain, req/s c=32', 'unix-plain-serve-c32', 'tcp-plain-serve-c32'),
      rps('serve(): Unix mTLS vs TCP plain, req/s c=32', 'unix-tls-serve-c32', 'tcp-plain-serve-c32'),
    ],
  },
]

function judge(spec: CheckSpec, samples: ReadonlyMap<string, readonly Sample[]>): RatioCheck {
  const a = samples.get(spec.numerator)
  const b = samples.get(spec.denominator)
  const measured = a?.length && b?.length ? (spec.difference ? pairedDifference : pairedRatio)(a, b, spec.metric) : undefined
  const ok = measured === undefined || !spec.goal || !Number.isFinite(measured.median)
    ? undefined
    : spec.goal.op === '>=' ? measured.median >= spec.goal.value : measured.median <= spec.goal.value
  return { ...spec, measured, pass: ok }
}

/** Judge every target on the median of the per-round comparisons. A MISS is reported, never fatal. */
export function checkTargets(samples: ReadonlyMap<string, readonly Sample[]>): TargetResult[] {
  return TARGETS.map((t) => {
    const checks = t.checks.map((c) => judge(c, samples))
    const verdict = checks.length === 0 || checks.some((c) => c.pass === undefined) ? 'n/a' : checks.every((c) => c.pass) ? 'PASS' : 'MISS'
    return { n: t.n, title: t.title, checks, context: t.context.map((c) => judge(c, samples)), verdict }
  })
}
