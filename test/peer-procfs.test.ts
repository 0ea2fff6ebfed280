import fs from 'node:fs'
import http from 'node:http'
import { syncBuiltinESMExports } from 'node:module'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { serve, type IpcServer, type ServerOptions } from '@naaccord/ipc-server'
import { readProcessStartTime } from '@naaccord/ipc-shared'
import { deferCleanup, memoryLogger, tempDir } from './helpers.js'

// The peer check reads what the allow decision needs (SO_PEERCRED: uid, gid, pid) and nothing
// from procfs: the start time is read on first use of req.peer.startTime, and a refused peer
// costs a procfs read only when its refusal is logged. Counted by wrapping node:fs's sync
// readers (syncBuiltinESMExports makes named ESM imports see the wrapper too).

const defer = deferCleanup()
const procReads: string[] = []
const original = { readFileSync: fs.readFileSync, readlinkSync: fs.readlinkSync }

beforeEach(() => {
  procReads.length = 0
  const record = (file: unknown) => {
    if (typeof file === 'string' && file.startsWith('/proc/')) procReads.push(file)
  }
  fs.readFileSync = function (this: unknown, ...args: Parameters<typeof fs.readFileSync>) {
    record(args[0])
    return original.readFileSync.apply(this, args)
  } as typeof fs.readFileSync
  fs.readlinkSync = function (this: unknown, ...args: Parameters<typeof fs.readlinkSync>) {
    record(args[0])
    return original.readlinkSync.apply(this, args)
  } as typeof fs.readlinkSync
  syncBuiltinESMExports()
})
afterEach(() => {
  fs.readFileSync = original.readFileSync
  fs.readlinkSync = original.readlinkSync
  syncBuiltinESMExports()
})

async function start(handler: http.RequestListener, extra: ServerOptions): Promise<IpcServer> {
  const t = tempDir()
  defer(t.cleanup)
  const ipc = await serve(handler, { socketPath: path.join(t.dir, 's.sock'), logger: false, handleSignals: false, acknowledgePlaintextSocket: true, ...extra })
  defer(() => ipc.close())
  // Start-up reads our own start time for the socket lock; only what connections cause counts.
  procReads.length = 0
  return ipc
}

function get(socketPath: string, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath, path: urlPath, agent: false }, (res) => {
        let body = ''
        res.on('data', (c: Buffer) => (body += c.toString()))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      .on('error', reject)
  })
}

describe('peer check and procfs', () => {
  it('admits a peer without reading procfs, and reads its start time once, on first use', async () => {
    const uid = process.getuid?.() ?? 0
    const ipc = await start(
      (req, res) => {
        const before = procReads.length
        if (req.url === '/start') {
          const first = req.peer?.startTime
          const second = req.peer?.startTime
          res.end(JSON.stringify({ before, first, second, reads: procReads.length - before }))
        } else {
          res.end(JSON.stringify({ before, uid: req.peer?.uid, pid: req.peer?.pid }))
        }
      },
      { allow: { uids: [uid] } },
    )
    const plain = JSON.parse((await get(ipc.socketPath!, '/')).body) as { before: number; uid: number; pid: number }
    expect(plain).toEqual({ before: 0, uid, pid: process.pid })
    const started = readProcessStartTime(process.pid)
    procReads.length = 0
    const lazy = JSON.parse((await get(ipc.socketPath!, '/start')).body) as Record<string, number>
    expect(lazy).toEqual({ before: 0, first: started, second: started, reads: 1 })
    expect(procReads).toEqual([`/proc/${process.pid}/stat`])
  })

  it('refuses a peer without reading procfs unless the refusal is logged', async () => {
    const other = (process.getuid?.() ?? 0) + 12345
    const quiet = await start(() => {}, { allow: { uids: [other] } })
    expect((await get(quiet.socketPath!, '/')).status).toBe(403)
    expect(procReads).toEqual([])

    const { logger, lines } = memoryLogger()
    const logged = await start(() => {}, { allow: { uids: [other] }, logger })
    expect((await get(logged.socketPath!, '/')).status).toBe(403)
    // exe and comm for the log line; never the start time.
    expect(procReads.sort()).toEqual([`/proc/${process.pid}/comm`, `/proc/${process.pid}/exe`])
    expect(lines.some((l) => String(l.msg).startsWith('refused connection'))).toBe(true)
  })
})
