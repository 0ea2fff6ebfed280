import { tracingChannel } from 'node:diagnostics_channel'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { pino, type LoggerOptions } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import type { Peer } from './peer.js'
import { flushLogger } from '@naaccord/ipc-shared/logger'
import { createRequestLog, type RequestLog } from './request-log.js'

// The request log keeps each request's facts and formats them later, in batches. These tests
// hold it to: the line is the one logger.info would write, with the request's own time.

const logs: RequestLog[] = []
afterEach(() => {
  for (const l of logs.splice(0)) l.close()
})

function memoryLog(options: LoggerOptions = {}) {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ name: 'ipc-server', ...options }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) })
  const log = createRequestLog(logger)
  logs.push(log)
  return { log, lines, logger }
}

const peer: Peer = { transport: 'unix', uid: 1000, gid: 1000, pid: 42 }

// The request log reads these fields of a finished exchange: plain objects stand in for them.
function exchange(url: string, status = 200, finished = true): [IncomingMessage, ServerResponse] {
  const req = { method: 'GET', url, headers: {}, peer } as unknown as IncomingMessage
  const res = { statusCode: status, writableFinished: finished } as unknown as ServerResponse
  return [req, res]
}

function busyWait(ms: number): void {
  const until = Date.now() + ms
  while (Date.now() < until) {
    // A timer cannot run here: the drain happens only when the test asks for it.
  }
}

describe('createRequestLog', () => {
  it('stamps each line with the time its response closed, not the time the batch was written', () => {
    const { log, lines } = memoryLog()
    const before = Date.now()
    log.record(...exchange('/reports/1?secret=x'), 'id-1', peer, performance.now() - 1.5)
    const after = Date.now()
    busyWait(30)
    log.drain()
    expect(lines).toHaveLength(1)
    const line = lines[0]!
    expect(line.time).toBeGreaterThanOrEqual(before)
    expect(line.time).toBeLessThanOrEqual(after)
    expect(line).toMatchObject({ level: 30, name: 'ipc-server', reqId: 'id-1', method: 'GET', path: '/reports/1', status: 200, peer: { uid: 1000, gid: 1000, pid: 42 }, msg: 'request' })
    expect(line.durationMs).toBeGreaterThanOrEqual(1.5)
    expect(Object.keys(line)).toEqual(['level', 'time', 'pid', 'hostname', 'name', 'reqId', 'method', 'path', 'status', 'durationMs', 'peer', 'msg'])
  })

  it('keeps the time its response closed when pino_asJson has subscribers (the line then goes through logger.info)', () => {
    const channel = tracingChannel('pino_asJson')
    const seen: unknown[] = []
    const subscribers = { start: (m: unknown) => void seen.push(m), end() {}, asyncStart() {}, asyncEnd() {}, error() {} }
    channel.subscribe(subscribers)
    try {
      const { log, lines, logger } = memoryLog()
      const child = logger.child({ part: 'c' })
      const childLog = createRequestLog(child)
      logs.push(childLog)
      const before = Date.now()
      log.record(...exchange('/traced'), 'id-t', peer, performance.now())
      childLog.record(...exchange('/traced-child'), 'id-c', peer, performance.now())
      const after = Date.now()
      busyWait(30)
      log.drain()
      childLog.drain()
      expect(seen.length).toBeGreaterThanOrEqual(2)
      expect(lines.map((l) => [l.reqId, l.part])).toEqual([
        ['id-t', undefined],
        ['id-c', 'c'],
      ])
      for (const line of lines) {
        expect(line.time).toBeGreaterThanOrEqual(before)
        expect(line.time).toBeLessThanOrEqual(after)
      }
      // The logger's own timestamp again afterwards, for its other lines and for the parent's.
      const late = Date.now()
      logger.info('plain')
      child.info('plain child')
      expect(lines.at(-2)!.time).toBeGreaterThanOrEqual(late)
      expect(lines.at(-1)!.time).toBeGreaterThanOrEqual(late)
    } finally {
      channel.unsubscribe(subscribers)
    }
  })

  it('writes a full batch at once, in order, and marks a cut response as aborted', () => {
    const { log, lines } = memoryLog()
    for (let i = 0; i < 63; i++) log.record(...exchange(`/r/${i}`), `id-${i}`, peer, performance.now())
    expect(lines).toHaveLength(0)
    log.record(...exchange('/r/63', 200, false), 'id-63', peer, performance.now())
    expect(lines.map((l) => l.reqId)).toEqual(Array.from({ length: 64 }, (_, i) => `id-${i}`))
    expect(lines[63]!.aborted).toBe(true)
    expect(lines[0]!.aborted).toBeUndefined()
  })

  it('writes at once after close(), and writes nothing below the level set later', () => {
    const { log, lines, logger } = memoryLog()
    log.record(...exchange('/a'), 'id-a', peer, performance.now())
    log.close()
    expect(lines.map((l) => l.reqId)).toEqual(['id-a'])
    log.record(...exchange('/b'), 'id-b', peer, performance.now())
    expect(lines.map((l) => l.reqId)).toEqual(['id-a', 'id-b'])
    logger.level = 'warn'
    log.record(...exchange('/c'), 'id-c', peer, performance.now())
    expect(lines).toHaveLength(2)
  })

  it('does not write, once info is on again, the requests that closed while it was off', () => {
    const { log, lines, logger } = memoryLog()
    logger.level = 'warn'
    log.record(...exchange('/quiet'), 'id-quiet', peer, performance.now())
    logger.level = 'info'
    log.record(...exchange('/loud'), 'id-loud', peer, performance.now())
    log.drain()
    expect(lines.map((l) => l.reqId)).toEqual(['id-loud'])
  })

  it('a stream that throws on one line loses that line only, not the rest of the batch', () => {
    const lines: Array<Record<string, unknown>> = []
    let writes = 0
    const logger = pino({ name: 'ipc-server' }, {
      write: (line: string) => {
        if (++writes === 3) throw new Error('disk hiccup')
        lines.push(JSON.parse(line) as Record<string, unknown>)
      },
    })
    const log = createRequestLog(logger)
    logs.push(log)
    for (let i = 0; i < 10; i++) log.record(...exchange(`/r/${i}`), `id-${i}`, peer, performance.now())
    expect(() => log.drain()).toThrow('disk hiccup')
    log.drain()
    expect(lines.map((l) => l.reqId)).toEqual(['id-0', 'id-1', ...Array.from({ length: 7 }, (_, i) => `id-${i + 3}`)])
    // The slots are reused from the start once everything held is written.
    log.record(...exchange('/after'), 'id-after', peer, performance.now())
    log.drain()
    expect(lines.at(-1)?.reqId).toBe('id-after')
    expect(lines).toHaveLength(10)
  })

  it('flushLogger() (and so the exit hooks) writes every other record held when the stream throws on some', async () => {
    const lines: Array<Record<string, unknown>> = []
    let writes = 0
    const logger = pino({ name: 'ipc-server' }, {
      write: (line: string) => {
        if (++writes % 4 === 0) throw new Error('disk hiccup')
        lines.push(JSON.parse(line) as Record<string, unknown>)
      },
    })
    const log = createRequestLog(logger)
    logs.push(log)
    for (let i = 0; i < 10; i++) log.record(...exchange(`/r/${i}`), `id-${i}`, peer, performance.now())
    await flushLogger(logger)
    expect(lines.map((l) => l.reqId)).toEqual(['id-0', 'id-1', 'id-2', 'id-4', 'id-5', 'id-6', 'id-8', 'id-9'])
  })

  it('a logger that reshapes lines gets one logger.info per request, at once', () => {
    const { log, lines } = memoryLog({ formatters: { log: (o: Record<string, unknown>) => ({ ...o, shaped: true }) } })
    log.record(...exchange('/x'), 'id-x', peer, performance.now())
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ reqId: 'id-x', path: '/x', shaped: true })
  })
})
