import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { flockAvailable, tryLockExclusive } from './file-lock.js'

const available = flockAvailable().available
let dir: string | undefined
afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
  dir = undefined
})

describe.skipIf(!available)('tryLockExclusive (flock(2) from the native addon)', () => {
  it('one open file holds it; another is refused without waiting; closing the holder frees it', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nipc-flock-'))
    const file = path.join(dir, 'l')
    const a = fs.openSync(file, 'w')
    const b = fs.openSync(file, 'r')
    expect(tryLockExclusive(a)).toBe(true)
    expect(tryLockExclusive(a)).toBe(true) // the same open file: already ours
    expect(tryLockExclusive(b)).toBe(false)
    fs.closeSync(a)
    expect(tryLockExclusive(b)).toBe(true)
    fs.closeSync(b)
  })

  it('a bad descriptor throws with the errno name as code', () => {
    expect(() => tryLockExclusive(2 ** 30)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'flock' }))
  })
})
