import { pino, type Logger, type LoggerOptions } from 'pino'
import { describe, expect, it } from 'vitest'
import { REDACTED_HEADERS, fixedShapeInfo } from './logger.js'

function memory(options: LoggerOptions = {}): { logger: Logger; lines: string[] } {
  const lines: string[] = []
  const logger = pino({ name: 'ipc-server', ...options }, { write: (line: string) => void lines.push(line) })
  return { logger, lines }
}

const KEYS = ['reqId', 'method', 'path', 'status', 'durationMs', 'aborted', 'peer']
const record = { reqId: 'abc-1', method: 'GET', path: '/a "quoted"\\path\u0001', status: 200, durationMs: 1.25, aborted: true, peer: { uid: 0, gid: 0, pid: 42 } }
const json =
  `,"reqId":"abc-1","method":"GET","path":${JSON.stringify(record.path)},"status":200,"durationMs":1.25,"aborted":true,"peer":${JSON.stringify(record.peer)}`
const sameTime = (line: string) => line.replace(/"time":\d+/, '"time":0')

describe('fixedShapeInfo', () => {
  it('writes byte for byte the line logger.info writes, on a root and on a child logger', () => {
    const redact = { paths: REDACTED_HEADERS.map((h) => `req.headers["${h}"]`), censor: '[redacted]' }
    for (const make of [() => memory({ redact }), () => {
      const m = memory({ redact })
      return { logger: m.logger.child({ component: 'ipc-server' }), lines: m.lines }
    }]) {
      const { logger, lines } = make()
      const line = fixedShapeInfo(logger, KEYS, 'request')
      expect(line).toBeTypeOf('function')
      logger.info(record, 'request')
      line!(json)
      expect(lines).toHaveLength(2)
      expect(sameTime(lines[1]!)).toBe(sameTime(lines[0]!))
    }
  })

  it('follows the level set later', () => {
    const { logger, lines } = memory()
    const line = fixedShapeInfo(logger, KEYS, 'request')!
    logger.level = 'warn'
    line(json)
    expect(lines).toEqual([])
  })

  it('steps aside for loggers that reshape lines', () => {
    const cases: LoggerOptions[] = [
      { mixin: () => ({ x: 1 }) },
      { formatters: { log: (o: Record<string, unknown>) => o } },
      { serializers: { path: (p: string) => p.toUpperCase() } },
      { redact: ['path'] },
      { nestedKey: 'payload' },
      { msgPrefix: '[x] ' },
      { hooks: { logMethod(args, method) { method.apply(this, args) } } },
    ]
    for (const options of cases) expect(fixedShapeInfo(memory(options).logger, KEYS, 'request'), JSON.stringify(Object.keys(options))).toBeUndefined()
  })
})
