import { pino, type Logger, type LoggerOptions } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { WEAKENED_WARNING_CODE, warnWhateverLevel } from './forced-warning.js'
import { resolveLogger } from './logger.js'

function memory(options: LoggerOptions<string, boolean>): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ name: 'ipc-server', ...options }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }) as unknown as Logger
  return { logger, lines }
}

const warnings: Array<Error & { code?: string; detail?: string }> = []
const onWarning = (w: Error & { code?: string }) => void warnings.push(w)
process.on('warning', onWarning)
afterEach(() => void warnings.splice(0))
const tick = () => new Promise((r) => setImmediate(r))

describe('warnWhateverLevel', () => {
  it.each(['error', 'fatal', 'silent', 'warn', 'debug'])('a pino logger at level %s writes the line at warn, with its bindings, and leaves its own level alone', async (level) => {
    const { logger, lines } = memory({ level })
    const child = logger.child({ component: 'ipc-server' })
    warnWhateverLevel(child, { setting: 'socketMode' }, 'security weakened: socketMode')
    child.warn('an ordinary warning')
    expect(lines[0]).toMatchObject({ level: 40, name: 'ipc-server', component: 'ipc-server', setting: 'socketMode', msg: 'security weakened: socketMode' })
    expect(lines.length).toBe(['warn', 'debug'].includes(level) ? 2 : 1)
    expect(child.level).toBe(level)
    await tick()
    expect(warnings.filter((w) => w.code === WEAKENED_WARNING_CODE)).toEqual([])
  })

  it('logger: false is said as a process warning, code IPC_SECURITY_WEAKENED, and nothing is written to stdout', async () => {
    warnWhateverLevel(resolveLogger(false, 'ipc-server'), { setting: 'allow' }, 'security weakened: allow')
    await tick()
    expect(warnings).toEqual([expect.objectContaining({ name: 'SecurityWarning', code: WEAKENED_WARNING_CODE, message: 'security weakened: allow', detail: '{"setting":"allow"}' })])
  })

  it('a logger without a warn level is said as a process warning', async () => {
    const { logger, lines } = memory({ level: 'only', customLevels: { only: 35 }, useOnlyCustomLevels: true })
    warnWhateverLevel(logger, {}, 'security weakened: x')
    await tick()
    expect(lines).toEqual([])
    expect(warnings.map((w) => w.code)).toEqual([WEAKENED_WARNING_CODE])
  })
})
