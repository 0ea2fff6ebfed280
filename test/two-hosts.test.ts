// TCP + mutual TLS between two hosts: the services server in network namespace a, our client in
// namespace b, joined by a veth pair (test/netns.ts). Same options as on one host.
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestPki, issueToDir, spkiPin, type TestPki } from '@naaccord/ipc-certs'
import { FIXTURES, ROOT, deferCleanup, exited, runToEnd, tempDir, waitForLine } from './helpers.js'
import { createTwoHosts, inNetns, inNetnsSync, listNamespaces, netnsUnavailable, removeLeftoverNamespaces, type Host, type TwoHosts } from './netns.js'

const defer = deferCleanup()

/** Run a TypeScript fixture inside a host's namespace. */
function fixtureIn(host: Host, file: string, args: string[]): ChildProcess {
  return inNetns(host, process.execPath, ['--import', 'tsx', '--conditions=@naaccord/source', path.join(FIXTURES, file), ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NAACCORD_LOG_LEVEL: 'warn' },
  })
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL')
    await exited(child)
  }
}

interface Result {
  ok: boolean
  code?: string
  body?: { url: string; peer: { transport: string; remoteAddress?: string; certificate?: { commonName?: string } }; serverCertificate: string }
}

describe.skipIf(netnsUnavailable !== undefined)(`two hosts in network namespaces${netnsUnavailable ? ` (skipped: ${netnsUnavailable})` : ''}`, () => {
  let hosts: TwoHosts
  let pki: TestPki
  let port: number
  let pkiDir: { dir: string; cleanup: () => void }
  let server: ChildProcess

  beforeAll(async () => {
    hosts = createTwoHosts()
    pkiDir = tempDir()
    // The server certificate names host a's address: the client checks it like any hostname.
    pki = await createTestPki({ dir: path.join(pkiDir.dir, 'pki'), serverNames: ['services.internal', hosts.a.address] })
    server = fixtureIn(hosts.a, 'tls-server.ts', [hosts.a.address, pki.server.certPath, pki.server.keyPath, pki.ca.certPath])
    port = Number((await waitForLine(server, 'ready')).split(' ')[1])
  }, 30_000)

  afterAll(async () => {
    try {
      if (server) await stop(server)
    } finally {
      hosts?.cleanup()
      pkiDir?.cleanup()
    }
  })

  const url = () => `https://${hosts.a.address}:${port}`
  const good = () => ({ ca: pki.ca.certPath, cert: pki.client.certPath, key: pki.client.keyPath })
  /** Run every client case of this file in one client process in b (a process start costs more than the calls). */
  let results: Map<string, Result> | undefined
  const cases = (): Record<string, Record<string, unknown>> => ({
    good: good(),
    otherCa: { ...good(), cert: pki.otherClient.certPath, key: pki.otherClient.keyPath },
    wrongPin: { ...good(), pin: spkiPin(pki.otherServer.certPem) },
    rightPin: { ...good(), pin: spkiPin(pki.server.certPem) },
    wrongName: { ...good(), servername: 'elsewhere.internal' },
  })
  const once = async (name: keyof ReturnType<typeof cases>): Promise<Result> => {
    if (!results) {
      const all = cases()
      const child = fixtureIn(hosts.b, 'tls-client.ts', [JSON.stringify({ mode: 'batch', calls: Object.values(all).map((tls) => ({ url: url(), tls })) })])
      child.stdin?.end()
      const out = JSON.parse((await runToEnd(child)).stdout) as Result[]
      results = new Map(Object.keys(all).map((k, i) => [k, out[i]!]))
    }
    return results.get(name)!
  }
  /** One call in its own client process (after the rotation, with the new pin). */
  const single = async (tls: Record<string, unknown>): Promise<Result> => {
    const child = fixtureIn(hosts.b, 'tls-client.ts', [JSON.stringify({ url: url(), tls, mode: 'once' })])
    child.stdin?.end()
    return JSON.parse((await runToEnd(child)).stdout) as Result
  }

  it('the namespaces are joined only by their veth link, and gone after clean-up', () => {
    const names = listNamespaces()
    expect(names).toEqual(expect.arrayContaining([hosts.a.netns, hosts.b.netns]))
    expect(inNetnsSync(hosts.b, 'ip', ['-4', '-o', 'addr', 'show', 'dev', hosts.b.ifname])).toContain(`${hosts.b.address}/30`)
    // b routes a's address over its veth, and the root namespace holds no address of the link.
    expect(inNetnsSync(hosts.b, 'ip', ['route', 'get', hosts.a.address])).toContain(`dev ${hosts.b.ifname}`)
    expect(inNetnsSync(hosts.b, 'ip', ['route', 'show'])).not.toContain('default')
    // A throwaway pair is made and deleted again, leaving nothing behind.
    const extra = createTwoHosts()
    expect(listNamespaces()).toEqual(expect.arrayContaining([extra.a.netns, extra.b.netns]))
    extra.cleanup()
    extra.cleanup() // idempotent
    expect(listNamespaces()).not.toContain(extra.a.netns)
    expect(listNamespaces()).not.toContain(extra.b.netns)
  })

  it('namespaces left by a crashed run (its pid gone) are removed; those of live runs are kept', () => {
    // pid_max is at most 2^22: this pid cannot be alive.
    const orphan = 'nipc-4194305-0-a'
    execFileSync('ip', ['netns', 'add', orphan])
    try {
      expect(removeLeftoverNamespaces()).toEqual([orphan])
      expect(listNamespaces()).not.toContain(orphan)
      expect(listNamespaces()).toEqual(expect.arrayContaining([hosts.a.netns, hosts.b.netns]))
    } finally {
      spawnSync('ip', ['netns', 'del', orphan])
    }
  })

  it('the client in b reaches the server in a over TCP + mutual TLS; the server sees b and its certificate', async () => {
    const r = await once('good')
    expect(r).toMatchObject({ ok: true })
    expect(r.body?.peer).toMatchObject({ transport: 'tcp', remoteAddress: hosts.b.address, certificate: { commonName: 'web-server' } })
  })

  it('a client certificate from another CA is refused (Node closes without a TLS alert: IPC_CONNECTION_LOST)', async () => {
    const r = await once('otherCa')
    expect(r).toMatchObject({ ok: false, code: 'IPC_CONNECTION_LOST' })
  })

  it('a pin that does not match the server key is refused: IPC_TLS_PIN_MISMATCH; the right pin passes', async () => {
    expect(await once('wrongPin')).toMatchObject({ ok: false, code: 'IPC_TLS_PIN_MISMATCH' })
    expect(await once('rightPin')).toMatchObject({ ok: true })
  })

  it('a server name the certificate does not carry is refused: IPC_TLS_HOSTNAME', async () => {
    expect(await once('wrongName')).toMatchObject({ ok: false, code: 'IPC_TLS_HOSTNAME' })
  })

  it('rotating the server certificate mid-traffic loses no request; new connections get the new certificate', async () => {
    const before = new X509Certificate(pki.server.certPem).fingerprint256
    const load = fixtureIn(hosts.b, 'tls-client.ts', [JSON.stringify({ url: url(), tls: { ...good(), watch: false }, mode: 'load' })])
    defer(() => stop(load))
    await waitForLine(load, `seen ${before}`)
    const result = waitForLine(load, 'result', 25_000)
    const next = await issueToDir({ dir: pki.dir, kind: 'server', names: ['services.internal', hosts.a.address], fileName: 'server', force: true, days: 1 })
    const after = new X509Certificate(next.certPem).fingerprint256
    await waitForLine(load, `seen ${after}`)
    load.stdin!.write('stop\n')
    const { ok, failed } = JSON.parse((await result).slice('result '.length)) as { ok: number; failed: string[] }
    expect(failed).toEqual([])
    expect(ok).toBeGreaterThan(20)
    // Only the new key passes a pin now.
    expect(await single({ ...good(), pin: spkiPin(next.certPem) })).toMatchObject({ ok: true })
  }, 30_000)
})
