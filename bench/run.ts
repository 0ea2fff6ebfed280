// pnpm bench: every transport, client and serve() feature side by side, in one run, as ratios.
// See bench/README.md and `pnpm bench -- --help`.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { createTestPki } from '@naaccord/ipc-certs'
import { renderChart } from './chart.js'
import { parseBenchArgs, USAGE, type BenchArgs } from './cli-args.js'
import { clientDriver } from './clients.js'
import { connectionSetupDriver } from './connection-setup.js'
import type { ClientTls, Driver } from './driver.js'
import { describeEnvironment } from './environment.js'
import { LatencyRecorder } from './latency.js'
import { keepAliveDriver } from './keep-alive.js'
import { pinLoadGenerator, type Pinning } from './pinning.js'
import { summariseProfile, type CpuProfile, type Share } from './profile-summary.js'
import type { Endpoint, EndpointName } from './protocol.js'
import { fmtInt, fmtMs, reportBlocks, toMarkdown, toText, type BenchReport } from './report.js'
import { buildRows, type RowSpec } from './rows.js'
import { currentRunner, reexecWith } from './runner.js'
import { ROOT, startServerChild, type ServerChild } from './server-control.js'
import { summarise, type Sample } from './stats.js'
import { machineCpu } from './system-load.js'
import { checkTargets } from './targets.js'

const RESULTS = path.join(ROOT, 'bench', 'results')

interface Context {
  readonly child: ServerChild
  /** The public web server of the whole-hop rows. */
  readonly web: ServerChild
  readonly endpoint: (name: EndpointName) => Endpoint
  readonly tls: ClientTls
  readonly requestLog: string
  readonly args: BenchArgs
}

type RowDriver = Driver & { resumedShare?: () => number }

function makeDriver(spec: RowSpec, endpoint: Endpoint, tls: ClientTls): RowDriver {
  switch (spec.load.kind) {
    case 'keep-alive':
      return keepAliveDriver(endpoint, tls, spec.concurrency)
    case 'client':
      return clientDriver(spec.load.client, endpoint, spec.concurrency)
    case 'setup':
      return connectionSetupDriver(endpoint, tls, spec.load.handshake ?? 'full', spec.concurrency)
  }
}

/** Warm up, then measure one row once: throughput, latency, and CPU on both sides of the socket. */
async function measure(spec: RowSpec, round: number, ctx: Context, durationMs: number, driver: RowDriver): Promise<Sample> {
  const hop = spec.appears.some((a) => a.section === 'hop')
  const gated = spec.load.kind === 'setup' && (spec.endpoint === 'serve-unix-plain' || spec.endpoint === 'serve-unix-plain-nopeer')
  const warmup = ctx.args.warmupMs > 0 ? await driver.run(ctx.args.warmupMs) : undefined
  // The request log is a real file; keep it from growing for the whole run.
  truncateSync(ctx.requestLog, 0)
  if (gated) await ctx.child.gate(spec.endpoint)
  const latency = new LatencyRecorder()
  const [server0, web0] = await Promise.all([ctx.child.cpuMicros(), ctx.web.cpuMicros()])
  const machine0 = machineCpu()
  const load0 = process.cpuUsage()
  const t0 = performance.now()
  const result = await driver.run(durationMs, latency)
  const load = process.cpuUsage(load0)
  const [server1, web1] = await Promise.all([ctx.child.cpuMicros(), ctx.web.cpuMicros()])
  const machine1 = machineCpu()
  const wallUs = (performance.now() - t0) * 1000
  const oursUs = server1 - server0 + web1 - web0 + load.user + load.system
  const otherCpu =
    machine0 && machine1
      ? Math.max(0, machine1.busyUs - machine0.busyUs - oursUs + machine1.stealUs - machine0.stealUs) / (wallUs * os.cpus().length)
      : undefined
  const gate = gated ? await ctx.child.gate(spec.endpoint) : undefined
  const { p50, p99, mean } = latency.summary()
  const n = Math.max(1, result.completed)
  return {
    round,
    rps: result.elapsedMs > 0 ? (result.completed * 1000) / result.elapsedMs : 0,
    p50,
    p99,
    mean,
    completed: result.completed,
    warmupCompleted: warmup?.completed ?? 0,
    errors: result.errors,
    firstError: result.firstError,
    serverCpuUs: (server1 - server0) / n,
    loadCpuUs: (load.user + load.system) / n,
    webCpuUs: hop ? (web1 - web0) / n : NaN,
    hopCpuUs: hop ? (server1 - server0 + web1 - web0) / n : NaN,
    gateUs: gate?.medianUs ?? NaN,
    resumedShare: spec.tls && spec.load.kind === 'setup' ? driver.resumedShare?.() : undefined,
    otherCpu,
  }
}

/** When other processes take this share of the machine during a measurement, it is measured again. */
const RETRY = Object.freeze({ otherCpuAbove: 0.1, attempts: 3, pauseMs: 300, budgetShare: 0.15 })

/**
 * Measure, and measure again (up to RETRY.attempts, within a run-wide budget) while other
 * processes on the machine took more than RETRY.otherCpuAbove of it; keep the quietest attempt.
 * On a shared machine, bursts of someone else's work otherwise land on random rows.
 */
async function measureQuietly(spec: RowSpec, round: number, ctx: Context, durationMs: number, retries: { left: number; used: number }, driver: RowDriver): Promise<Sample> {
  let best = await measure(spec, round, ctx, durationMs, driver)
  for (let attempt = 1; attempt < RETRY.attempts && (best.otherCpu ?? 0) > RETRY.otherCpuAbove && retries.left > 0; attempt++) {
    retries.left--
    retries.used++
    await sleep(RETRY.pauseMs)
    const again = await measure(spec, round, ctx, durationMs, driver)
    if ((again.otherCpu ?? 0) < (best.otherCpu ?? 0)) best = again
  }
  return best
}

function progress(spec: RowSpec, s: Sample, prefix: string): void {
  const other = s.otherCpu !== undefined && s.otherCpu >= 0.05 ? `  (other processes: ${Math.round(s.otherCpu * 100)}% of the machine)` : ''
  const err = (s.errors > 0 ? `  ${s.errors} errors (${s.firstError})` : '') + other
  console.log(
    `${prefix} ${spec.id.padEnd(36)} ${fmtInt(s.rps).padStart(8)} req/s  p50 ${fmtMs(s.p50).padStart(6)} ms  p99 ${fmtMs(s.p99).padStart(6)} ms  server ${s.serverCpuUs.toFixed(1).padStart(6)} µs/req` +
      (Number.isFinite(s.webCpuUs) ? `  web ${s.webCpuUs.toFixed(1)} µs/req` : '') +
      (Number.isFinite(s.gateUs) ? `  connection handling ${s.gateUs.toFixed(1)} µs` : '') +
      err,
  )
}

async function withServers<T>(args: BenchArgs, pinning: Pinning, cpuProfDir: string | undefined, body: (ctx: Context) => Promise<T>): Promise<T> {
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'nipc-bench-'))
  try {
    const pki = await createTestPki({ dir: path.join(workDir, 'pki') })
    const child = await startServerChild({
      config: { workDir, pki: { ca: pki.ca.certPath, cert: pki.server.certPath, key: pki.server.keyPath } },
      pinning,
      runner: args.runner,
      ...(cpuProfDir ? { cpuProfDir: path.join(cpuProfDir, 'services') } : {}),
    })
    try {
      const upstream = child.endpoints
      const web = await startServerChild({
        web: true,
        config: {
          pki: { ca: pki.ca.certPath, cert: pki.client.certPath, key: pki.client.keyPath },
          upstream: { expressPort: upstream['svc-express-tcp']!.port!, socketPath: upstream['svc-serve-unix']!.socketPath!, tlsSocketPath: upstream['svc-serve-unix-tls']!.socketPath! },
        },
        pinning,
        runner: args.runner,
        ...(cpuProfDir ? { cpuProfDir: path.join(cpuProfDir, 'web') } : {}),
      })
      try {
        const tls: ClientTls = { ca: pki.ca.certPem, cert: pki.client.certPem, key: pki.client.keyPem }
        const endpoint = (name: EndpointName): Endpoint => {
          const e = child.endpoints[name] ?? web.endpoints[name]
          if (!e) throw new Error(`no endpoint ${name}`)
          return e
        }
        return await body({ child, web, endpoint, tls, requestLog: path.join(workDir, 'requests.log'), args })
      } finally {
        await web.stop()
      }
    } finally {
      await child.stop()
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }
}

async function benchmark(args: BenchArgs, pinning: Pinning): Promise<void> {
  const started = performance.now()
  const specs = buildRows().filter((r) => !args.only || args.only.test(r.id))
  if (specs.length === 0) throw new Error(`--only ${args.only} matches no row; ids look like tcp-plain-bare-c1, client-ours-c32`)
  console.log(`naaccord-ipc bench (${args.mode}): ${specs.length} rows x ${args.rounds} round(s), ${args.durationMs} ms + ${args.warmupMs} ms warm-up each`)
  console.log(pinning.note)

  const samples = new Map<string, Sample[]>(specs.map((s) => [s.id, []]))
  const retries = { left: Math.ceil(specs.length * args.rounds * RETRY.budgetShare), used: 0 }
  // The rounds are shared out over `lifetimes` fresh pairs of child processes: what V8 makes of
  // the same code (inlining, feedback, GC timing) differs a little from one process to the next,
  // and a run that samples one process only keeps that process's draw.
  const lifetimes = Math.min(args.lifetimes, args.rounds)
  let round = 0
  for (let life = 0; life < lifetimes; life++) {
    const roundsHere = Math.floor(args.rounds / lifetimes) + (life < args.rounds % lifetimes ? 1 : 0)
    await withServers(args, pinning, undefined, async (ctx) => {
      // One driver per row for the lifetime: its connections (and clients) stay open across
      // rounds, so a measurement never pays for opening them.
      const drivers = new Map<string, RowDriver>()
      const driverOf = (spec: RowSpec): RowDriver => {
        let d = drivers.get(spec.id)
        if (d === undefined) {
          d = makeDriver(spec, ctx.endpoint(spec.endpoint), ctx.tls)
          drivers.set(spec.id, d)
        }
        return d
      }
      try {
        // Two warm-up passes over every row (forward, then backward), so that the first round
        // does not measure the JIT compiling Express or undici (it takes Express about a second)
        // and no row is always the first one measured after them. The rounds' order alternates
        // across lifetimes too: with an odd number of rounds per lifetime, every other lifetime
        // starts with the reversed order.
        console.log(`${lifetimes > 1 ? `processes ${life + 1}/${lifetimes}: ` : ''}warming up (${specs.length} rows)...`)
        for (const spec of [...specs, ...[...specs].reverse()]) await driverOf(spec).run(Math.max(2 * args.warmupMs, 200))
        for (let i = 0; i < roundsHere; i++, round++) {
          // Alternate the order so that drift (thermal, page cache, JIT) does not favour the rows that come first.
          const order = round % 2 === 0 ? specs : [...specs].reverse()
          for (const [j, spec] of order.entries()) {
            const sample = await measureQuietly(spec, round, ctx, args.durationMs, retries, driverOf(spec))
            samples.get(spec.id)!.push(sample)
            progress(spec, sample, `[${round + 1}/${args.rounds} ${String(j + 1).padStart(2)}/${specs.length}]`)
          }
        }
      } finally {
        for (const d of drivers.values()) await d.close()
      }
    })
  }

  const report: BenchReport = {
    environment: describeEnvironment(pinning, ROOT),
    settings: {
      mode: args.mode,
      rounds: args.rounds,
      durationMs: args.durationMs,
      warmupMs: args.warmupMs,
      lifetimes,
      order: `round-robin over all rows, order reversed every other round, rounds shared out over ${lifetimes} start(s) of the child processes; ${retries.used} measurement(s) repeated because other processes took over ${RETRY.otherCpuAbove * 100}% of the machine`,
    },
    runtimeS: (performance.now() - started) / 1000,
    rows: summarise(specs, samples),
    targets: checkTargets(samples),
  }
  const blocks = reportBlocks(report)
  console.log(toText(blocks))

  mkdirSync(RESULTS, { recursive: true })
  const names = args.mode === 'full' ? ['latest', `run-${report.environment.date.replace(/[:.]/g, '-')}`] : [args.mode]
  for (const name of names) {
    writeFileSync(path.join(RESULTS, `${name}.json`), JSON.stringify(report, null, 2) + '\n')
    writeFileSync(path.join(RESULTS, `${name}.md`), toMarkdown(blocks, `${name}.svg`))
    writeFileSync(path.join(RESULTS, `${name}.svg`), renderChart(report))
  }
  console.log(`\nwrote ${names.map((n) => `bench/results/${n}.{json,md,svg}`).join(' and ')} (${Math.round(report.runtimeS)} s)`)
}

function shareTable(title: string, rows: readonly Share[], requests: number): string {
  const perRequest = (ms: number) => `${((ms * 1000) / requests).toFixed(1).padStart(6)} µs/req`
  return [`${title}`, ...rows.map((r) => `  ${(r.share * 100).toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(6)} ms ${perRequest(r.ms)}  ${r.name}`)].join('\n')
}

/** --profile: each row once, the server child under node --cpu-prof; summarise where its CPU went. */
async function profile(args: BenchArgs, pinning: Pinning, ids: readonly string[]): Promise<void> {
  const all = new Map(buildRows().map((r) => [r.id, r]))
  for (const id of ids) {
    const spec = all.get(id)
    if (!spec) throw new Error(`--profile: no row "${id}"; ids: ${[...all.keys()].join(', ')}`)
    const dir = path.join(RESULTS, 'profiles', `${id}-${new Date().toISOString().replace(/[:.]/g, '-')}`)
    mkdirSync(dir, { recursive: true })
    const sample = await withServers(args, pinning, dir, async (ctx) => {
      const driver = makeDriver(spec, ctx.endpoint(spec.endpoint), ctx.tls)
      try {
        return await measure(spec, 0, ctx, args.durationMs, driver)
      } finally {
        await driver.close()
      }
    })
    progress(spec, sample, '[profile]')
    const requests = sample.completed + sample.warmupCompleted
    const hop = spec.appears.some((a) => a.section === 'hop')
    const sections: string[] = []
    // The services process (the server child) always; for whole-hop rows the web app's process too.
    for (const [child, title, cpuUs] of [
      ['services', 'Server CPU profile', sample.serverCpuUs],
      ...(hop ? ([['web', 'Web app (and its services client) CPU profile', sample.webCpuUs]] as const) : []),
    ] as const) {
      const childDir = path.join(dir, child)
      // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread (the loader's thread writes one too).
      const profiles = readdirSync(childDir).filter((f) => f.endsWith('.cpuprofile'))
      const file = profiles.find((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f)) ?? profiles[0]
      if (!file) throw new Error(`no .cpuprofile written in ${childDir}`)
      const summary = summariseProfile(JSON.parse(readFileSync(path.join(childDir, file), 'utf8')) as CpuProfile)
      sections.push(
        [
          `# ${title} of ${id} (${fmtInt(sample.rps)} req/s, ${cpuUs.toFixed(1)} µs CPU per request)`,
          `busy ${summary.busyMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms over the whole process (start-up, warm-up and measurement: ${fmtInt(requests)} requests; µs/req divides by these, so start-up inflates them a little); profile: ${path.relative(ROOT, path.join(childDir, file))}`,
          '',
          shareTable('Charged to the innermost library on the stack (Node core work on behalf of a library counts for that library):', summary.byCaller, requests),
          '',
          shareTable('Self time by package:', summary.selfByPackage, requests),
          '',
          shareTable('Self time by function:', summary.topFunctions, requests),
          '',
        ].join('\n'),
      )
    }
    const text = sections.join('\n')
    writeFileSync(path.join(dir, 'summary.txt'), text)
    console.log(`\n${text}`)
  }
}

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2))
  if (args.help) {
    console.log(USAGE)
    return
  }
  if (currentRunner() === undefined) {
    process.exitCode = await reexecWith(args.runner, ROOT, fileURLToPath(import.meta.url))
    return
  }
  const pinning = pinLoadGenerator(args.pin)
  if (args.profile) await profile(args, pinning, args.profile)
  else await benchmark(args, pinning)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
