// What our client adds per request, next to a raw undici Pool on the same socket.
// Run by hand (not a test): pnpm tsx --conditions=@naaccord/source bench/client-overhead.ts [seconds] [concurrency]
//
// A bare node:http server runs in a child process on a Unix socket; this process drives it at
// concurrency c with each way of calling, in alternated rounds, and reports requests/s and this
// process's CPU time per request (the figure noise moves least). Then each per-request step the
// client takes on top of undici is timed alone in a tight loop (ns per call).
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Pool } from 'undici'
import { createClient } from '@naaccord/ipc-client'

const seconds = Number(process.argv[2] ?? 3)
const concurrency = Number(process.argv[3] ?? 32)
const rounds = 3

const dir = mkdtempSync(path.join(os.tmpdir(), 'nipc-bench-'))
const socketPath = path.join(dir, 's.sock')
const serverCode = `
const http = require('node:http')
const body = JSON.stringify({ id: 42, site: 'site-a', status: 'ok' })
http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}).listen(process.argv[1], () => process.stdout.write('ready\\n'))
`
const server = spawn(process.execPath, ['-e', serverCode, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] })
await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()))

const pool = new Pool('http://localhost', { socketPath, connections: 16, pipelining: 1 })
const client = createClient({ socketPath, logger: false, acknowledgePlaintext: true, connections: 16 })

type Way = { name: string; once: () => Promise<unknown> }
const ways: Way[] = [
  {
    name: 'raw undici Pool.request',
    once: async () => (await pool.request({ path: '/reports/42', method: 'GET' })).body.text(),
  },
  {
    name: 'raw undici Pool.request + x-request-id: randomUUID()',
    once: async () => (await pool.request({ path: '/reports/42', method: 'GET', headers: { 'x-request-id': randomUUID() } })).body.text(),
  },
  {
    name: 'raw undici Pool.request + body.json()',
    once: async () => (await pool.request({ path: '/reports/42', method: 'GET', headers: { accept: 'application/json' } })).body.json(),
  },
  {
    name: 'client.dispatcher.request (interceptor only)',
    once: async () => (await client.dispatcher.request({ origin: 'http://localhost', path: '/reports/42', method: 'GET' })).body.text(),
  },
  {
    name: 'client.request (+ headers, request id)',
    once: async () => (await client.request({ path: '/reports/42' })).text(),
  },
  {
    name: 'client.get (+ JSON parse)',
    once: () => client.get('/reports/42'),
  },
]

async function drive(way: Way): Promise<{ rps: number; cpuUsPerReq: number }> {
  let count = 0
  const end = Date.now() + seconds * 1000
  const cpu0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        await way.once()
        count++
      }
    }),
  )
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = process.cpuUsage(cpu0)
  return { rps: count / wallS, cpuUsPerReq: (cpu.user + cpu.system) / count }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

for (const way of ways) for (let i = 0; i < 200; i++) await way.once() // warm up
const results = new Map<string, Array<{ rps: number; cpuUsPerReq: number }>>()
for (let r = 0; r < rounds; r++) {
  for (const way of r % 2 === 0 ? ways : [...ways].reverse()) {
    const res = await drive(way)
    results.set(way.name, [...(results.get(way.name) ?? []), res])
  }
}

const base = median(results.get(ways[0]!.name)!.map((x) => x.rps))
const baseCpu = median(results.get(ways[0]!.name)!.map((x) => x.cpuUsPerReq))
console.log(`\nc=${concurrency}, ${rounds} alternated rounds of ${seconds} s, median (min-max)`)
console.log('| way | req/s | vs raw Pool | client CPU us/req | vs raw Pool |')
console.log('|---|---:|---:|---:|---:|')
for (const way of ways) {
  const xs = results.get(way.name)!
  const rps = xs.map((x) => x.rps)
  const cpu = xs.map((x) => x.cpuUsPerReq)
  console.log(
    `| ${way.name} | ${median(rps).toFixed(0)} (${Math.min(...rps).toFixed(0)}-${Math.max(...rps).toFixed(0)}) | ${(median(rps) / base).toFixed(3)}x | ${median(cpu).toFixed(1)} | ${(median(cpu) / baseCpu).toFixed(3)}x |`,
  )
}

// Each step on its own: what it costs per call, in a tight loop.
function nsPerCall(fn: () => unknown, n = 500_000): number {
  for (let i = 0; i < 10_000; i++) fn()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) fn()
  return Number(process.hrtime.bigint() - t0) / n
}
const defaults = Object.freeze({}) as Record<string, string>
const given = { accept: 'application/json' }
let sink: unknown
console.log('\n| step | ns per call |')
console.log('|---|---:|')
console.log(`| randomUUID() request id | ${nsPerCall(() => (sink = randomUUID())).toFixed(0)} |`)
console.log(`| merge default and call headers | ${nsPerCall(() => (sink = { ...defaults, ...given })).toFixed(0)} |`)
void sink

await client.close()
await pool.close()
server.kill()
rmSync(dir, { recursive: true, force: true })
