import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { isIpcError } from '@naaccord/ipc-shared'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { listenNotifySocket, sdNotify, type NotifyListener } from './sd-notify.js'

const isLinux = process.platform === 'linux'
let dir: string
let listeners: NotifyListener[]

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sd-notify-'))
  listeners = []
})

afterEach(async () => {
  for (const l of listeners) l.close()
  await fs.rm(dir, { recursive: true, force: true })
})

/** The next datagram, waiting at most `ms` (the send is synchronous, so it is normally there at once). */
async function next(listener: NotifyListener, ms = 2000): Promise<string> {
  const deadline = Date.now() + ms
  for (;;) {
    const message = listener.receive()
    if (message !== null) return message
    if (Date.now() > deadline) throw new Error(`no sd_notify datagram within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

function listen(name: string): NotifyListener {
  const listener = listenNotifySocket(name)
  listeners.push(listener)
  return listener
}

describe.skipIf(!isLinux)('sdNotify (sd_notify(3) datagrams from the addon)', () => {
  it('sends to a path NOTIFY_SOCKET, one datagram per call, exact bytes', async () => {
    const socket = path.join(dir, 'notify.sock')
    const listener = listen(socket)
    expect(sdNotify('READY=1\nSTATUS=serving', socket)).toBe(true)
    expect(sdNotify('WATCHDOG=1', socket)).toBe(true)
    expect(await next(listener)).toBe('READY=1\nSTATUS=serving')
    expect(await next(listener)).toBe('WATCHDOG=1')
    expect(listener.receive()).toBeNull()
  })

  it('sends to an abstract NOTIFY_SOCKET written with a leading @ (no file is made)', async () => {
    const name = `@naaccord-test-${randomBytes(6).toString('hex')}`
    const listener = listen(name)
    expect(sdNotify('STATUS=héllo ünïcode', name)).toBe(true)
    expect(await next(listener)).toBe('STATUS=héllo ünïcode')
    await expect(fs.readdir(dir)).resolves.toEqual([])
  })

  it('reads NOTIFY_SOCKET by default, and returns false (sending nothing) when it is unset or empty', async () => {
    const socket = path.join(dir, 'notify.sock')
    const listener = listen(socket)
    const saved = process.env.NOTIFY_SOCKET
    try {
      delete process.env.NOTIFY_SOCKET
      expect(sdNotify('READY=1')).toBe(false)
      process.env.NOTIFY_SOCKET = ''
      expect(sdNotify('READY=1')).toBe(false)
      process.env.NOTIFY_SOCKET = socket
      expect(sdNotify('READY=1')).toBe(true)
    } finally {
      if (saved === undefined) delete process.env.NOTIFY_SOCKET
      else process.env.NOTIFY_SOCKET = saved
    }
    expect(await next(listener)).toBe('READY=1')
    expect(listener.receive()).toBeNull()
  })

  it('throws IPC_SYSTEMD_NOTIFY naming the socket and errno when nothing listens, or the name is not absolute', () => {
    const missing = path.join(dir, 'nobody.sock')
    for (const [name, errno] of [
      [missing, 'ENOENT'],
      [`@naaccord-nobody-${randomBytes(6).toString('hex')}`, 'ECONNREFUSED'],
      ['relative.sock', 'EINVAL'],
    ] as const) {
      let caught: unknown
      try {
        sdNotify('READY=1', name)
      } catch (err) {
        caught = err
      }
      expect(isIpcError(caught, 'IPC_SYSTEMD_NOTIFY' as never)).toBe(true)
      expect((caught as Error).message).toContain(name)
      expect(((caught as Error).cause as { code?: string }).code).toBe(errno)
    }
  })
})
