import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino, type Logger } from 'pino'
import { afterEach } from 'vitest'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const FIXTURES = path.join(ROOT, 'test', 'fixtures')
export const isRoot = process.getuid?.() === 0
export const NOBODY = 65534

/** A fresh private folder per test; `cleanup()` removes it. Short paths: sun_path is small. */
export function tempDir(prefix = 'nipc-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** A logger that keeps lines in memory so tests can look at what was logged. */
export function memoryLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino(
    { level: 'debug' },
    {
      write(line: string) {
        lines.push(JSON.parse(line) as Record<string, unknown>)
      },
    },
  )
  return { logger, lines }
}

/** Run a TypeScript fixture in its own Node process, resolving our packages to their sources. */
export function spawnTs(file: string, args: string[] = [], options: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', '--conditions=@naaccord/source', path.join(FIXTURES, file), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options,
    env: { ...process.env, NAACCORD_LOG_LEVEL: 'warn', ...options.env },
  })
}

/** Wait until a child prints a line containing `marker` on stdout; reject on exit first. */
export function waitForLine(child: ChildProcess, marker: string, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    const timer = setTimeout(() => reject(new Error(`no "${marker}" within ${timeoutMs} ms; stdout: ${out}; stderr: ${err}`)), timeoutMs)
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()))
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find((l) => l.includes(marker))
      if (line !== undefined) {
        clearTimeout(timer)
        resolve(line)
      }
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`child exited (${signal ?? code}) before "${marker}"; stdout: ${out}; stderr: ${err}`))
    })
  })
}

/** Collect a child's whole output and exit code. */
export function runToEnd(child: ChildProcess, timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`child did not finish in ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`))
    }, timeoutMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

export function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())))
}

/**
 * Register clean-up steps that run after each test, last registered first:
 * `const defer = deferCleanup()` at the top of a file, then `defer(() => server.close())`.
 */
export function deferCleanup(): (fn: () => unknown) => void {
  let steps: Array<() => unknown> = []
  afterEach(async () => {
    const todo = steps.reverse()
    steps = []
    for (const step of todo) await step()
  })
  return (fn) => void steps.push(fn)
}
