// Two hosts on one machine: two network namespaces joined by a veth pair, for tests that need a
// real second host. Traffic stays between the two namespaces: they get link-local addresses
// (169.254.0.0/16, RFC 3927) inside the namespaces only, and the root namespace is never touched.
import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { existsSync } from 'node:fs'
import { isRoot } from './helpers.js'

const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip'].find((p) => existsSync(p))
/** Every namespace this helper makes starts with this prefix, then the pid of the test process. */
export const NETNS_PREFIX = 'nipc-'
const IP_TIMEOUT_MS = 10_000

/** Why namespaces cannot be made here, or undefined when they can. Checked once per file. */
export const netnsUnavailable: string | undefined = (() => {
  if (process.platform !== 'linux') return 'network namespaces are Linux only'
  if (!isRoot) return 'creating network namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)'
  if (IP === undefined) return 'the ip tool is missing: apt-get install iproute2'
  const probe = `${NETNS_PREFIX}probe-${process.pid}`
  const add = spawnSync(IP, ['netns', 'add', probe], { encoding: 'utf8', timeout: IP_TIMEOUT_MS })
  if (add.status !== 0) return `ip netns add failed: ${(add.stderr || String(add.error)).trim()}`
  spawnSync(IP, ['netns', 'del', probe], { timeout: IP_TIMEOUT_MS })
  return undefined
})()

function ip(...args: string[]): string {
  return execFileSync(IP!, args, { encoding: 'utf8', timeout: IP_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'] })
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Delete namespaces left by a test process that died before its clean-up (named
 * `nipc-<pid>-...` with that pid gone). Namespaces of live test processes are left alone.
 */
export function removeLeftoverNamespaces(): string[] {
  const removed: string[] = []
  for (const line of ip('netns', 'list').split('\n')) {
    const name = line.split(' ')[0] ?? ''
    const m = /^nipc-(\d+)-/.exec(name)
    if (!m || alive(Number(m[1]))) continue
    try {
      ip('netns', 'del', name)
      removed.push(name)
    } catch {
      // Another process removed it first.
    }
  }
  return removed
}

export interface Host {
  /** The namespace name, for `ip netns exec`. */
  netns: string
  /** Its address on the veth link. */
  address: string
  /** The veth interface inside the namespace. */
  ifname: string
}

export interface TwoHosts {
  a: Host
  b: Host
  /** Delete both namespaces (and with them the veth pair and every interface inside). Idempotent. */
  cleanup(): void
}

let counter = 0
const live = new Set<string>()
// A test process that exits without its afterAll (an uncaught error, process.exit) still removes
// its namespaces; one killed by SIGKILL leaves them to removeLeftoverNamespaces() of the next run.
process.once('exit', () => {
  for (const name of live) spawnSync(IP!, ['netns', 'del', name], { timeout: IP_TIMEOUT_MS })
})

/**
 * Make two namespaces `a` and `b`, each with `lo` up and one end of a veth pair addressed from a
 * /30 of 169.254.0.0/16. On any failure while building, what was made is deleted again.
 *
 * @example
 * const hosts = createTwoHosts()
 * afterAll(() => hosts.cleanup())
 * const server = inNetns(hosts.a, process.execPath, ['server.mjs', hosts.a.address])
 */
export function createTwoHosts(): TwoHosts {
  if (netnsUnavailable) throw new Error(`cannot create network namespaces: ${netnsUnavailable}`)
  removeLeftoverNamespaces()
  const n = counter++
  const base = `${NETNS_PREFIX}${process.pid}-${n}`
  // 169.254.<n>.0/30: .1 for a, .2 for b. Unique per run in this process; namespaces never share a link.
  const third = (n % 254) + 1
  const a: Host = { netns: `${base}-a`, address: `169.254.${third}.1`, ifname: 'veth-a' }
  const b: Host = { netns: `${base}-b`, address: `169.254.${third}.2`, ifname: 'veth-b' }
  const made: string[] = []
  const cleanup = () => {
    for (const name of made.splice(0)) {
      try {
        ip('netns', 'del', name)
      } catch {
        // Already gone.
      }
      live.delete(name)
    }
  }
  try {
    for (const h of [a, b]) {
      ip('netns', 'add', h.netns)
      made.push(h.netns)
      live.add(h.netns)
      ip('-n', h.netns, 'link', 'set', 'lo', 'up')
    }
    // Created inside a with its peer placed straight into b: the root namespace never holds either end.
    ip('-n', a.netns, 'link', 'add', a.ifname, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.netns)
    for (const h of [a, b]) {
      ip('-n', h.netns, 'addr', 'add', `${h.address}/30`, 'dev', h.ifname)
      ip('-n', h.netns, 'link', 'set', h.ifname, 'up')
    }
  } catch (err) {
    cleanup()
    throw err
  }
  return { a, b, cleanup }
}

/** Run a command inside a host's namespace (`ip netns exec`); same file system, same uid. */
export function inNetns(host: Pick<Host, 'netns'>, command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  return spawn(IP!, ['netns', 'exec', host.netns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options })
}

/** Run a command inside a namespace and wait for it (bounded), returning its output. */
export function inNetnsSync(host: Pick<Host, 'netns'>, command: string, args: readonly string[], timeoutMs = 10_000): string {
  return execFileSync(IP!, ['netns', 'exec', host.netns, command, ...args], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] })
}

/** The namespaces that currently exist (for tests of this helper). */
export function listNamespaces(): string[] {
  return ip('netns', 'list')
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean)
}
