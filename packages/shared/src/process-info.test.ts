import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { describeProcess, flockHolders, parseProcLocks, parseProcStat, readProcessStartTime } from './process-info.js'

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

describe('parseProcLocks (proc(5) /proc/locks)', () => {
  it('reads holders and waiters, major and minor in hex, and skips lines without an inode', () => {
    const text = [
      '1: FLOCK  ADVISORY  WRITE 4121 fe:01:2147367 0 EOF',
      '1: -> FLOCK  ADVISORY  WRITE 4200 fe:01:2147367 0 EOF',
      '2: POSIX  ADVISORY  READ 77 103:0a:18446744073709551615 0 EOF',
      '3: OFDLCK ADVISORY  WRITE -1 00:1a:12 0 EOF',
      '4: LEASE  ACTIVE    READ 9 <none>:0 0 EOF',
      '',
    ].join('\n')
    expect(parseProcLocks(text)).toEqual([
      { kind: 'FLOCK', type: 'WRITE', pid: 4121, major: 254, minor: 1, ino: 2147367n, blocked: false },
      { kind: 'FLOCK', type: 'WRITE', pid: 4200, major: 254, minor: 1, ino: 2147367n, blocked: true },
      { kind: 'POSIX', type: 'READ', pid: 77, major: 259, minor: 10, ino: 18446744073709551615n, blocked: false },
      { kind: 'OFDLCK', type: 'WRITE', pid: -1, major: 0, minor: 26, ino: 12n, blocked: false },
    ])
  })
})

describe.skipIf(!isLinux)('flockHolders', () => {
  it('names the process holding an flock on the file, and nobody for a file no one locks', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'flock-'))
    const file = path.join(dir, 'x.lock')
    closeSync(openSync(file, 'w'))
    const st = statSync(file, { bigint: true })
    expect(flockHolders(st.dev, st.ino)).toEqual([])
    // flock(1) holds the lock while its command runs.
    const holder = spawn('flock', ['-x', file, 'sleep', '30'], { stdio: 'ignore' })
    try {
      const until = Date.now() + 5000
      while ((flockHolders(st.dev, st.ino) ?? []).length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
      expect(flockHolders(st.dev, st.ino)).toEqual([holder.pid])
    } finally {
      holder.kill('SIGKILL')
      await once(holder, 'exit')
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
