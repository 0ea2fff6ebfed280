import { createRequire } from 'node:module'
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
const sameTime = (line: string) => line.replace(/"time":("[^"]*"|\d+)/, '"time":0')

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

// fixedShapeInfo reads pino's internals (pino.symbols) to write the very line logger.info writes.
// These two tests are what makes that safe to keep: the first compares the lines byte for byte
// over the logger configurations it accepts; the second makes every pino upgrade a deliberate
// step (re-run the first, re-measure, then update the version here and in logger.ts).
// The pino version of the comparison and of the measurement in logger.ts (fixedShapeInfo).
const PINO_MEASURED = '10.4.0'

describe('fixedShapeInfo against the installed pino', () => {
  const cases: Array<[string, LoggerOptions]> = [
    ['defaults', {}],
    ['no name, base: null', { name: undefined, base: null }],
    ['custom base', { base: { svc: 'a"b', n: 1 } }],
    ['timestamp: false', { timestamp: false }],
    ['ISO time', { timestamp: pino.stdTimeFunctions.isoTime }],
    ['epoch time', { timestamp: pino.stdTimeFunctions.epochTime }],
    ['level as a label', { formatters: { level: (label: string) => ({ level: label }) } }],
    ['bindings formatter', { formatters: { bindings: (b: Record<string, unknown>) => ({ host: b.hostname }) } }],
    ['messageKey', { messageKey: 'message' }],
    ['crlf', { crlf: true }],
    ['custom levels', { customLevels: { audit: 35 } }],
    ['level debug', { level: 'debug' }],
    ['errorKey', { errorKey: 'e' }],
    ['serializers of other keys', { serializers: { req: (r: unknown) => r } }],
  ]
  it.each(cases)('%s: the same line as logger.info, on a root and on nested children', (_, options) => {
    const root = memory(options)
    for (const logger of [root.logger, root.logger.child({ component: 'ipc-server' }), root.logger.child({ a: 'x"\u2028é' }).child({ b: [1, { c: null }] })]) {
      const line = fixedShapeInfo(logger, KEYS, 'request')
      expect(line).toBeTypeOf('function')
      root.lines.length = 0
      logger.info(record, 'request')
      line!(json)
      expect(root.lines).toHaveLength(2)
      expect(sameTime(root.lines[1]!)).toBe(sameTime(root.lines[0]!))
    }
  })

  it('runs against the pino version it was measured and compared with', () => {
    const { version } = createRequire(import.meta.url)('pino/package.json') as { version: string }
    expect(version, 'a new pino: re-run the comparison above and the measurement in logger.ts, then update PINO_MEASURED').toBe(PINO_MEASURED)
  })
})
