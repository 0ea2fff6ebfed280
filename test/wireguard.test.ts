// WireGuard between two hosts (design note option 4): wireguard-go in each of two network
// namespaces joined by a veth pair, configured from the recipe in deploy/wireguard. The services
// server listens on the tunnel address only, with mutual TLS on top; our client in the other
// namespace calls it through the tunnel. The same port is not reachable on the veth address.
import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestPki, type TestPki } from '@naaccord/ipc-certs'
import { FIXTURES, ROOT, runToEnd, tempDir, waitForLine } from './helpers.js'
import { createTwoHosts, inNetns, inNetnsSync, netnsUnavailable, type Host, type TwoHosts } from './netns.js'
import { WG, WG_GO, planWireGuard, startTunnelEnd, stopChild, type TunnelEnd } from './wireguard-setup.js'

const missing =
  netnsUnavailable ??
  (!existsSync(WG_GO) || !existsSync(WG) ? `needs ${WG_GO} and ${WG}: apt-get install wireguard-go wireguard-tools` : !existsSync('/dev/net/tun') ? 'needs /dev/net/tun for wireguard-go' : undefined)

function fixtureIn(host: Host, file: string, args: string[]): ChildProcess {
  return inNetns(host, process.execPath, ['--import', 'tsx', '--conditions=@naaccord/source', path.join(FIXTURES, file), ...args], {
    cwd: ROOT,
    env: { ...process.env, NAACCORD_LOG_LEVEL: 'warn' },
  })
}

/** An end of the tunnel that runs, and how to stop it. */
type Tunnel = TunnelEnd & { close: () => Promise<void> }

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
      const plan = planWireGuard(hosts)
      const { tunnelA } = plan
      for (const end of plan.ends) {
        expect(end.conf).not.toContain('<contents')
        expect(end.conf).toContain(`Address = ${end.address}/30`)
        await startTunnelEnd(end, work.dir, (running) => tunnels.push({ ...end, close: running.close }))
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
      await stopChild(server)
      for (const t of tunnels.splice(0)) await t.close()
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
