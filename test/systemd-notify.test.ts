// serve() and systemd's notify protocol (sd_notify(3)): READY=1 once serving, STATUS=, WATCHDOG=1
// every WATCHDOG_USEC/2, STOPPING=1 at close. The listener is a real datagram socket made by the test.
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { listenNotifySocket, type NotifyListener } from '@naaccord/ipc-peercred'
import { serve, type IpcServer } from '@naaccord/ipc-server'
import { memoryLogger, tempDir } from './helpers.js'

const isLinux = process.platform === 'linux'
const ok = (_req: unknown, res: { end(body: string): void }) => res.end('ok')
const VARS = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'] as const

let dir: string
let cleanup: () => void
let listener: NotifyListener | undefined
let server: IpcServer | undefined
let saved: Record<string, string | undefined>

beforeEach(() => {
  ;({ dir, cleanup } = tempDir('nipc-sd-'))
  saved = Object.fromEntries(VARS.map((v) => [v, process.env[v]]))
})

afterEach(async () => {
  await server?.close()
  server = undefined
  listener?.close()
  listener = undefined
  for (const v of VARS) {
    if (saved[v] === undefined) delete process.env[v]
    else process.env[v] = saved[v]
  }
  cleanup()
})

/** Every datagram that arrives within `ms`. */
async function collect(ms: number): Promise<string[]> {
  const got: string[] = []
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    for (let m = listener!.receive(); m !== null; m = listener!.receive()) got.push(m)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return got
}

/** Waits (bounded) until a datagram matching `pattern` arrives; returns all seen up to it. */
async function until(pattern: RegExp, ms = 5000): Promise<string[]> {
  const got: string[] = []
  const deadline = Date.now() + ms
  for (;;) {
    for (let m = listener!.receive(); m !== null; m = listener!.receive()) {
      got.push(m)
      if (pattern.test(m)) return got
    }
    if (Date.now() > deadline) throw new Error(`no datagram matching ${pattern} within ${ms} ms; got ${JSON.stringify(got)}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

describe.skipIf(!isLinux)('serve() with NOTIFY_SOCKET (systemd Type=notify)', () => {
  it.each([
    ['a path', () => path.join(dir, 'notify.sock')],
    ['an abstract name', () => `@naaccord-sd-${randomBytes(6).toString('hex')}`],
  ])('over %s: READY=1 with STATUS once listening, STOPPING=1 at close', async (_kind, name) => {
    const notifySocket = name()
    listener = listenNotifySocket(notifySocket)
    process.env.NOTIFY_SOCKET = notifySocket
    delete process.env.WATCHDOG_USEC
    const socketPath = path.join(dir, 's.sock')
    server = await serve(ok, { socketPath, logger: false, handleSignals: false })
    // READY is sent before serve() resolves: the datagram is already there.
    expect(listener.receive()).toBe(`READY=1\nSTATUS=serving on unix ${socketPath}`)
    await server.close()
    expect(await until(/^STOPPING=1/)).toEqual(['STOPPING=1\nSTATUS=shutting down: draining connections'])
  })

  it('WATCHDOG=1 every WATCHDOG_USEC/2 while serving, none after close', async () => {
    const notifySocket = `@naaccord-sd-${randomBytes(6).toString('hex')}`
    listener = listenNotifySocket(notifySocket)
    Object.assign(process.env, { NOTIFY_SOCKET: notifySocket, WATCHDOG_USEC: '100000', WATCHDOG_PID: String(process.pid) })
    server = await serve(ok, { socketPath: path.join(dir, 's.sock'), logger: false, handleSignals: false })
    const seen = await until(/^WATCHDOG=1$/)
    expect(seen[0]).toMatch(/^READY=1\n/)
    const more = await until(/^WATCHDOG=1$/)
    expect(more).toEqual(['WATCHDOG=1'])
    await server.close()
    server = undefined
    const after = await collect(250)
    expect(after[0]).toMatch(/^STOPPING=1/)
    expect(after.slice(1)).not.toContain('WATCHDOG=1')
  })

  it('no watchdog pings when WATCHDOG_PID names another process', async () => {
    const notifySocket = `@naaccord-sd-${randomBytes(6).toString('hex')}`
    listener = listenNotifySocket(notifySocket)
    Object.assign(process.env, { NOTIFY_SOCKET: notifySocket, WATCHDOG_USEC: '20000', WATCHDOG_PID: String(process.pid + 1) })
    server = await serve(ok, { socketPath: path.join(dir, 's.sock'), logger: false, handleSignals: false })
    const got = await collect(200)
    expect(got).toHaveLength(1)
    expect(got[0]).toMatch(/^READY=1\n/)
  })

  it('a NOTIFY_SOCKET nobody listens on is a warning, not a failure to start', async () => {
    process.env.NOTIFY_SOCKET = path.join(dir, 'nobody.sock')
    delete process.env.WATCHDOG_USEC
    const { logger, lines } = memoryLogger()
    server = await serve(ok, { socketPath: path.join(dir, 's.sock'), logger, handleSignals: false })
    const warning = lines.find((l) => l.msg === 'sd_notify failed; systemd may not see this state')
    expect(warning).toMatchObject({ level: 40, notifySocket: path.join(dir, 'nobody.sock'), state: 'READY=1' })
  })

  it('without NOTIFY_SOCKET nothing is sent', async () => {
    const notifySocket = path.join(dir, 'notify.sock')
    listener = listenNotifySocket(notifySocket)
    delete process.env.NOTIFY_SOCKET
    server = await serve(ok, { socketPath: path.join(dir, 's.sock'), logger: false, handleSignals: false })
    await server.close()
    expect(await collect(50)).toEqual([])
  })
})
