// A real systemd (Debian bookworm's 252) as PID 1 of a new pid + mount namespace, for
// test/systemd-real.test.ts. No systemd-nspawn (it wants a host system bus): `unshare` runs
// test/fixtures/systemd/boot.sh, which mounts an overlay of the cached root file system (built by
// scripts/systemd-rootfs.sh, never written) and execs systemd; `nsenter` runs commands inside.
// SIGKILL of the namespace's PID 1 ends every process in it, and with them its mounts.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ROOT } from './helpers.js'

const BOOT = path.join(ROOT, 'test', 'fixtures', 'systemd', 'boot.sh')
const ROOTFS_SCRIPT = path.join(ROOT, 'scripts', 'systemd-rootfs.sh')
const CGROUP = '/sys/fs/cgroup'
export const INSIDE_PATH = '/usr/sbin:/usr/bin:/sbin:/bin'

/** The cached root file system, or why there is none (the test skips with that reason). */
export function cachedRootfs(): { dir: string } | { reason: string } {
  if (process.platform !== 'linux') return { reason: 'systemd as PID 1 needs Linux' }
  if (process.getuid?.() !== 0) return { reason: 'booting systemd in a pid + mount namespace needs root' }
  for (const tool of ['unshare', 'nsenter', 'npm']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return { reason: `${tool} is not installed` }
  }
  const where = spawnSync(ROOTFS_SCRIPT, ['--path'], { encoding: 'utf8' })
  const dir = where.stdout.trim()
  if (where.status !== 0 || dir === '') return { reason: `scripts/systemd-rootfs.sh --path failed: ${where.stderr.trim()}` }
  if (existsSync(path.join(dir, 'lib', 'systemd', 'systemd'))) return { dir }
  // Not built yet: build it here only when debootstrap is already installed (.ci/run installs it
  // and builds the cache before `pnpm test`; about 40 s).
  if (spawnSync('sh', ['-c', 'command -v debootstrap']).status !== 0) {
    return { reason: `no cached root file system at ${dir} and no debootstrap to build one: run scripts/systemd-rootfs.sh (as .ci/run does)` }
  }
  const built = spawnSync(ROOTFS_SCRIPT, [], { encoding: 'utf8', timeout: 300_000 })
  if (built.status !== 0) return { reason: `scripts/systemd-rootfs.sh could not build ${dir}: ${built.stderr.trim().split('\n').slice(-3).join(' / ')}` }
  return { dir }
}

export interface RunResult {
  status: number | null
  stdout: string
  stderr: string
}

export interface SystemdNamespace {
  /** PID 1 of the namespace, as the host sees it. */
  pid: number
  /** systemd's console output (boot.sh's and PID 1's stdout/stderr). */
  console: () => string
  /** Run a command inside (root, chrooted, a clean environment); bounded by `timeoutMs`. */
  run: (argv: string[], options?: { env?: Record<string, string>; timeoutMs?: number; input?: string }) => Promise<RunResult>
  /** SIGKILL PID 1 (ends the namespace), then remove the work folder and the cgroups it made. */
  destroy: () => Promise<void>
}

function cgroupEntries(): Map<string, Set<string>> {
  const seen = new Map<string, Set<string>>()
  for (const h of safeList(CGROUP)) seen.set(h, new Set(safeList(path.join(CGROUP, h))))
  return seen
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}

/**
 * Depth-first rmdir of the cgroup folders the namespace's systemd made in the host hierarchy
 * (cgroup v1 here, without delegation: systemd sees the host's tree). True once none is left.
 */
function removeNewCgroups(before: Map<string, Set<string>>): boolean {
  const rm = (dir: string): void => {
    for (const e of safeList(dir)) if (/\.(slice|scope|mount|service|socket)$/.test(e)) rm(path.join(dir, e))
    try {
      rmdirSync(dir)
    } catch {
      // busy (a process still in it) or not a cgroup folder: left alone
    }
  }
  for (const [h, entries] of cgroupEntries()) {
    const old = before.get(h) ?? new Set()
    for (const e of entries) if (!old.has(e) && /\.(slice|scope|mount|service|socket)$/.test(e)) rm(path.join(CGROUP, h, e))
  }
  for (const [h, entries] of cgroupEntries()) {
    const old = before.get(h) ?? new Set()
    for (const e of entries) if (!old.has(e) && /\.(slice|scope|mount|service|socket)$/.test(e)) return false
  }
  return true
}

/** Boot systemd on an overlay of `rootfs`; `stage` is bound at /root/stage inside. */
export async function bootSystemd(rootfs: string, stage: string, timeoutMs = 20_000): Promise<SystemdNamespace> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'naaccord-systemd-'))
  const cgroupsBefore = cgroupEntries()
  let out = ''
  // setpriv --pdeathsig: unshare dies with this process (even SIGKILLed), and --kill-child then
  // SIGKILLs the namespace's PID 1, so no systemd outlives a killed test run.
  const child: ChildProcess = spawn('setpriv', ['--pdeathsig', 'SIGKILL', 'unshare', '--pid', '--fork', '--mount', '--uts', '--ipc', '--kill-child', BOOT, rootfs, work, stage], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let pid = 0
  const destroy = async (): Promise<void> => {
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))])
    }
    // The kernel kills the namespace's processes with its PID 1; their cgroups empty soon after.
    const until = Date.now() + 5_000
    while (!removeNewCgroups(cgroupsBefore) && Date.now() < until) await new Promise((r) => setTimeout(r, 100))
    rmSync(work, { recursive: true, force: true })
  }
  const onExit = (): void => {
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone
      }
    }
  }
  process.once('exit', onExit)

  const run: SystemdNamespace['run'] = (argv, options = {}) =>
    new Promise((resolve) => {
      const env = Object.entries({ PATH: INSIDE_PATH, HOME: '/root', LANG: 'C.UTF-8', SYSTEMD_PAGER: '', ...options.env }).map(([k, v]) => `${k}=${v}`)
      // Its own process group: a signal sent inside to a process group never reaches ours.
      const p = spawn('nsenter', ['-t', String(pid), '-m', '-p', '-u', '-i', '-r', '-w', '/usr/bin/env', '-i', ...env, ...argv], { stdio: ['pipe', 'pipe', 'pipe'], detached: true })
      let stdout = ''
      let stderr = ''
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      const timer = setTimeout(() => {
        stderr += `\n(killed after ${options.timeoutMs ?? 30_000} ms)`
        p.kill('SIGKILL')
      }, options.timeoutMs ?? 30_000)
      p.on('error', (err) => (stderr += String(err)))
      p.on('close', (status) => {
        clearTimeout(timer)
        resolve({ status, stdout, stderr })
      })
      p.stdin.on('error', () => {}) // the command may exit before reading its input
      p.stdin.end(options.input ?? '')
    })

  try {
    const deadline = Date.now() + timeoutMs
    // unshare --fork: its one child is the namespace's PID 1.
    while (pid === 0 && Date.now() < deadline) {
      if (child.pid !== undefined) {
        const kids = safeRead(`/proc/${child.pid}/task/${child.pid}/children`).trim()
        if (kids !== '') pid = Number(kids.split(/\s+/)[0])
      }
      if (child.exitCode !== null) throw new Error(`boot.sh exited ${child.exitCode}: ${out}`)
      if (pid === 0) await new Promise((r) => setTimeout(r, 50))
    }
    // Until PID 1 is systemd and answers: is-system-running says running or degraded.
    let state = ''
    while (Date.now() < deadline) {
      if (safeRead(`/proc/${pid}/comm`).trim() === 'systemd') {
        state = (await run(['systemctl', 'is-system-running'], { timeoutMs: 5_000 })).stdout.trim()
        if (state === 'running' || state === 'degraded') break
      }
      await new Promise((r) => setTimeout(r, 200))
    }
    if (state !== 'running' && state !== 'degraded') throw new Error(`systemd did not come up within ${timeoutMs} ms (state "${state}"): ${out}`)
  } catch (err) {
    await destroy()
    process.removeListener('exit', onExit)
    throw err
  }
  return {
    pid,
    console: () => out,
    run,
    destroy: async () => {
      await destroy()
      process.removeListener('exit', onExit)
    },
  }
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}
