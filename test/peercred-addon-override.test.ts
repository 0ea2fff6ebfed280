// NAACCORD_PEERCRED_ADDON is a test hook that swaps the peer check's addon for any .node file:
// serve() says so in its log at start, every time it is in effect.
import { createRequire } from 'node:module'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { serve, type IpcServer } from '@naaccord/ipc-server'
import { memoryLogger, ROOT, tempDir } from './helpers.js'

const ok = (_req: unknown, res: { end(body: string): void }) => res.end('ok')
const MESSAGE = 'NAACCORD_PEERCRED_ADDON is set: the peer check uses this addon file instead of the packaged one (a test hook; never set it in production)'
let server: IpcServer | undefined
let cleanup = () => {}
const saved = process.env.NAACCORD_PEERCRED_ADDON

afterEach(async () => {
  await server?.close()
  server = undefined
  cleanup()
  if (saved === undefined) delete process.env.NAACCORD_PEERCRED_ADDON
  else process.env.NAACCORD_PEERCRED_ADDON = saved
})

describe.skipIf(process.platform !== 'linux')('NAACCORD_PEERCRED_ADDON', () => {
  it('logs a warning naming the addon file at start when set', async () => {
    const t = tempDir()
    cleanup = t.cleanup
    // The addon node-gyp-build picks (a source build, else the prebuilt binary): the same file.
    const addon = createRequire(import.meta.url)('node-gyp-build').path(path.join(ROOT, 'packages', 'peercred')) as string
    process.env.NAACCORD_PEERCRED_ADDON = addon
    const { logger, lines } = memoryLogger()
    server = await serve(ok, { socketPath: path.join(t.dir, 's.sock'), logger, handleSignals: false })
    expect(lines.filter((l) => l.msg === MESSAGE)).toEqual([expect.objectContaining({ level: 40, addon })])
  })

  it('logs nothing of the kind when unset', async () => {
    const t = tempDir()
    cleanup = t.cleanup
    delete process.env.NAACCORD_PEERCRED_ADDON
    const { logger, lines } = memoryLogger()
    server = await serve(ok, { socketPath: path.join(t.dir, 's.sock'), logger, handleSignals: false })
    expect(lines.filter((l) => String(l.msg).includes('NAACCORD_PEERCRED_ADDON'))).toEqual([])
  })
})
