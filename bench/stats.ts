import type { RowSpec } from './rows.js'
import { baselineId } from './rows.js'

/** One measurement of one row in one round. */
export interface Sample {
  readonly round: number
  readonly rps: number
  /** Milliseconds. */
  readonly p50: number
  readonly p99: number
  readonly mean: number
  readonly completed: number
  /** Requests of the warm-up before the measurement (not counted in any figure). */
  readonly warmupCompleted: number
  readonly errors: number
  readonly firstError: string | undefined
  /** Server process CPU (user + system) per completed request, microseconds. */
  readonly serverCpuUs: number
  /** Load generator CPU per completed request, microseconds (the client's cost in section 3). */
  readonly loadCpuUs: number
  /** Whole-hop rows: the web child's CPU per request (the public web server and its services client); NaN elsewhere. */
  readonly webCpuUs: number
  /**
   * Connection-setup rows on serve() with the peer check on or off: the median time serve() spent
   * in its 'connection' handling per new connection, µs (timed in the server child); NaN elsewhere.
   */
  readonly gateUs: number
  /** Whole-hop rows: web + services CPU per request, what the hop costs the machine; NaN elsewhere. */
  readonly hopCpuUs: number
  /** Connection-setup rows with TLS: the share of handshakes that resumed a session. */
  readonly resumedShare: number | undefined
  /**
   * CPU used by other processes on the machine (and stolen by the hypervisor) during the
   * measurement, as a share of all CPUs; undefined off Linux. High values mean a noisy sample.
   */
  readonly otherCpu: number | undefined
}

export type Metric = 'rps' | 'p50' | 'p99' | 'serverCpuUs' | 'loadCpuUs' | 'webCpuUs' | 'hopCpuUs' | 'gateUs'
export const METRICS: readonly Metric[] = ['rps', 'p50', 'p99', 'serverCpuUs', 'loadCpuUs', 'webCpuUs', 'hopCpuUs', 'gateUs']

/** The median of the rounds and the min-max spread, so noise is visible. */
export interface Spread {
  readonly median: number
  readonly min: number
  readonly max: number
}

export function spread(values: readonly number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN }
  const mid = v.length >> 1
  const median = v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2
  return { median, min: v[0]!, max: v[v.length - 1]! }
}

export interface RowResult {
  readonly spec: RowSpec
  readonly samples: readonly Sample[]
  readonly stats: Readonly<Record<Metric, Spread>>
  /** Ratios to the baseline row at the same concurrency, paired round by round; undefined without a baseline. */
  readonly vsBaseline: Readonly<Record<Metric, Spread>> | undefined
  readonly errors: number
  readonly resumedShare: number | undefined
  /** Median share of the machine used by other processes while this row ran. */
  readonly otherCpu: number | undefined
}

/**
 * The ratio `a / b` of one metric, taken within each round (both rows ran minutes apart at most,
 * alternated), then summarised over rounds.
 */
export function pairedRatio(a: readonly Sample[], b: readonly Sample[], metric: Metric): Spread {
  const byRound = new Map(b.map((s) => [s.round, s[metric]]))
  const ratios: number[] = []
  for (const s of a) {
    const d = byRound.get(s.round)
    if (d !== undefined && d > 0) ratios.push(s[metric] / d)
  }
  return spread(ratios)
}

/** The difference `a - b` of one metric, taken within each round, then summarised over rounds. */
export function pairedDifference(a: readonly Sample[], b: readonly Sample[], metric: Metric): Spread {
  const byRound = new Map(b.map((s) => [s.round, s[metric]]))
  const diffs: number[] = []
  for (const s of a) {
    const d = byRound.get(s.round)
    if (d !== undefined && Number.isFinite(d) && Number.isFinite(s[metric])) diffs.push(s[metric] - d)
  }
  return spread(diffs)
}

function metricsOf(f: (m: Metric) => Spread): Record<Metric, Spread> {
  return Object.fromEntries(METRICS.map((m) => [m, f(m)])) as Record<Metric, Spread>
}

export function summarise(specs: readonly RowSpec[], samples: ReadonlyMap<string, readonly Sample[]>): RowResult[] {
  return specs.map((spec) => {
    const own = samples.get(spec.id) ?? []
    const base = samples.get(baselineId(spec.concurrency))
    const shares = own.map((s) => s.resumedShare).filter((x): x is number => x !== undefined)
    const other = own.map((s) => s.otherCpu).filter((x): x is number => x !== undefined)
    return {
      spec,
      samples: own,
      stats: metricsOf((m) => spread(own.map((s) => s[m]))),
      vsBaseline: base && base.length > 0 ? metricsOf((m) => pairedRatio(own, base, m)) : undefined,
      errors: own.reduce((n, s) => n + s.errors, 0),
      resumedShare: shares.length > 0 ? spread(shares).median : undefined,
      otherCpu: other.length > 0 ? spread(other).median : undefined,
    }
  })
}
