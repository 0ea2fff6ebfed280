// NAACCORD_PEERCRED_ADDON is a test hook that swaps the peer check's addon for any .node file:
// serve()'s start-up security report names it as a weakening, every time it is in effect (and
// test/security-report.test.ts checks that a log level of "error" does not hide it).
import { createRequire } from 'node:module'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { serve } from '@naaccord/ipc-server'
import { deferCleanup, exited, memoryLogger, ROOT, spawnTs, tempDir, waitForLine } from './helpers.js'

const defer = deferCleanup()
const ok = (_req: unknown, res: { end(body: string): void }) => res.end('ok')
// The addon node-gyp-build picks (a source build, else the prebuilt binary): the same file.
const addon = createRequire(import.meta.url)('node-gyp-build').path(path.join(ROOT, 'packages', 'peercred')) as string

function socketPath(): string {
  const t = tempDir()
  defer(t.cleanup)
  return path.join(t.dir, 's.sock')
}

describe.skipIf(process.platform !== 'linux')('NAACCORD_PEERCRED_ADDON', () => {
  it('is reported at every start while the addon loaded from it is in use, even once the variable is unset', async () => {
    // This file runs in its own process: the addon is first loaded here, from the variable.
    const saved = process.env.NAACCORD_PEERCRED_ADDON
    defer(() => (saved === undefined ? delete process.env.NAACCORD_PEERCRED_ADDON : (process.env.NAACCORD_PEERCRED_ADDON = saved)))
    process.env.NAACCORD_PEERCRED_ADDON = addon
    for (const step of ['set', 'unset afterwards'] as const) {
      if (step !== 'set') delete process.env.NAACCORD_PEERCRED_ADDON
      const { logger, lines } = memoryLogger()
      const ipc = await serve(ok, { socketPath: socketPath(), logger, handleSignals: false, acknowledgePlaintextSocket: true })
      await ipc.close()
      expect(lines.filter((l) => l.level === 40), step).toEqual([
        expect.objectContaining({ setting: 'peerCredentialsAddon', value: addon, source: 'env:NAACCORD_PEERCRED_ADDON', msg: expect.stringContaining(`peerCredentialsAddon = ${addon} (from env:NAACCORD_PEERCRED_ADDON)`) }),
      ])
    }
  })

  it('reports the packaged addon, and warns of nothing of the kind, when never set', async () => {
    const env = { NAACCORD_PEERCRED_ADDON: '', NAACCORD_LOG_LEVEL: 'info' }
    const child = spawnTs('env-server.ts', [socketPath()], { env })
    defer(async () => {
      child.kill('SIGTERM')
      await exited(child)
    })
    const line = JSON.parse(await waitForLine(child, 'security settings in force')) as { security: Array<{ setting: string; value: unknown; weakens: boolean }> }
    expect(line.security.find((s) => s.setting === 'peerCredentialsAddon')).toMatchObject({ value: 'packaged', weakens: false })
  })
})
