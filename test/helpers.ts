import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { chmodSync, chownSync, lchownSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino, type Logger } from 'pino'
import { afterEach } from 'vitest'
import { sourceBundle } from './source-bundle.js'

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

/**
 * Run a TypeScript fixture in its own Node process, resolving our packages to their sources:
 * bundled once and cached (test/source-bundle.ts), so each start costs plain `node`, not tsx.
 */
export function spawnTs(file: string, args: string[] = [], options: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, [sourceBundle(path.join(FIXTURES, file)), ...args], {
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

/** Write `text` on a fresh raw connection (an independent client); resolve with everything read until the server closes. */
export function rawExchange(where: { path: string } | { port: number }, text: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(where as net.NetConnectOpts)
    let data = ''
    sock.on('data', (c: Buffer) => (data += c.toString()))
    sock.on('error', (err: NodeJS.ErrnoException) => (data ? resolve(data) : reject(err)))
    sock.on('close', () => resolve(data))
    sock.write(text)
  })
}

/** One HTTP/1.1 GET over a raw Unix-socket connection (an independent client); resolves the body. */
export function rawGet(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath)
    let data = ''
    sock.on('data', (d) => (data += d.toString()))
    sock.on('error', reject)
    sock.on('end', () => resolve(data.split('\r\n\r\n')[1] ?? ''))
    sock.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  })
}

/** The error a promise must reject with; a resolution fails the test. */
export function failure<E = { code?: string; message: string }>(p: Promise<unknown>): Promise<E> {
  return p.then(
    () => {
      throw new Error('expected a refusal')
    },
    (e: unknown) => e as E,
  )
}

/**
 * Folders and foreign processes for the socket-safety tests, each removed after the test:
 * `dir()` a temp folder; `stickyFolder(parentMode)` a 1777 folder like /tmp inside one of the
 * test's own (never /tmp itself); `foreignScript(source)` a plain .mjs that uid 65534 can run
 * from a 0711 folder (it never needs the checkout); `runAsNobody(script, args)` runs it as uid
 * 65534 and kills it at clean-up.
 */
export function socketTestKit(defer: (fn: () => unknown) => void, prefix = 'nipc-') {
  const dir = (): string => {
    const t = tempDir(prefix)
    defer(t.cleanup)
    return t.dir
  }
  return {
    dir,
    stickyFolder(parentMode = 0o711): string {
      const d = dir()
      chmodSync(d, parentMode)
      const t = path.join(d, 'tmp')
      mkdirSync(t)
      chmodSync(t, 0o1777)
      return t
    },
    foreignScript(source: string): string {
      return foreignScriptIn(dir(), source)
    },
    runAsNobody,
    /** A folder of uid 65534's own inside a root 0711 folder (where it can bind, as a services user's would be). */
    nobodyFolder(): string {
      const d = dir()
      chmodSync(d, 0o711)
      const own = path.join(d, 'own')
      mkdirSync(own, { mode: 0o755 })
      chownSync(own, NOBODY, NOBODY)
      return own
    },
    /**
     * uid 65534's listener at `socketPath`: answers nothing, counts the connections and bytes it
     * gets, so a test can prove that nothing of a request (not even a TLS ClientHello) reached it.
     */
    async countingListener(socketPath: string): Promise<{ connections: () => number; bytes: () => number }> {
      const child = runAsNobody(foreignScriptIn(dir(), COUNTING_LISTENER), [socketPath])
      let connections = 0
      let bytes = 0
      child.stdout!.on('data', (d: Buffer) => {
        const text = d.toString()
        connections += text.match(/^conn$/gm)?.length ?? 0
        for (const m of text.matchAll(/count (\d+)/g)) bytes = Number(m[1])
      })
      await waitForLine(child, 'listening')
      return { connections: () => connections, bytes: () => bytes }
    },
    /**
     * Move a socket into a new root 0711 folder and make the file root's: only the kernel's
     * credentials of the listening process still tell who is there (as with a passed descriptor).
     */
    moveIntoRootFolder(socketPath: string): string {
      const d = dir()
      chmodSync(d, 0o711)
      const moved = path.join(d, path.basename(socketPath))
      renameSync(socketPath, moved)
      lchownSync(moved, 0, 0)
      return moved
    },
  }
  function runAsNobody(script: string, args: string[]): ChildProcess {
    const child = spawn(process.execPath, [script, ...args], { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'pipe'] })
    defer(async () => {
      child.kill('SIGKILL')
      await exited(child)
    })
    return child
  }
}

const COUNTING_LISTENER = `
  import fs from 'node:fs'; import net from 'node:net'
  let bytes = 0
  const server = net.createServer((s) => { console.log('conn'); s.on('data', (d) => { bytes += d.length; console.log('count ' + bytes) }); s.on('error', () => {}) })
  server.listen(process.argv[2], () => { fs.chmodSync(process.argv[2], 0o666); console.log('listening') })
`

function foreignScriptIn(d: string, source: string): string {
  chmodSync(d, 0o711)
  const file = path.join(d, 'script.mjs')
  writeFileSync(file, source, { mode: 0o644 })
  return file
}

/** A TCP port on 127.0.0.1 free a moment ago (bound to port 0, then closed). */
export async function freePort(): Promise<number> {
  const probe = net.createServer().listen(0, '127.0.0.1')
  await new Promise((r) => probe.once('listening', r))
  const { port } = probe.address() as net.AddressInfo
  await new Promise((r) => probe.close(r))
  return port
}
