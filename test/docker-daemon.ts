// A real Docker daemon for test/docker-real.test.ts: reuse one that answers on
// /var/run/docker.sock, or start Debian's dockerd (docker.io, installed by .ci/run) with
// `--iptables=false --bridge=none` (this machine lets it make user bridges, not touch iptables)
// and stop it afterwards. The base image comes from scripts/docker-base-image.sh. Skips, with the
// reason, when not root, when docker.io or docker-compose is missing, or without the root
// file system cache of scripts/systemd-rootfs.sh.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, openSync } from 'node:fs'
import path from 'node:path'
import { ROOT } from './helpers.js'

const SOCK = '/var/run/docker.sock'
/** Debian's CLI first: another docker on PATH may speak a newer API than dockerd 20.10. */
export const DOCKER = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker'
export const COMPOSE = existsSync('/usr/bin/docker-compose') ? '/usr/bin/docker-compose' : 'docker-compose'
const ENV = { ...process.env, PATH: `/usr/bin:${process.env.PATH ?? ''}` }

export interface RunResult {
  status: number | null
  stdout: string
  stderr: string
}

/** Run a command, bounded by `timeoutMs`, never throwing. */
export function run(cmd: string, args: string[], options: { timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env: { ...ENV, ...options.env }, cwd: options.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${options.timeoutMs ?? 60_000} ms)`
      p.kill('SIGKILL')
    }, options.timeoutMs ?? 60_000)
    p.on('error', (err) => (stderr += String(err)))
    p.on('close', (status) => {
      clearTimeout(timer)
      resolve({ status, stdout, stderr })
    })
  })
}

export async function must(cmd: string, args: string[], timeoutMs = 60_000, env?: Record<string, string>): Promise<string> {
  const r = await run(cmd, args, { timeoutMs, ...(env ? { env } : {}) })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}\n${r.stdout}${r.stderr}`)
  return r.stdout
}

/** Why the Docker tests cannot run here, or undefined. */
export function dockerSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'Docker tests need Linux'
  if (process.getuid?.() !== 0) return 'starting dockerd needs root'
  const has = (t: string) => spawnSync('sh', ['-c', `command -v ${t}`], { env: ENV }).status === 0
  if (!has('dockerd') || !existsSync('/usr/bin/docker')) return 'docker.io (Debian) is not installed: .ci/run installs it'
  if (!has('docker-compose')) return 'docker-compose (Debian) is not installed: .ci/run installs it'
  const rootfs = spawnSync(path.join(ROOT, 'scripts', 'systemd-rootfs.sh'), ['--path'], { encoding: 'utf8' }).stdout.trim()
  if (!existsSync(path.join(rootfs, 'lib', 'systemd', 'systemd'))) return `no cached root file system at ${rootfs} for the base image: run scripts/systemd-rootfs.sh (as .ci/run does)`
  return undefined
}

export interface Daemon {
  /** Stop the daemon if this process started it. */
  stop: () => Promise<void>
  started: boolean
}

/** Reuse a running daemon or start one; bounded to 30 s. */
export async function ensureDaemon(log: string): Promise<Daemon> {
  if ((await run(DOCKER, ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 10_000 })).status === 0) return { started: false, stop: async () => {} }
  const fd = openSync(log, 'a')
  const child: ChildProcess = spawn('dockerd', ['--iptables=false', '--bridge=none', '-H', `unix://${SOCK}`], { env: ENV, stdio: ['ignore', fd, fd], detached: true })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))])
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  const until = Date.now() + 30_000
  while (Date.now() < until) {
    if ((await run(DOCKER, ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 5_000 })).status === 0) return { started: true, stop }
    if (child.exitCode !== null) break
    await new Promise((r) => setTimeout(r, 300))
  }
  await stop()
  throw new Error(`dockerd did not answer within 30 s (log: ${log})`)
}

