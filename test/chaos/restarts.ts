// Chaos scenarios about restarts: rolling reloads under the supervisor, plain restarts, crash
// loops (supervised and not), and a new server starting while the old one drains.
import path from 'node:path'
import { check, codes, newClient, ordersReport, runLoad, sleep, startApp, startSupervisor, strayFiles, tempDir, type Proc } from './lib.js'

const RUNS = 20
const CALLERS = 8

/** Wait for the n-th log line with this message from the supervisor. */
async function waitCount(p: Proc, msg: string, n: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (p.count(new RegExp(`"msg":"${msg}"`)) >= n) return true
    if (!p.alive) return false
    await sleep(20)
  }
  return false
}

export async function rollingReloads(): Promise<void> {
  const S = 'rolling reloads (supervised)'
  const { dir, cleanup } = tempDir()
  const sock = path.join(dir, 'run', 's.sock')
  const orders = path.join(dir, 'orders')
  const sup = startSupervisor(sock, [], { ORDERS_FILE: orders })
  try {
    if (!(await waitCount(sup, 'app ready', 1, 20_000))) throw new Error('supervisor did not start')
    const client = newClient(sock)
    const load = runLoad(client, CALLERS, 120_000)
    let done = 0
    const t0 = Date.now()
    for (let i = 1; i <= RUNS; i++) {
      await sleep(150)
      sup.child.kill('SIGHUP')
      if (!(await waitCount(sup, 'reloaded', i, 20_000))) break
      done = i
    }
    const r = await load.stop()
    await client.close()
    const o = ordersReport(orders, r)
    check(S, 'reloads completed', `${done}/${RUNS} in ${((Date.now() - t0) / 1000).toFixed(1)} s`, done === RUNS, `${RUNS}/${RUNS}`)
    check(S, 'GETs failed', `${r.getFailures}/${r.gets}${codes(r.failureCodes)}`, r.getFailures === 0, '0')
    check(S, 'POSTs failed', `${r.postFailures}/${r.posts}`, r.postFailures === 0, '0', true)
    check(S, 'failed POSTs that ran anyway', o.failedButExecuted, undefined, 'counted')
    check(S, 'POSTs executed twice', o.duplicates, o.duplicates === 0, '0', true)
    check(S, 'answered POSTs not executed', o.okMissing, o.okMissing === 0, '0', true)
    check(S, 'max latency ms', r.maxLatencyMs.toFixed(0), undefined, 'reported')
  } finally {
    await sup.kill('SIGTERM')
    cleanup()
  }
}

export async function plainRestarts(): Promise<void> {
  const S = 'plain restarts (SIGTERM, start)'
  const { dir, cleanup } = tempDir()
  const sock = path.join(dir, 'run', 's.sock')
  const orders = path.join(dir, 'orders')
  let app: Proc = startApp(sock, { ORDERS_FILE: orders })
  try {
    await app.waitLine(/^ready /)
    const client = newClient(sock) // the client's defaults: the retry policy under test
    const load = runLoad(client, CALLERS, 180_000)
    let done = 0
    const gaps: number[] = []
    for (let i = 0; i < RUNS; i++) {
      await sleep(150)
      const t = Date.now()
      await app.kill('SIGTERM')
      app = startApp(sock, { ORDERS_FILE: orders })
      const line = await app.waitLine(/^(ready|error) /, 20_000).catch((e: Error) => `error TIMEOUT ${e.message}`)
      if (!line.startsWith('ready')) {
        // Started before the old one released the socket: try once more after a pause.
        await sleep(500)
        app = startApp(sock, { ORDERS_FILE: orders })
        if (!(await app.waitLine(/^ready /, 20_000).then(() => true, () => false))) break
      }
      gaps.push(Date.now() - t)
      done++
    }
    const r = await load.stop()
    await client.close()
    const o = ordersReport(orders, r)
    check(S, 'restarts', `${done}/${RUNS}`, done === RUNS, `${RUNS}/${RUNS}`)
    check(S, 'stop-to-ready ms (max)', Math.max(...gaps), undefined, 'reported')
    check(S, 'GETs failed (client defaults)', `${r.getFailures}/${r.gets}${codes(r.failureCodes)}`, r.getFailures === 0, '0')
    check(S, 'POSTs failed', `${r.postFailures}/${r.posts}`, undefined, 'counted')
    check(S, 'failed POSTs that ran anyway', o.failedButExecuted, undefined, 'counted')
    check(S, 'POSTs executed twice (replayed)', o.duplicates, o.duplicates === 0, '0', true)
  } finally {
    await app.kill('SIGTERM')
    cleanup()
  }
}

export async function crashLoopSupervised(): Promise<void> {
  const S = 'crash loop (supervised)'
  const { dir, cleanup } = tempDir()
  const sock = path.join(dir, 'run', 's.sock')
  const orders = path.join(dir, 'orders')
  // A short backoff cap: 20 crashes in a row would otherwise reach the 5 s default cap.
  const sup = startSupervisor(sock, ['--restart-delay', '100', '--restart-delay-max', '800'], { ORDERS_FILE: orders })
  try {
    if (!(await waitCount(sup, 'app ready', 1, 20_000))) throw new Error('supervisor did not start')
    const client = newClient(sock)
    const load = runLoad(client, CALLERS, 120_000)
    let done = 0
    for (let i = 1; i <= RUNS; i++) {
      await sleep(100)
      const res = await client.get<{ pid: number }>('/pid', { timeoutMs: 20_000 }).catch(() => undefined)
      if (!res) continue
      process.kill(res.pid, 'SIGKILL')
      if (!(await waitCount(sup, 'app restarted and ready', i, 20_000))) break
      done = i
    }
    const r = await load.stop()
    await client.close()
    const o = ordersReport(orders, r)
    check(S, 'SIGKILLs recovered', `${done}/${RUNS}`, done === RUNS, `${RUNS}/${RUNS}`, true)
    check(S, 'GETs failed', `${r.getFailures}/${r.gets}${codes(r.failureCodes)}`, undefined, 'counted')
    check(S, 'POSTs failed (cut in flight)', `${r.postFailures}/${r.posts}`, undefined, 'counted')
    check(S, 'POSTs executed twice', o.duplicates, o.duplicates === 0, '0', true)
    check(S, 'max latency ms', r.maxLatencyMs.toFixed(0), r.maxLatencyMs < 5_000, '< 5000 (bounded)')
  } finally {
    await sup.kill('SIGTERM')
    cleanup()
  }
}

export async function crashLoopUnsupervised(): Promise<void> {
  const S = 'crash loop (unsupervised)'
  const { dir, cleanup } = tempDir()
  const sock = path.join(dir, 'run', 's.sock')
  let app: Proc = startApp(sock, { ORDERS_FILE: path.join(dir, 'orders') })
  try {
    await app.waitLine(/^ready /)
    let recovered = 0
    let maxServe = 0
    for (let i = 0; i < RUNS; i++) {
      await app.kill('SIGKILL')
      app = startApp(sock, { ORDERS_FILE: path.join(dir, 'orders') })
      const line = await app.waitLine(/^(ready|error) /, 20_000).catch(() => 'error TIMEOUT')
      if (line.startsWith('ready')) {
        recovered++
        maxServe = Math.max(maxServe, Number(line.split(' ')[2]))
      }
      if (!app.alive) break
    }
    check(S, 'stale socket recovered', `${recovered}/${RUNS}`, recovered === RUNS, `${RUNS}/${RUNS}`, true)
    check(S, 'serve() ms after a crash (max)', maxServe.toFixed(0), maxServe < 1000, '< 1000')
  } finally {
    await app.kill('SIGTERM')
    check(S, 'stray files after clean stop', strayFiles(path.join(dir, 'run')).join(',') || 'none', strayFiles(path.join(dir, 'run')).length === 0, 'none')
    cleanup()
  }
}

export async function overlap(): Promise<void> {
  const S = 'overlap (new start while old drains)'
  const { dir, cleanup } = tempDir()
  const sock = path.join(dir, 'run', 's.sock')
  const old = startApp(sock, { ORDERS_FILE: path.join(dir, 'orders'), CHAOS_SHUTDOWN_MS: '5000' })
  let next: Proc | undefined
  try {
    await old.waitLine(/^ready /)
    const client = newClient(sock, { retries: 0 })
    const slow = client.get('/slow?ms=2500', { timeoutMs: 10_000 }).then(() => 'ok', (e: { code?: string }) => e.code ?? 'RAW')
    await sleep(200)
    old.child.kill('SIGTERM')
    await sleep(100)
    const t = Date.now()
    let started = -1
    let lastError = ''
    for (let attempt = 0; attempt < 100 && Date.now() - t < 8000; attempt++) {
      next = startApp(sock, { ORDERS_FILE: path.join(dir, 'orders') })
      const line = await next.waitLine(/^(ready|error) /, 10_000).catch(() => 'error TIMEOUT')
      if (line.startsWith('ready')) {
        started = Date.now() - t
        break
      }
      lastError = line.split(' ')[1] ?? ''
      await next.exit
      next = undefined
    }
    const inFlight = await slow
    await client.close()
    check(S, 'successor serving after ms', started < 0 ? `never (${lastError})` : started, started >= 0 && started < 1000, '< 1000 (at once)')
    check(S, 'in-flight request on the old one', inFlight, inFlight === 'ok', 'ok')
  } finally {
    await old.kill('SIGTERM')
    await next?.kill('SIGTERM')
    cleanup()
  }
}
