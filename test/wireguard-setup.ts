// WireGuard between the two hosts of test/netns.ts, configured from the deploy/wireguard recipe:
// the set-up shared by test/wireguard.test.ts and bench/ways.ts. No vitest here (the bench
// imports it).
import { execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { inNetns, inNetnsSync, type Host, type TwoHosts } from './netns.js'
import { waitUntil } from './wait.js'

export const WG_GO = '/usr/bin/wireguard-go'
export const WG = '/usr/bin/wg'
/** Where wireguard-go puts its UAPI sockets: global, not per namespace. */
export const UAPI_DIR = '/var/run/wireguard'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** One end of the tunnel, filled in from deploy/wireguard and not yet up. */
export interface TunnelEnd {
  readonly host: Host
  readonly ifname: string
  /** The tunnel address of this end. */
  readonly address: string
  /** The deploy/wireguard wg-quick file with keys and addresses filled in. */
  readonly conf: string
}

export interface WireGuardPlan {
  /** The services host's (a's) tunnel address: what the web host dials. */
  readonly tunnelA: string
  readonly tunnelB: string
  readonly ends: readonly [TunnelEnd, TunnelEnd]
}

/** A running end: wireguard-go in its namespace, configured and up. */
export interface RunningTunnel {
  readonly ifname: string
  readonly daemon: ChildProcess
  /** Stop wireguard-go and remove its UAPI socket. */
  close(): Promise<void>
}

/** `wg-quick strip`: the wg(8) part of a wg-quick file (no Address, DNS, MTU, ...). */
export function stripWgQuick(conf: string): string {
  return conf
    .split('\n')
    .filter((l) => !/^\s*(Address|DNS|MTU|Table|PreUp|PostUp|PreDown|PostDown|SaveConfig)\s*=/.test(l))
    .join('\n')
}

/** SIGTERM, then SIGKILL after 3 s; resolves once the child has exited (waiting 2 s at most after the SIGKILL). */
export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  if (!(await Promise.race([gone.then(() => true), sleep(3_000).then(() => false)]))) {
    child.kill('SIGKILL')
    await Promise.race([gone, sleep(2_000)])
  }
}

/**
 * Fresh keys and the two deploy/wireguard files filled in for `hosts`: link-local tunnel
 * addresses (a /30 per pair of hosts) and interface names unique to this process.
 *
 * @example
 * const plan = planWireGuard(hosts)
 * const up = [await startTunnelEnd(plan.ends[0], dir), await startTunnelEnd(plan.ends[1], dir)]
 */
export function planWireGuard(hosts: TwoHosts, wgPort = 51820): WireGuardPlan {
  const n = Number(hosts.a.address.split('.')[2])
  const tunnelA = `169.254.${100 + (n % 100)}.1`
  const tunnelB = `169.254.${100 + (n % 100)}.2`
  const keys: Record<string, { key: string; pub: string }> = {}
  for (const k of ['services', 'web']) {
    const key = execFileSync(WG, ['genkey'], { encoding: 'utf8', timeout: 5_000 }).trim()
    keys[k] = { key, pub: execFileSync(WG, ['pubkey'], { input: key, encoding: 'utf8', timeout: 5_000 }).trim() }
  }
  const fill = (file: string) =>
    readFileSync(path.join(ROOT, 'deploy', 'wireguard', file), 'utf8')
      .replaceAll('<contents of services.key>', keys.services!.key)
      .replaceAll('<contents of services.pub>', keys.services!.pub)
      .replaceAll('<contents of web.key>', keys.web!.key)
      .replaceAll('<contents of web.pub>', keys.web!.pub)
      .replaceAll('10.77.0.1/24', `${tunnelA}/30`)
      .replaceAll('10.77.0.2/24', `${tunnelB}/30`)
      .replaceAll('10.77.0.1/32', `${tunnelA}/32`)
      .replaceAll('10.77.0.2/32', `${tunnelB}/32`)
      .replace('services.internal:51820', `${hosts.a.address}:${wgPort}`)
  // Interface names are global in /var/run/wireguard (the UAPI sockets): unique per run.
  const id = `${process.pid % 100000}${n}`
  return {
    tunnelA,
    tunnelB,
    ends: [
      { host: hosts.a, ifname: `nwa${id}`, address: tunnelA, conf: fill('services-host.conf') },
      { host: hosts.b, ifname: `nwb${id}`, address: tunnelB, conf: fill('web-host.conf') },
    ],
  }
}

/**
 * Bring one end up: wireguard-go in the foreground in its namespace (it makes the TUN device
 * there), then `wg setconf`, the address and the link, as wg-quick would. `dir` holds the
 * stripped configuration file (0600). `onStarted` is called with the end as soon as its daemon
 * runs, so that a caller can stop it even if the rest of the set-up fails.
 */
export async function startTunnelEnd(end: TunnelEnd, dir: string, onStarted?: (t: RunningTunnel) => void): Promise<RunningTunnel> {
  const { host, ifname, address } = end
  const wgConf = path.join(dir, `${ifname}.conf`)
  writeFileSync(wgConf, stripWgQuick(end.conf), { mode: 0o600 })
  let log = ''
  const daemon = inNetns(host, WG_GO, ['-f', ifname], { env: { ...process.env, LOG_LEVEL: 'error' } })
  daemon.stdout?.on('data', (d: Buffer) => (log += d.toString()))
  daemon.stderr?.on('data', (d: Buffer) => (log += d.toString()))
  const uapi = path.join(UAPI_DIR, `${ifname}.sock`)
  const tunnel: RunningTunnel = {
    ifname,
    daemon,
    async close() {
      await stopChild(daemon)
      rmSync(uapi, { force: true })
    },
  }
  onStarted?.(tunnel)
  await waitUntil(`wireguard-go ${ifname} making ${uapi}`, () => existsSync(uapi), {
    failed: () => (daemon.exitCode !== null ? `exited (${daemon.exitCode}): ${log}` : undefined),
  })
  inNetnsSync(host, WG, ['setconf', ifname, wgConf])
  inNetnsSync(host, 'ip', ['addr', 'add', `${address}/30`, 'dev', ifname])
  inNetnsSync(host, 'ip', ['link', 'set', ifname, 'up'])
  return tunnel
}
