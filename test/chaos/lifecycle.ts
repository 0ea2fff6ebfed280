// Chaos scenarios about one server's life: SIGKILL at many points of serve() and close(), and
// ten servers racing for one path (clean, and on a crashed server's leftovers).
import path from 'node:path'
import { check, HERE, Proc, sleep, startApp, strayFiles, tempDir } from './lib.js'

const KILL_POINTS = 40
const RACERS = 10
const ROUNDS = 20

/** Files a running server may have beside its socket (anything else is stray). */
const RUNNING = ['s.sock', 's.sock.lock', 's.sock.lock.owner']

function serveMs(line: string): number {
  return Number(line.split(' ')[2])
}

export async function killPoints(budgetMs = 50_000): Promise<void> {
  const S = 'SIGKILL in serve()/close()'
  const { dir, cleanup } = tempDir()
  const run = path.join(dir, 'run')
  const sock = path.join(run, 's.sock')
  const env = { ORDERS_FILE: path.join(dir, 'orders') }
  const t0 = Date.now()
  let servePoints = 0
  let closePoints = 0
  let failedStarts = 0
  const failCodes = new Map<string, number>()
  let maxRecoverMs = 0
  const stray = new Set<string>()
  try {
    // Calibrate: how long serve() and close() take here.
    const cal = startApp(sock, env)
    const calServe = serveMs(await cal.waitLine(/^ready /))
    const tc = Date.now()
    await cal.kill('SIGTERM')
    const calClose = Math.max(2, Date.now() - tc)
    const recover = async () => {
      const app = startApp(sock, env)
      const line = await app.waitLine(/^(ready|error) /, 20_000).catch(() => 'error TIMEOUT')
      if (!line.startsWith('ready')) {
        failedStarts++
        const code = line.split(' ')[1] ?? '?'
        failCodes.set(code, (failCodes.get(code) ?? 0) + 1)
        // A lockout must end: wait for the start that works (bounded), so the next point is clean.
        for (let i = 0; i < 30; i++) {
          await sleep(500)
          const again = startApp(sock, env)
          const l = await again.waitLine(/^(ready|error) /, 20_000).catch(() => 'error TIMEOUT')
          if (l.startsWith('ready')) {
            await again.kill('SIGTERM')
            break
          }
        }
        return undefined
      }
      maxRecoverMs = Math.max(maxRecoverMs, serveMs(line))
      for (const f of strayFiles(run, RUNNING)) stray.add(f)
      return app
    }
    for (let i = 0; i < KILL_POINTS && Date.now() - t0 < budgetMs; i++) {
      // A point in serve(): counted from the "mark" line printed just before serve() is called.
      const victim = startApp(sock, env)
      await victim.waitLine(/^mark /).catch(() => {})
      const d = (i / KILL_POINTS) * calServe * 1.5
      if (d >= 1) await sleep(d)
      victim.child.kill('SIGKILL')
      await victim.exit
      servePoints++
      const a = await recover()
      if (!a) continue
      // A point in close(): SIGTERM starts close(), SIGKILL lands somewhere in it.
      a.child.kill('SIGTERM')
      const e = (i / KILL_POINTS) * calClose * 1.5
      if (e >= 1) await sleep(e)
      a.child.kill('SIGKILL')
      await a.exit
      closePoints++
      const b = await recover()
      await b?.kill('SIGTERM')
      for (const f of strayFiles(run)) stray.add(f)
    }
    check(S, 'kill points (serve / close)', `${servePoints} / ${closePoints} (serve ${calServe.toFixed(0)} ms, close ~${calClose} ms)`, servePoints >= 20 && closePoints >= 20, `${KILL_POINTS} each (>= 20 within the time budget)`)
    check(S, 'next start failed', `${failedStarts}${failCodes.size ? ` (${[...failCodes].map(([c, n]) => `${c} ${n}`).join(', ')})` : ''}`, failedStarts === 0, '0', true)
    check(S, 'next serve() ms (max)', maxRecoverMs.toFixed(0), maxRecoverMs < 1000, '< 1000')
    check(S, 'stray files', [...stray].join(', ') || 'none', stray.size === 0, 'none')
  } finally {
    cleanup()
  }
}

function racer(): Proc {
  return new Proc(process.execPath, [path.join(HERE, 'racer.mjs')], { NAACCORD_LOG_LEVEL: 'silent' }, true)
}

export async function startRace(): Promise<void> {
  const S = 'start race (10 servers)'
  const { dir, cleanup } = tempDir()
  const run = path.join(dir, 'run')
  const sock = path.join(run, 's.sock')
  const racers = Array.from({ length: RACERS }, racer)
  const fresh = () => ({ one: 0, rounds: 0, intact: 0, rawLosers: 0, codes: new Set<string>(), winnerCounts: [] as number[], raw: new Set<string>() })
  const result = { clean: fresh(), leftovers: fresh() }
  try {
    await Promise.all(racers.map((r) => r.waitLine(/^idle$/)))
    for (const kind of ['clean', 'leftovers'] as const) {
      const res = result[kind]
      for (let round = 0; round < ROUNDS; round++) {
        if (kind === 'leftovers') {
          // A server that crashes while holding the socket and the lock.
          const victim = racers[round % RACERS]!
          const from = victim.lines.length
          victim.send(`go ${sock}`)
          const l = await victim.waitLine(/^(won|lost)/, 10_000, from)
          if (l.startsWith('won')) {
            victim.send('crash')
            await victim.exit
          }
          const fresh = racer()
          racers[round % RACERS] = fresh
          await fresh.waitLine(/^idle$/)
        }
        const marks = racers.map((r) => r.lines.length)
        for (const r of racers) r.send(`go ${sock}`)
        const lines = await Promise.all(racers.map((r, i) => r.waitLine(/^(won|lost)/, 15_000, marks[i]).catch(() => 'lost TIMEOUT')))
        res.rounds++
        const winners = lines.map((l, i) => (l.startsWith('won') ? i : -1)).filter((i) => i >= 0)
        if (winners.length === 1) res.one++
        else res.winnerCounts.push(winners.length)
        for (const l of lines) {
          if (l.startsWith('lost RAW') || l === 'lost TIMEOUT') {
            res.rawLosers++
            res.raw.add(l.slice(5, 60))
          }
          else if (l.startsWith('lost ')) res.codes.add(l.split(' ')[1]!)
        }
        if (winners.length === 0) continue
        // The lock still protects the winner: one more start must lose with IPC_SOCKET_IN_USE.
        const prober = racers[(winners[0]! + 1) % RACERS]!
        const from = prober.lines.length
        prober.send(`go ${sock}`)
        const probe = await prober.waitLine(/^(won|lost)/, 10_000, from).catch(() => 'lost TIMEOUT')
        if (probe === 'lost IPC_SOCKET_IN_USE') res.intact++
        else if (probe.startsWith('won')) {
          prober.send('close')
          await prober.waitLine(/^closed$/, 10_000, from)
        }
        for (const w of winners) {
          const f = racers[w]!.lines.length
          racers[w]!.send('close')
          await racers[w]!.waitLine(/^closed$/, 10_000, f).catch(() => {})
        }
      }
      const odd = res.winnerCounts.length ? ` (other rounds: ${res.winnerCounts.join(', ')} winners)` : ''
      check(S, `${kind}: exactly one winner`, `${res.one}/${res.rounds}${odd}`, res.one === res.rounds, `${ROUNDS}/${ROUNDS}`, true)
      check(S, `${kind}: lock intact after`, `${res.intact}/${res.rounds}`, res.intact === res.rounds, `${ROUNDS}/${ROUNDS}`)
      check(S, `${kind}: losers without an IpcError code`, `${res.rawLosers} (codes: ${[...res.codes].join(', ')}${res.raw.size ? `; raw: ${[...res.raw].join(' | ')}` : ''})`, res.rawLosers === 0, '0')
    }
  } finally {
    for (const r of racers) await r.kill('SIGKILL')
    cleanup()
  }
}
