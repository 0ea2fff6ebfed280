import { parseArgs } from 'node:util'

export interface BenchArgs {
  readonly mode: 'full' | 'quick' | 'partial'
  readonly durationMs: number
  readonly warmupMs: number
  readonly rounds: number
  /** Start the child processes this many times, sharing the rounds out over them. */
  readonly lifetimes: number
  /** Run only the rows whose id matches. */
  readonly only: RegExp | undefined
  /** Profile these rows (server child under --cpu-prof) instead of running the benchmark. */
  readonly profile: readonly string[] | undefined
  readonly pin: boolean
  /** Load our packages with tsx (esbuild, keepNames) instead of the TypeScript compiler's output. */
  readonly runner: 'tsc' | 'tsx'
  readonly help: boolean
}

export const DEFAULTS = Object.freeze({
  full: { durationMs: 300, warmupMs: 100, rounds: 9, lifetimes: 3 },
  quick: { durationMs: 400, warmupMs: 150, rounds: 1, lifetimes: 1 },
  profile: { durationMs: 5000, warmupMs: 1000 },
})

export const USAGE = `pnpm bench [-- options]

  --quick            smoke run, about a minute and a half: ${DEFAULTS.quick.rounds} round, ${DEFAULTS.quick.durationMs} ms per row (writes bench/results/quick.*)
  --duration <s>     measured seconds per row and round (default ${DEFAULTS.full.durationMs / 1000})
  --warmup <s>       warm-up seconds before each measurement, not counted (default ${DEFAULTS.full.warmupMs / 1000})
  --rounds <n>       rounds; every round runs every row once, alternating the order (default ${DEFAULTS.full.rounds})
  --lifetimes <n>    start the child processes n times and share the rounds out over them (default ${DEFAULTS.full.lifetimes})
  --only <regex>     run only rows whose id matches (writes bench/results/partial.*)
  --profile <ids>    comma-separated row ids: run each once (${DEFAULTS.profile.durationMs / 1000} s unless --duration) with the
                     server child under node --cpu-prof, and summarise the profile (bench/results/profiles/)
  --no-pin           do not pin server and load generator to separate CPUs with taskset
  --tsx              load our packages through tsx (esbuild with keepNames) instead of compiling them
                     with tsc as the build does; for comparison only
  --help

A full run (no --quick, no --only) writes bench/results/latest.{json,md,svg} and a timestamped copy.`

function positive(name: string, raw: string | undefined, integer: boolean): number | undefined {
  if (raw === undefined) return undefined
  const n = Number(raw)
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got "${raw}"`)
  }
  return n
}

export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  // `pnpm bench -- --quick` hands the "--" through; drop it.
  const args = argv.filter((a) => a !== '--')
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      lifetimes: { type: 'string' },
      only: { type: 'string' },
      profile: { type: 'string' },
      'no-pin': { type: 'boolean', default: false },
      tsx: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  })
  const profile = values.profile?.split(',').map((s) => s.trim()).filter(Boolean)
  const base = values.quick ? DEFAULTS.quick : DEFAULTS.full
  const duration = positive('duration', values.duration, false)
  const warmup = values.warmup === '0' ? 0 : positive('warmup', values.warmup, false)
  return {
    mode: values.quick ? 'quick' : values.only ? 'partial' : 'full',
    durationMs: duration !== undefined ? duration * 1000 : profile ? DEFAULTS.profile.durationMs : base.durationMs,
    warmupMs: warmup !== undefined ? warmup * 1000 : profile ? DEFAULTS.profile.warmupMs : base.warmupMs,
    rounds: positive('rounds', values.rounds, true) ?? base.rounds,
    lifetimes: positive('lifetimes', values.lifetimes, true) ?? (values.only ? 1 : base.lifetimes),
    only: values.only ? new RegExp(values.only) : undefined,
    profile,
    pin: !values['no-pin'],
    runner: values.tsx ? 'tsx' : 'tsc',
    help: values.help,
  }
}
