import { once } from 'node:events'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { serve } from '@naaccord/ipc-server'
import { LOG_BUFFER, createLogger } from '@naaccord/ipc-shared/logger'
import { afterEach, describe, expect, it } from 'vitest'
import { exited, spawnTs, tempDir, waitForLine } from './helpers.js'

// The request log is buffered (LOG_BUFFER): these tests hold it to "no line is lost" on every
// normal way a server stops, and to "written within the flush interval" while it runs.

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

function dir(): string {
  const t = tempDir('nipc-log-')
  cleanups.push(t.cleanup)
  return t.dir
}

/** `n` sequential GETs over one keep-alive connection to the socket. */
async function requests(socketPath: string, n: number, urlPath = '/'): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  try {
    for (let i = 0; i < n; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = http.get({ socketPath, path: `${urlPath}?i=${i}`, agent }, (res) => {
          res.resume()
          res.on('end', resolve)
        })
        req.on('error', reject)
      })
    }
  } finally {
    agent.destroy()
  }
}

function requestLines(logFile: string): Array<Record<string, unknown>> {
  if (!fs.existsSync(logFile)) return []
  return fs
    .readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === 'request')
}

async function serverChild(): Promise<{ socketPath: string; logFile: string; child: ReturnType<typeof spawnTs> }> {
  const d = dir()
  const socketPath = path.join(d, 's.sock')
  const logFile = path.join(d, 'requests.log')
  const child = spawnTs('logging-server.ts', [socketPath, logFile], { env: { NAACCORD_LOG_LEVEL: 'info' } })
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  await waitForLine(child, 'ready')
  return { socketPath, logFile, child }
}

describe('request log (buffered)', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`keeps every request line when the server stops on ${signal}`, async () => {
      const { socketPath, logFile, child } = await serverChild()
      const n = 40
      await requests(socketPath, n)
      child.kill(signal)
      await exited(child)
      // serve() closes, then re-raises the signal for the default action: no process.exit.
      expect(child.signalCode).toBe(signal)
      const lines = requestLines(logFile)
      expect(lines).toHaveLength(n)
      expect(lines.map((l) => l.status)).toEqual(Array.from({ length: n }, () => 200))
    })
  }

  it('SIGTERM through serve() also writes out what other loggers hold before the signal ends the process', async () => {
    // The re-raised signal ends the process without 'exit': B (no handleSignals, a logger of its
    // own) would lose the request lines its buffered destination still held.
    const d = dir()
    const [socketA, socketB, logA, logB] = ['a.sock', 'b.sock', 'a.log', 'b.log'].map((f) => path.join(d, f)) as [string, string, string, string]
    const child = spawnTs('two-loggers-server.ts', [socketA, socketB, logA, logB], { env: { NAACCORD_LOG_LEVEL: 'info' } })
    cleanups.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    await waitForLine(child, 'ready')
    const n = 5
    await requests(socketB, n)
    child.kill('SIGTERM')
    await exited(child)
    expect(child.signalCode).toBe('SIGTERM')
    expect(requestLines(logB)).toHaveLength(n)
  })

  it('keeps every request line written before an uncaught exception', async () => {
    const { socketPath, logFile, child } = await serverChild()
    const n = 20
    await requests(socketPath, n)
    await requests(socketPath, 1, '/crash')
    await exited(child)
    expect(child.exitCode).not.toBe(0)
    expect(requestLines(logFile)).toHaveLength(n + 1)
  })

  it('keeps every request line on process.exit() with a pino logger of the user on an asynchronous destination', async () => {
    // pino flushes its own asynchronous destination on 'exit'; the records the request log still
    // holds must have become lines in it before that.
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    const logFile = path.join(d, 'requests.log')
    const child = spawnTs('user-logger-server.ts', [socketPath, logFile, 'async'], { env: { NAACCORD_LOG_LEVEL: 'info' } })
    cleanups.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    await waitForLine(child, 'ready')
    const n = 20
    await requests(socketPath, n)
    await requests(socketPath, 1, '/exit').catch(() => {})
    await exited(child)
    expect(child.exitCode).toBe(0)
    // Every line, each once; not their order: sonic-boom's flushSync at exit may overtake an
    // asynchronous write still in flight (O_APPEND), as it may for any line of such a logger.
    const lines = requestLines(logFile)
    expect(lines.map((l) => l.path).sort()).toEqual([...Array.from({ length: n }, () => '/'), '/exit'])
    expect(new Set(lines.map((l) => l.reqId)).size).toBe(n + 1)
  })

  it('has every request line in the file when close() resolves, with the line shape unchanged', async () => {
    const d = dir()
    const socketPath = path.join(d, 's.sock')
    const logFile = path.join(d, 'requests.log')
    const logger = createLogger({ name: 'ipc-server', destination: logFile, level: 'info' })
    const ipc = await serve((_req, res) => res.end('ok'), { socketPath, logger, handleSignals: false, acknowledgePlaintextSocket: true })
    const n = 7
    await requests(socketPath, n)
    await ipc.close()
    const lines = requestLines(logFile)
    expect(lines).toHaveLength(n)
    const uid = process.getuid?.()
    expect(Object.keys(lines[0]!)).toEqual(['level', 'time', 'pid', 'hostname', 'name', 'component', 'reqId', 'method', 'path', 'status', 'durationMs', 'peer', 'msg'])
    expect(lines[0]).toMatchObject({ level: 30, name: 'ipc-server', method: 'GET', path: '/', status: 200, peer: { uid, gid: process.getgid?.(), pid: process.pid }, msg: 'request' })
    expect(typeof lines[0]!.durationMs).toBe('number')
  })

  it('writes lines smaller than the buffer within the flush interval, without close()', async () => {
    const { socketPath, logFile, child } = await serverChild()
    const n = 3 // about 900 bytes: well below LOG_BUFFER.minLength, so only the periodic flush writes them
    await requests(socketPath, n)
    const started = Date.now()
    // Bounded wait on the file, not a sleep of the interval: a loaded machine may run the timer late.
    while (requestLines(logFile).length < n && Date.now() - started < 5_000) await sleep(LOG_BUFFER.flushIntervalMs / 4)
    expect(requestLines(logFile)).toHaveLength(n)
    // What a SIGKILL would find: the lines are on disk already.
    child.kill('SIGKILL')
    await once(child, 'exit')
    expect(requestLines(logFile)).toHaveLength(n)
  })
})
