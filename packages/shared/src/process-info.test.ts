import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { describeProcess, parseProcStat, readProcessStartTime } from './process-info.js'

const isLinux = process.platform === 'linux'
let children: ChildProcess[]

beforeEach(() => {
  children = []
})

afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

describe('parseProcStat (proc(5) /proc/<pid>/stat)', () => {
  const tail = '1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 9001 123 456'

  it('finds starttime (field 22) after the LAST ")", whatever comm contains', () => {
    expect(parseProcStat(`42 (node) S ${tail}\n`)).toEqual({ pid: 42, comm: 'node', state: 'S', startTime: 9001 })
    expect(parseProcStat(`42 (a) (b c)) R ${tail}`)).toEqual({ pid: 42, comm: 'a) (b c)', state: 'R', startTime: 9001 })
    expect(parseProcStat(`42 (x 1 2 3 4) S ${tail}`)?.startTime).toBe(9001)
    expect(parseProcStat(`42 () S ${tail}`)?.comm).toBe('')
  })

  it('returns undefined for text of the wrong shape', () => {
    expect(parseProcStat('')).toBeUndefined()
    expect(parseProcStat('42 node S 1 2 3')).toBeUndefined()
    expect(parseProcStat('42 (node) S 1 2 3')).toBeUndefined()
    expect(parseProcStat(`x (node) S ${tail}`)).toBeUndefined()
    expect(parseProcStat(`42 (node) S ${tail.replace('9001', 'later')}`)).toBeUndefined()
  })
})

describe('readProcessStartTime', () => {
  it.skipIf(!isLinux)('reads a number for this process, stable across reads', () => {
    const started = readProcessStartTime(process.pid)
    expect(typeof started).toBe('number')
    expect(readProcessStartTime(process.pid)).toBe(started)
  })

  it.skipIf(!isLinux)('reads a live process whose comm holds spaces and parentheses', async () => {
    const title = 'a) (b c'
    const child = spawn(process.execPath, ['-e', `process.title = ${JSON.stringify(title)}; console.log('ready'); setInterval(() => {}, 1000)`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    children.push(child)
    await once(child.stdout!, 'data')
    const pid = child.pid!
    // libuv sets comm with prctl(PR_SET_NAME) when process.title is assigned.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    expect(parseProcStat(stat)?.comm).toBe(title)
    expect(describeProcess(pid).comm).toBe(title)
    const started = readProcessStartTime(pid)
    expect(typeof started).toBe('number')
    expect(started).toBeGreaterThanOrEqual(readProcessStartTime(process.pid)!)
  })

  it('returns undefined for no such process and for values that are not pids', () => {
    expect(readProcessStartTime(2 ** 31 - 1)).toBeUndefined()
    for (const pid of [0, -1, 1.5, Number.NaN]) expect(readProcessStartTime(pid)).toBeUndefined()
  })
})

describe('describeProcess', () => {
  it.skipIf(!isLinux)('names this process: exe ends with node, comm is a string', () => {
    const facts = describeProcess(process.pid)
    expect(facts.exe).toMatch(/node$/)
    expect(typeof facts.comm).toBe('string')
  })

  it('never throws: undefined fields for a missing process or a pid that is not one', () => {
    for (const pid of [2 ** 31 - 1, 0, -1, Number.NaN]) {
      expect(describeProcess(pid)).toEqual({ exe: undefined, comm: undefined })
    }
  })
})
