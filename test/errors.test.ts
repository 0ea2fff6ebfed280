import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { CERTS_ERROR_CODES } from '@naaccord/ipc-certs'
import { PEERCRED_ERROR_CODES } from '@naaccord/ipc-peercred'
import { ERROR_CODES, IpcError, isIpcError, TimeoutError } from '@naaccord/ipc-shared'
import { ROOT } from './helpers.js'

const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
const documented = new Map(
  [...readme.matchAll(/^\| `(IPC_[A-Z_]+)` \| `([A-Za-z]+)` \|/gm)].map((m) => [m[1]!, m[2]!]),
)
const all = { ...ERROR_CODES, ...CERTS_ERROR_CODES, ...PEERCRED_ERROR_CODES } as Record<string, abstract new (...args: never[]) => IpcError>

describe('error codes', () => {
  it.each(Object.entries(all))('%s is documented in the README with its class', (code, cls) => {
    expect(documented.get(code)).toBe(cls.name)
  })

  it('the README documents no code that does not exist', () => {
    expect([...documented.keys()].filter((c) => !(c in all))).toEqual([])
  })

  it('codes are stable properties of instances, and the cause is kept', () => {
    const cause = new Error('ETIMEDOUT')
    const err = new TimeoutError('/run/naaccord/service.sock', 250, 'request', { cause })
    expect(err.code).toBe('IPC_TIMEOUT')
    expect(err.cause).toBe(cause)
    expect(err.message).toContain('/run/naaccord/service.sock')
    expect(err.name).toBe('TimeoutError')
    expect(isIpcError(err, 'IPC_TIMEOUT')).toBe(true)
    expect(isIpcError(err, 'IPC_HTTP_STATUS')).toBe(false)
    expect(String(err)).toMatch(/^IPC_TIMEOUT: /)
  })
})
