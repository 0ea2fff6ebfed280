// Helpers of the chaos suite: processes that print lines, bounded waits, callers under load,
// and the result table. Everything runs over the built dist/ (pnpm build first).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createClient, type IpcClient } from '@naaccord/ipc-client'

export const HERE = path.dirname(fileURLToPath(import.meta.url))
export const ROOT = path.resolve(HERE, '..', '..')
export const APP = path.join(HERE, 'app.mjs')
export const CLI = path.join(ROOT, 'packages', 'cli', 'bin', 'naaccord-ipc.js')

export interface Row {
  scenario: string
  metric: string
  value: string
  target: string
  /** PASS/FAIL against the target; HARD marks a broken invariant (the suite exits non-zero). */
  result: 'PASS' | 'FAIL' | 'HARD' | 'info' | 'n/a'
}

export const rows: Row[] = []

/** Record a measured value against a target; `hard` makes a miss fail the suite. */
export function check(scenario: string, metric: string, value: number | string, ok: boolean | undefined, target: string, hard = false): void {
  // A '|' would split the markdown table's cell.
  const text = String(value).replace(/\|/g, '/')
  rows.push({ scenario, metric, value: text.length > 140 ? `${text.slice(0, 137)}...` : text, target, result: ok === undefined ? 'info' : ok ? 'PASS' : hard ? 'HARD' : 'FAIL' })
}

export function printTable(): string {
  const head: Row = { scenario: 'scenario', metric: 'metric', value: 'value', target: 'target', result: 'info' }
  const all = [head, ...rows]
  const w = (k: keyof Row) => Math.max(...all.map((r) => r[k].length))
  const line = (r: Row, res: string) =>
    `| ${r.scenario.padEnd(w('scenario'))} | ${r.metric.padEnd(w('metric'))} | ${r.value.padStart(w('value'))} | ${r.target.padEnd(w('target'))} | ${res.padEnd(6)} |`
  const out = [
    line(head, 'result'),
    `|${'-'.repeat(w('scenario') + 2)}|${'-'.repeat(w('metric') + 2)}|${'-'.repeat(w('value') + 2)}|${'-'.repeat(w('target') + 2)}|--------|`,
    ...rows.map((r) => line(r, r.result)),
  ].join('\n')
  return out
}

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nchaos-'))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** A child whose stdout lines are collected; waitLine resolves on the next matching line. */
export class Proc {
  readonly child: ChildProcess
  readonly lines: string[] = []
  private waiters: Array<{ re: RegExp; from: number; resolve: (l: string) => void }> = []
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>

  constructor(cmd: string, args: string[], env: NodeJS.ProcessEnv, stdin = false) {
    this.child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
    let buf = ''
    this.child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString()
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, i)
        buf = buf.slice(i + 1)
        this.lines.push(l)
        this.waiters = this.waiters.filter((w) => {
          if (w.re.test(l)) {
            w.resolve(l)
            return false
          }
          return true
        })
      }
    })
    this.child.stderr!.on('data', () => {})
    this.exit = new Promise((r) => this.child.once('exit', (code, signal) => r({ code, signal })))
  }

  get pid(): number {
    return this.child.pid ?? -1
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** The first line from line index `from` (default: the first line) matching `re`, within `ms`. */
  waitLine(re: RegExp, ms = 15_000, from = 0): Promise<string> {
    const seen = this.lines.slice(from).find((l) => re.test(l))
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${ms} ms (pid ${this.pid})`)), ms)
      const w = {
        re,
        from,
        resolve: (l: string) => {
          clearTimeout(timer)
          resolve(l)
        },
      }
      this.waiters.push(w)
      void this.exit.then(() => {
        if (this.waiters.includes(w)) {
          clearTimeout(timer)
          reject(new Error(`exited before a line matching ${re}: ${this.lines.slice(-3).join(' | ')}`))
        }
      })
    })
  }

  count(re: RegExp): number {
    return this.lines.filter((l) => re.test(l)).length
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`)
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM', ms = 15_000): Promise<void> {
    if (!this.alive) return
    this.child.kill(signal)
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms)
    await this.exit
    clearTimeout(t)
  }
}

/** The chaos app as a plain server (no supervisor). */
export function startApp(socketPath: string, env: NodeJS.ProcessEnv = {}): Proc {
  return new Proc(process.execPath, [APP], { NAACCORD_SOCKET_PATH: socketPath, NAACCORD_LOG_LEVEL: 'warn', ...env })
}

/** naaccord-ipc run -- node app.mjs */
export function startSupervisor(socketPath: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  return new Proc(process.execPath, [CLI, 'run', '--socket', socketPath, ...args, '--', process.execPath, APP], { NAACCORD_LOG_LEVEL: 'info', ...env })
}

export interface LoadResult {
  gets: number
  getFailures: number
  posts: number
  postFailures: number
  failureCodes: Record<string, number>
  maxLatencyMs: number
  /** Ids of POSTs that failed (to tell executed-but-unanswered from never run). */
  failedPostIds: string[]
  okPostIds: string[]
}

/**
 * `callers` concurrent loops through one client (as a web server would), alternating GETs and
 * POSTs with unique ids, until stop() is called or `maxMs` has passed.
 */
export function runLoad(client: IpcClient, callers: number, maxMs: number): { stop: () => Promise<LoadResult> } {
  const r: LoadResult = { gets: 0, getFailures: 0, posts: 0, postFailures: 0, failureCodes: {}, maxLatencyMs: 0, failedPostIds: [], okPostIds: [] }
  let stopped = false
  const deadline = Date.now() + maxMs
  let seq = 0
  const fail = (err: unknown) => {
    const code = (err as { code?: string }).code ?? 'RAW'
    r.failureCodes[code] = (r.failureCodes[code] ?? 0) + 1
  }
  const loops = Array.from({ length: callers }, async (_, c) => {
    while (!stopped && Date.now() < deadline) {
      const t = performance.now()
      if (seq++ % 2 === 0) {
        r.gets++
        try {
          await client.get('/pid')
        } catch (err) {
          r.getFailures++
          fail(err)
        }
      } else {
        const id = `${c}-${seq}-${Math.random().toString(36).slice(2)}`
        r.posts++
        try {
          await client.post('/orders', { id }, { headers: { 'x-order-id': id } })
          r.okPostIds.push(id)
        } catch (err) {
          r.postFailures++
          r.failedPostIds.push(id)
          fail(err)
        }
      }
      r.maxLatencyMs = Math.max(r.maxLatencyMs, performance.now() - t)
    }
  })
  return {
    async stop() {
      stopped = true
      await Promise.all(loops)
      return r
    },
  }
}

export function newClient(socketPath: string, extra: Record<string, unknown> = {}): IpcClient {
  return createClient({ socketPath, logger: false, ...extra })
}

/** Server-side view of the POSTs: how many ids ran twice, and how many failed ones ran anyway. */
export function ordersReport(file: string, load: LoadResult): { executed: number; duplicates: number; failedButExecuted: number; okMissing: number } {
  let text = ''
  try {
    text = readFileSync(file, 'utf8')
  } catch {}
  const counts = new Map<string, number>()
  for (const id of text.split('\n')) if (id) counts.set(id, (counts.get(id) ?? 0) + 1)
  const duplicates = [...counts.values()].filter((n) => n > 1).length
  const failedButExecuted = load.failedPostIds.filter((id) => counts.has(id)).length
  const okMissing = load.okPostIds.filter((id) => !counts.has(id)).length
  return { executed: counts.size, duplicates, failedButExecuted, okMissing }
}

/** Files left in a socket folder besides the ones named. */
export function strayFiles(dir: string, allowed: string[] = []): string[] {
  try {
    return readdirSync(dir).filter((f) => !allowed.includes(f))
  } catch {
    return []
  }
}

export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return -1
  }
}

export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : -1
  } catch {
    return -1
  }
}

export function codes(c: Record<string, number>): string {
  const e = Object.entries(c)
  return e.length === 0 ? '' : ` (${e.map(([k, v]) => `${k} ${v}`).join(', ')})`
}
