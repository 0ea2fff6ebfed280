// Every process-wide effect of PROCESS_EFFECTS, in a real child process: each happens by default,
// and each, turned off by its name, does not (while the others still do).
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { PROCESS_EFFECTS, type ProcessEffectName } from '@naaccord/ipc-shared'
import { deferCleanup, runToEnd, spawnTs, tempDir } from './helpers.js'

const defer = deferCleanup()

interface Report {
  added: Record<'SIGTERM' | 'SIGINT' | 'exit' | 'uncaughtExceptionMonitor', number>
  flushHooks: string[]
  listenEnv: string[]
  readyEnv: string | null
  connected: boolean
}

interface Run {
  report: Report
  messages: unknown[]
  stdout: string
}

/** How each effect is turned off by name, and how a run shows that it happened. */
const EFFECTS: Record<ProcessEffectName, { off: { options?: object; env?: NodeJS.ProcessEnv }; happened: (run: Run) => boolean }> = {
  handleSignals: {
    off: { options: { handleSignals: false } },
    happened: ({ report }) => report.added.SIGTERM === 1 && report.added.SIGINT === 1,
  },
  flushLogsOnExit: {
    off: { env: { NAACCORD_FLUSH_LOGS_ON_EXIT: 'false' } },
    // The listeners are there, and the line logged just before process.exit() was written.
    happened: ({ report, stdout }) => report.flushHooks.length === 2 && stdout.includes('last words before process.exit'),
  },
  clearActivationEnv: {
    off: { options: { clearActivationEnv: false } },
    happened: ({ report }) => report.listenEnv.length === 0,
  },
  notifySupervisorReady: {
    off: { options: { notifySupervisorReady: false } },
    happened: ({ report, messages }) =>
      report.readyEnv === null && !report.connected && messages.some((m) => (m as { type?: string }).type === 'naaccord-ipc:ready'),
  },
}

/** Start the fixture as the supervisor and socket activation would see it: an IPC channel, the ready variable, activation variables (for another pid). */
async function run(options: object = {}, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const t = tempDir()
  defer(t.cleanup)
  const child = spawnTs('process-effects-app.ts', [path.join(t.dir, 's.sock'), JSON.stringify(options)], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { LISTEN_PID: '1', LISTEN_FDS: '1', LISTEN_FDNAMES: 'other', NAACCORD_SUPERVISOR_READY: 'ipc', ...env },
  })
  const messages: unknown[] = []
  child.on('message', (m) => messages.push(m))
  const { code, stdout, stderr } = await runToEnd(child)
  expect(code, stderr).toBe(0)
  const line = stdout.split('\n').find((l) => l.startsWith('effects '))
  expect(line, stdout).toBeDefined()
  return { report: JSON.parse(line!.slice('effects '.length)) as Report, messages, stdout }
}

describe('process-wide effects: on by default, each off by its name', () => {
  it('PROCESS_EFFECTS lists exactly the effects tested here, each with what it does, its default and how to turn it off', () => {
    expect(PROCESS_EFFECTS.map((e) => e.name).sort()).toEqual(Object.keys(EFFECTS).sort())
    for (const e of PROCESS_EFFECTS) {
      expect(e.default).toBe(true)
      expect(e.what.length).toBeGreaterThan(40)
      expect(e.why.length).toBeGreaterThan(40)
      expect(e.optOut).toContain(e.name === 'flushLogsOnExit' ? 'NAACCORD_FLUSH_LOGS_ON_EXIT' : `${e.name}: false`)
    }
  })

  it('by default every effect happens', async () => {
    const r = await run()
    for (const [name, effect] of Object.entries(EFFECTS)) expect({ name, happened: effect.happened(r) }).toEqual({ name, happened: true })
  })

  it.each(Object.keys(EFFECTS) as ProcessEffectName[])('%s turned off by name: it does not happen, the others still do', async (name) => {
    const { options, env } = EFFECTS[name].off
    const r = await run(options, env)
    for (const [other, effect] of Object.entries(EFFECTS)) expect({ other, happened: effect.happened(r) }).toEqual({ other, happened: other !== name })
    // Without the hooks, what the buffer held at process.exit() is lost: the price of turning it off.
    if (name === 'flushLogsOnExit') expect(r.stdout).not.toContain('last words before process.exit')
  })
})

describe('the documented list of process-wide effects', () => {
  it('docs/server.md has one row per entry of PROCESS_EFFECTS, in order', async () => {
    const { readFileSync } = await import('node:fs')
    const page = readFileSync(path.join(import.meta.dirname, '..', 'docs', 'server.md'), 'utf8')
    const block = page.slice(page.indexOf('<!-- process-effects'), page.indexOf('<!-- /process-effects -->'))
    const names = [...block.matchAll(/^\| `([A-Za-z]+)` \|/gm)].map((m) => m[1])
    expect(names).toEqual(PROCESS_EFFECTS.map((e) => e.name))
  })
})

describe('the signal path keeps the log', () => {
  it('every line logged before SIGTERM is written before the re-raised signal ends the process (5 processes at once)', async () => {
    const LINES = 300
    const runs = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const t = tempDir('nipc-siglog-')
        defer(t.cleanup)
        const dir = t.dir
        const child = spawnTs('signal-log-app.ts', [path.join(dir, 's.sock'), String(LINES)])
        let stdout = ''
        child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
        // A reader that falls behind (a log shipper under load): the pipe fills, so the last
        // lines are still being written when the signal comes.
        child.stdout!.pause()
        setTimeout(() => child.stdout!.resume(), 300)
        const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('close', (c, s) => resolve([c, s])))
        return { code, signal, lines: stdout.split('\n').filter((l) => l.includes('line before the signal')).length }
      }),
    )
    expect(runs).toEqual(Array.from({ length: 5 }, () => ({ code: null, signal: 'SIGTERM', lines: LINES })))
  })
})
