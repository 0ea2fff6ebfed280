// The load generator for `pnpm bench:ways`, in its own process (inside namespace b for the
// two-host ways): `ways-driver.ts <json createClient() options>`. One client for the life of the
// process. Reads commands from stdin, one a line: `run <concurrency> <ms>` runs that many workers
// calling GET / back to back for that long and prints `result {"requests","seconds","p50Ms","p99Ms","errors"}`;
// `quit` (or stdin closing) destroys the client and exits. Prints "ready" after a warm-up call.
import { createInterface } from 'node:readline'
import { createClient, type ClientOptions } from '@naaccord/ipc-client'

const client = createClient({ logger: false, retries: 0, ...(JSON.parse(process.argv[2]!) as ClientOptions) })

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

async function run(concurrency: number, ms: number) {
  const latencies: number[] = []
  let errors = 0
  const start = process.hrtime.bigint()
  const end = Date.now() + ms
  const worker = async () => {
    // Bounded by time, and by count as a second guard.
    for (let i = 0; i < 1_000_000 && Date.now() < end; i++) {
      const t0 = process.hrtime.bigint()
      try {
        await client.get('/')
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6)
      } catch {
        errors++
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  latencies.sort((a, b) => a - b)
  return { requests: latencies.length, seconds, p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99), errors }
}

try {
  for (let i = 0; i < 20; i++) await client.get('/')
  process.stdout.write('ready\n')
} catch (err) {
  const e = err as { code?: string; message?: string }
  process.stdout.write(`error ${e.code} ${e.message}\n`)
  process.exit(3)
}
const lines = createInterface({ input: process.stdin })
for await (const line of lines) {
  const [cmd, c, ms] = line.trim().split(' ')
  if (cmd === 'quit') break
  if (cmd === 'run') process.stdout.write(`result ${JSON.stringify(await run(Number(c), Number(ms)))}\n`)
}
await client.destroy()
process.exit(0)
