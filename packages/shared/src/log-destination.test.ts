import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { bufferedDestination, type BufferedDestination } from './log-destination.js'

const dirs: string[] = []
const open: BufferedDestination[] = []
afterEach(async () => {
  for (const d of open.splice(0)) {
    if (!d.destroyed) d.end()
    await closed(d)
  }
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

/** Resolves once the destination has closed its file (end() first opens it if need be). */
async function closed(d: BufferedDestination): Promise<void> {
  const started = Date.now()
  while (!d.destroyed && Date.now() - started < 5000) await new Promise((resolve) => setTimeout(resolve, 5))
}

function destination(minLength = 1024): { d: BufferedDestination; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nipc-dest-'))
  dirs.push(dir)
  const file = path.join(dir, 'out.log')
  const d = bufferedDestination(file, { minLength, flushIntervalMs: 60_000 })
  open.push(d)
  return { d, file }
}

const lines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [])
const flushed = (d: BufferedDestination) => new Promise<void>((resolve) => d.flush(() => resolve()))

describe('bufferedDestination', () => {
  it('flush() calls back once every line handed over is in the file, including writes in flight', async () => {
    const { d, file } = destination()
    // Many hand-overs of about 1 KiB: several asynchronous writes in flight or queued at once.
    for (let i = 0; i < 2000; i++) d.write(`{"i":${i},"pad":"${'x'.repeat(100)}"}\n`)
    await flushed(d)
    expect(lines(file)).toHaveLength(2000)
    expect(lines(file).map((l) => (JSON.parse(l) as { i: number }).i)).toEqual(Array.from({ length: 2000 }, (_, i) => i))
  })

  it('flush() with nothing in flight calls back at once', async () => {
    const { d } = destination()
    d.write('{"first":true}\n')
    await flushed(d) // the file is open and the line written
    let called = false
    d.flush(() => (called = true))
    expect(called).toBe(true)
  })

  it('keeps lines in order across flush() and flushSync()', async () => {
    const { d, file } = destination()
    d.write('{"n":1}\n')
    await flushed(d)
    for (let i = 2; i <= 300; i++) d.write(`{"n":${i},"pad":"${'y'.repeat(50)}"}\n`)
    await flushed(d)
    d.write('{"n":301}\n')
    d.flushSync()
    await flushed(d)
    expect(lines(file).map((l) => (JSON.parse(l) as { n: number }).n)).toEqual(Array.from({ length: 301 }, (_, i) => i + 1))
  })

  it('end() writes what it holds, then flush() on the closed destination calls back', async () => {
    const { d, file } = destination()
    d.write('{"last":true}\n')
    d.end()
    await closed(d)
    await flushed(d)
    expect(lines(file)).toEqual(['{"last":true}'])
  })
})
