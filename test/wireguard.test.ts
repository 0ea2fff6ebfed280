// WireGuard between two hosts (design note option 4): wireguard-go in each of two network
// namespaces joined by a veth pair, configured from the recipe in deploy/wireguard. The services
// server listens on the tunnel address only, with mutual TLS on top; our client in the other
// namespace calls it through the tunnel. The same port is not reachable on the veth address.
import { execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestPki, type TestPki } from '@naaccord/ipc-certs'
import { FIXTURES, ROOT, exited, runToEnd, tempDir, waitForLine } from './helpers.js'
import { createTwoHosts, inNetns, inNetnsSync, netnsUnavailable, type Host, type TwoHosts } from './netns.js'

const WG_GO = '/usr/bin/wireguard-go'
const WG = '/usr/bin/wg'
const missing =
  netnsUnavailable ??
  (!existsSync(WG_GO) || !existsSync(WG) ? `needs ${WG_GO} and ${WG}: apt-get install wireguard-go wireguard-tools` : !existsSync('/dev/net/tun') ? 'needs /dev/net/tun for wireguard-go' : undefined)
const UAPI_DIR = '/var/run/wireguard'

function fixtureIn(host: Host, file: string, args: string[]): ChildProcess {
  return inNetns(host, process.execPath, ['--import', 'tsx', '--conditions=@naaccord/source', path.join(FIXTURES, file), ...args], {
    cwd: ROOT,
    env: { ...process.env, NAACCORD_LOG_LEVEL: 'warn' },
  })
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const done = await Promise.race([exited(child).then(() => true), sleep(3_000).then(() => false)])
  if (!done) {
    child.kill('SIGKILL')
    await exited(child)
  }
}

/** `wg-quick strip`: the wg(8) part of a wg-quick file (no Address, DNS, MTU, ...). */
function stripWgQuick(conf: string): string {
  return conf
    .split('\n')
    .filter((l) => !/^\s*(Address|DNS|MTU|Table|PreUp|PostUp|PreDown|PostDown|SaveConfig)\s*=/.test(l))
    .join('\n')
}

interface Tunnel {
  host: Host
  ifname: string
  address: string
  daemon: ChildProcess
}

describe.skipIf(missing !== undefined)(`WireGuard between two hosts${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let hosts: TwoHosts
  let work: { dir: string; cleanup: () => void }
  let pki: TestPki
  const tunnels: Tunnel[] = []
  let server: ChildProcess | undefined
  let port: number

  beforeAll(async () => {
    hosts = createTwoHosts()
    work = tempDir()
    try {
      const n = Number(hosts.a.address.split('.')[2])
      const tunnelA = `169.254.${100 + (n % 100)}.1`
      const tunnelB = `169.254.${100 + (n % 100)}.2`
      const wgPort = 51820
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
      for (const [host, file, address, ifname] of [
        [hosts.a, 'services-host.conf', tunnelA, `nwa${id}`],
        [hosts.b, 'web-host.conf', tunnelB, `nwb${id}`],
      ] as const) {
        const conf = fill(file)
        expect(conf).not.toContain('<contents')
        expect(conf).toContain(`Address = ${address}/30`)
        const wgConf = path.join(work.dir, `${ifname}.conf`)
        writeFileSync(wgConf, stripWgQuick(conf), { mode: 0o600 })
        let log = ''
        // -f: stay in the foreground (a child we can stop); it makes the TUN device in the namespace.
        const daemon = inNetns(host, WG_GO, ['-f', ifname], { env: { ...process.env, LOG_LEVEL: 'error' } })
        daemon.stdout?.on('data', (d: Buffer) => (log += d.toString()))
        daemon.stderr?.on('data', (d: Buffer) => (log += d.toString()))
        tunnels.push({ host, ifname, address, daemon })
        const uapi = path.join(UAPI_DIR, `${ifname}.sock`)
        const end = Date.now() + 10_000
        while (!existsSync(uapi)) {
          if (daemon.exitCode !== null) throw new Error(`wireguard-go exited (${daemon.exitCode}): ${log}`)
          if (Date.now() > end) throw new Error(`wireguard-go made no ${uapi} within 10 s: ${log}`)
          await sleep(25)
        }
        inNetnsSync(host, WG, ['setconf', ifname, wgConf])
        inNetnsSync(host, 'ip', ['addr', 'add', `${address}/30`, 'dev', ifname])
        inNetnsSync(host, 'ip', ['link', 'set', ifname, 'up'])
      }
      // The server certificate names the tunnel address: that is the name the client dials.
      pki = await createTestPki({ dir: path.join(work.dir, 'pki'), serverNames: [tunnelA] })
      server = fixtureIn(hosts.a, 'tls-server.ts', [tunnelA, pki.server.certPath, pki.server.keyPath, pki.ca.certPath])
      port = Number((await waitForLine(server, 'ready')).split(' ')[1])
    } catch (err) {
      await cleanup()
      throw err
    }
  }, 30_000)

  async function cleanup(): Promise<void> {
    try {
      await stop(server)
      for (const t of tunnels.splice(0)) {
        await stop(t.daemon)
        rmSync(path.join(UAPI_DIR, `${t.ifname}.sock`), { force: true })
      }
    } finally {
      hosts?.cleanup()
      work?.cleanup()
    }
  }
  afterAll(cleanup)

  const call = async (host: string, servername?: string) => {
    const tls = { ca: pki.ca.certPath, cert: pki.client.certPath, key: pki.client.keyPath, ...(servername ? { servername } : {}) }
    const child = fixtureIn(hosts.b, 'tls-client.ts', [JSON.stringify({ url: `https://${host}:${port}`, tls, mode: 'once' })])
    return JSON.parse((await runToEnd(child)).stdout) as { ok: boolean; code?: string; body?: { peer: { remoteAddress: string; certificate?: { commonName?: string } } } }
  }
  const transferred = (t: Tunnel): number =>
    inNetnsSync(t.host, WG, ['show', t.ifname, 'transfer'])
      .trim()
      .split(/\s+/)
      .slice(1)
      .reduce((sum, v) => sum + Number(v), 0)

  it('the client in b calls the server in a through the tunnel, with mutual TLS on top; the server sees b\'s tunnel address', async () => {
    const [a, b] = tunnels as [Tunnel, Tunnel]
    const before = transferred(b)
    const r = await call(a.address)
    expect(r).toMatchObject({ ok: true, body: { peer: { remoteAddress: b.address, certificate: { commonName: 'web-server' } } } })
    // The bytes went through WireGuard (encrypted UDP on the veth), and a handshake took place.
    expect(transferred(b)).toBeGreaterThan(before)
    expect(Number(inNetnsSync(b.host, WG, ['show', b.ifname, 'latest-handshakes']).trim().split(/\s+/)[1])).toBeGreaterThan(0)
  })

  it('the same port is not reachable over the plain veth address', async () => {
    // Dial a's veth address with the tunnel address as TLS name, so only reachability differs.
    const r = await call(hosts.a.address, tunnels[0]!.address)
    expect(r).toMatchObject({ ok: false, code: 'IPC_SERVICE_UNAVAILABLE' })
    // And an independent probe: the kernel in a answers the veth address with a reset.
    expect(() => inNetnsSync(hosts.b, 'bash', ['-c', `exec 3<>/dev/tcp/${hosts.a.address}/${port}`], 5_000)).toThrow(/Connection refused/)
  })
})
