// Chaos scenarios about hostile peers: malformed and oversized requests, smuggling attempts,
// slowloris, stalled TLS handshakes, seeded random bytes; and a connection flood.
import net from 'node:net'
import path from 'node:path'
import { createTestPki } from '@naaccord/ipc-certs'
import { SERVER_DEFAULTS } from '@naaccord/ipc-server'
import { check, fdCount, newClient, rssMb, sleep, startApp, tempDir } from './lib.js'

type Outcome = '4xx' | 'closed' | 'held' | 'other'

/** Send raw bytes on a new connection; classify what the server does within `ms`. */
function poke(target: net.NetConnectOpts, bytes: Buffer | string, ms = 3000): Promise<{ outcome: Outcome; first: string }> {
  return new Promise((resolve) => {
    const sock = net.connect(target)
    let data = ''
    let done = false
    const finish = (outcome: Outcome) => {
      if (done) return
      done = true
      clearTimeout(timer)
      sock.destroy()
      resolve({ outcome, first: data.split('\r\n', 1)[0] ?? '' })
    }
    const timer = setTimeout(() => finish(data ? classify(data) : 'held'), ms)
    const classify = (d: string): Outcome => (/^HTTP\/1\.[01] 4\d\d/.test(d) ? '4xx' : 'other')
    sock.on('connect', () => sock.write(bytes))
    sock.on('data', (d) => {
      data += d.toString('latin1')
      if (data.includes('\r\n\r\n')) finish(classify(data))
    })
    sock.on('error', () => finish(data ? classify(data) : 'closed'))
    sock.on('close', () => finish(data ? classify(data) : 'closed'))
  })
}

/** mulberry32: a small seeded PRNG, so the random inputs are the same every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

async function pool<T>(items: T[], width: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (i < items.length) await fn(items[i++]!)
  }))
}

/** Open `n` connections that do `start` and then nothing; how many are still open after `ms`. */
async function stalled(target: net.NetConnectOpts, n: number, start: (s: net.Socket) => void, trickle: boolean, ms: number): Promise<number> {
  const socks = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<net.Socket>((resolve) => {
        const s = net.connect(target, () => {
          start(s)
          resolve(s)
        })
        s.on('error', () => resolve(s))
      }),
    ),
  )
  const end = Date.now() + ms
  while (Date.now() < end && socks.some((s) => !s.destroyed && !s.readableEnded)) {
    if (trickle) for (const s of socks) if (!s.destroyed && s.writable) s.write('X')
    await sleep(250)
  }
  const open = socks.filter((s) => !s.destroyed && !s.readableEnded).length
  for (const s of socks) s.destroy()
  return open
}

export async function hostileInput(): Promise<void> {
  const S = 'hostile input'
  const { dir, cleanup } = tempDir()
  const sock = path.join(dir, 'run', 's.sock')
  const pki = await createTestPki({ dir: path.join(dir, 'pki') })
  const limits = JSON.stringify({ headersTimeoutMs: 2000, requestTimeoutMs: 5000 })
  // Plain HTTP on the socket for the HTTP cases; a second server with mutual TLS on TCP for the
  // stalled handshakes.
  const app = startApp(sock, { ORDERS_FILE: path.join(dir, 'orders'), CHAOS_LIMITS: limits })
  const tlsApp = startApp(path.join(dir, 'tls', 't.sock'), { ORDERS_FILE: path.join(dir, 'orders'), CHAOS_LIMITS: limits, CHAOS_TLS_DIR: pki.dir })
  try {
    await app.waitLine(/^ready /).catch((e: Error) => Promise.reject(new Error(`plain server: ${e.message}: ${app.lines.join(' | ')}`)))
    const tlsReady = await tlsApp.waitLine(/^ready /).catch((e: Error) => Promise.reject(new Error(`TLS server: ${e.message}: ${tlsApp.lines.join(' | ')}`)))
    const port = Number(tlsReady.split(' ')[3])
    const tlsFd0 = fdCount(tlsApp.pid)
    const unix = { path: sock }
    const client = newClient(sock, { retries: 0 })
    for (let i = 0; i < 50; i++) await client.get('/pid')
    await sleep(500)
    const fd0 = fdCount(app.pid)
    const rss0 = rssMb(app.pid)

    const cases: Array<[string, string | Buffer]> = [
      ['garbage line', 'GARBAGE\r\n\r\n'],
      ['bad version', 'GET / HTTP/9.9\r\nHost: x\r\n\r\n'],
      ['no target', 'GET\r\n\r\n'],
      ['header without colon', 'GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'],
      ['control bytes', Buffer.from([0, 1, 2, 3, 13, 10, 13, 10])],
      ['100 kB request line', `GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`],
      ['1 MiB of headers', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(1024 * 1024)}\r\n\r\n`],
      ['CL + TE smuggling', 'POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['duplicate Content-Length', 'POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
      ['TE obfuscated', 'POST /orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n'],
    ]
    const bad: string[] = []
    for (const [name, bytes] of cases) {
      const r = await poke(unix, bytes)
      if (r.outcome !== '4xx' && r.outcome !== 'closed') bad.push(`${name}: ${r.outcome} ${r.first}`)
    }
    check(S, 'malformed / oversized / smuggling (10 cases)', bad.length === 0 ? '4xx or closed' : bad.join('; '), bad.length === 0, '4xx or close', true)

    const rand = prng(20_260_101)
    const inputs = Array.from({ length: 3000 }, () => {
      const n = 1 + Math.floor(rand() * 512)
      const b = Buffer.alloc(n)
      for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256)
      return Buffer.concat([b, Buffer.from('\r\n\r\n')])
    })
    const tally: Record<Outcome, number> = { '4xx': 0, closed: 0, held: 0, other: 0 }
    const randT = Date.now()
    await pool(inputs, 50, async (b) => {
      tally[(await poke(unix, b, 3000)).outcome]++
    })
    check(S, 'seeded random inputs (3000)', `4xx ${tally['4xx']}, closed ${tally.closed}, held ${tally.held}, other ${tally.other} in ${((Date.now() - randT) / 1000).toFixed(1)} s`, tally.other === 0 && tally.held === 0, 'all 4xx or closed', tally.other > 0)

    const slowOpen = await stalled(unix, 50, (s) => s.write('GET / HTTP/1.1\r\nHost: x\r\nX-Slow: '), true, 8000)
    check(S, 'slowloris (50, headersTimeoutMs 2000): open after 8 s', slowOpen, slowOpen === 0, '0')
    const tlsOpen = await stalled({ host: '127.0.0.1', port }, 200, () => {}, false, 8000)
    check(S, 'stalled TLS handshakes (200): open after 8 s', tlsOpen, tlsOpen === 0, '0')
    await sleep(500)
    const tlsFd1 = fdCount(tlsApp.pid)
    check(S, 'TLS server descriptors (baseline -> after)', `${tlsFd0} -> ${tlsFd1}`, tlsFd1 <= tlsFd0 + 5, 'back to baseline (+5)')

    let good = 'ok'
    try {
      await client.get('/pid')
    } catch (err) {
      good = (err as { code?: string }).code ?? 'RAW'
    }
    check(S, 'server up, next good request', good, good === 'ok' && app.alive, 'ok', true)
    let fd1 = fdCount(app.pid)
    for (let i = 0; i < 40 && fd1 > fd0 + 5; i++) {
      await sleep(250)
      fd1 = fdCount(app.pid)
    }
    const rss1 = rssMb(app.pid)
    check(S, 'descriptors (baseline -> after)', `${fd0} -> ${fd1}`, fd1 <= fd0 + 5, 'back to baseline (+5)')
    check(S, 'RSS MB (baseline -> after)', `${rss0.toFixed(0)} -> ${rss1.toFixed(0)}`, rss1 <= rss0 + 64, '<= baseline + 64')
    await client.close()
  } finally {
    await app.kill('SIGTERM', 5000)
    await tlsApp.kill('SIGTERM', 3000)
    cleanup()
  }
}

export async function connectionFlood(): Promise<void> {
  const S = 'connection flood'
  const has = 'maxConnections' in SERVER_DEFAULTS
  if (!has) {
    check(S, 'beyond maxConnections', 'no maxConnections option on this build', undefined, 'refused fast, clients served')
    const last = (await import('./lib.js')).rows.at(-1)!
    last.result = 'n/a'
    return
  }
  // The option exists: flood past it and check that a real client is still served.
  const { dir, cleanup } = tempDir()
  const sock = path.join(dir, 'run', 's.sock')
  const app = startApp(sock, { ORDERS_FILE: path.join(dir, 'orders'), NAACCORD_MAX_CONNECTIONS: '50' })
  try {
    const line = await app.waitLine(/^(ready|error) /)
    if (!line.startsWith('ready')) {
      check(S, 'beyond maxConnections', `start failed: ${line}`, undefined, 'refused fast, clients served')
      return
    }
    const client = newClient(sock, { connections: 4 })
    await client.get('/pid')
    const held: net.Socket[] = []
    let refusedFast = 0
    const t = Date.now()
    await Promise.all(
      Array.from({ length: 300 }, () =>
        new Promise<void>((resolve) => {
          const s = net.connect({ path: sock })
          held.push(s)
          const t0 = Date.now()
          s.on('close', () => {
            if (Date.now() - t0 < 1000) refusedFast++
            resolve()
          })
          s.on('error', () => {})
          setTimeout(resolve, 1500)
        }),
      ),
    )
    let served = 'ok'
    await client.get('/pid').catch((e: { code?: string }) => (served = e.code ?? 'RAW'))
    for (const s of held) s.destroy()
    await client.close()
    check(S, 'extra connections closed within 1 s', `${refusedFast}/300 in ${Date.now() - t} ms`, refusedFast >= 250, '>= 250/300')
    check(S, 'existing client served during flood', served, served === 'ok', 'ok')
  } finally {
    await app.kill('SIGTERM', 5000)
    cleanup()
  }
}
