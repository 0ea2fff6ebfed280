// `pnpm bench:ways`: latency and throughput of each way to run the hop (docs/production.md "Ways to
// run the hop"), each next to the plain Unix socket measured in the same round. Root only (namespaces,
// wireguard-go, sshd); skips with the reason otherwise. Never part of `pnpm test`.
//
// Each way is set up once with the real components the tests use (test/netns.ts,
// deploy/wireguard, deploy/ssh): the server (`ways-server.ts`, serve() and a tiny JSON app) in its
// own process, in namespace a for the two-host ways; the load generator (`ways-driver.ts`, our
// createClient) in another, in namespace b for the two-host ways. Then ROUNDS alternated rounds
// (order reversed every other round) of c=1 and c=16 for MEASURE_MS each. Every way is reported
// as the median of its per-round ratios to the Unix socket (min–max). Everything is torn down at
// the end, on failure too. Writes bench/results/ways-latest.{md,json}.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createTestPki } from '@naaccord/ipc-certs'
import { createTwoHosts, inNetns, netnsUnavailable, type Host, type TwoHosts } from '../test/netns.js'
import { WG, WG_GO, planWireGuard, startTunnelEnd, stopChild } from '../test/wireguard-setup.js'
import { waitUntil } from '../test/wait.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..')
const ROUNDS = 5
const MEASURE_MS = 1_000
const TOTAL_BUDGET_MS = 170_000
const SSHD = '/usr/sbin/sshd'
const SSH = '/usr/bin/ssh'
const NOBODY = 65534
const started = Date.now()

interface Sample { requests: number; seconds: number; p50Ms: number; p99Ms: number; errors: number }
interface Way { key: string; label: string; driver: Driver }

const children: ChildProcess[] = []
const cleanups: Array<() => void | Promise<void>> = []

function tsChild(host: Host | undefined, file: string, arg: unknown): ChildProcess {
  const args = ['--import', 'tsx', '--conditions=@naaccord/source', path.join(HERE, file), JSON.stringify(arg)]
  const opts = { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] as ['pipe', 'pipe', 'pipe'], env: { ...process.env, NAACCORD_LOG_LEVEL: 'warn' } }
  const child = host ? inNetns(host, process.execPath, args, opts) : spawn(process.execPath, args, opts)
  children.push(child)
  return child
}

/** The first stdout line starting with `prefix` (bounded in time); fails on exit or an "error" line. */
function nextLine(child: ChildProcess, prefix: string, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = ''
    let err = ''
    const done = (f: () => void) => {
      clearTimeout(timer)
      child.stdout!.off('data', onData)
      child.stderr!.off('data', onErr)
      child.off('exit', onExit)
      f()
    }
    const onData = (d: Buffer) => {
      buf += d.toString()
      for (const line of buf.split('\n').slice(0, -1)) {
        if (line.startsWith(prefix)) return done(() => resolve(line.slice(prefix.length).trim()))
        if (line.startsWith('error')) return done(() => reject(new Error(line)))
      }
      buf = buf.slice(buf.lastIndexOf('\n') + 1)
    }
    const onErr = (d: Buffer) => (err += d.toString())
    const onExit = (code: number | null) => done(() => reject(new Error(`exited (${code}) before "${prefix}": ${err.slice(-2000)}`)))
    const timer = setTimeout(() => done(() => reject(new Error(`no "${prefix}" within ${timeoutMs} ms: ${err.slice(-2000)}`))), timeoutMs)
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onErr)
    child.once('exit', onExit)
  })
}

const until = (what: string, check: () => boolean | Promise<boolean>, failed: () => string | undefined, timeoutMs = 10_000) =>
  waitUntil(what, check, { timeoutMs, failed })

async function startServer(host: Host | undefined, options: Record<string, unknown>): Promise<string[]> {
  const child = tsChild(host, 'ways-server.ts', options)
  return JSON.parse(await nextLine(child, 'ready ')) as string[]
}

class Driver {
  constructor(private readonly child: ChildProcess) {}
  static async start(host: Host | undefined, options: Record<string, unknown>): Promise<Driver> {
    const child = tsChild(host, 'ways-driver.ts', options)
    await nextLine(child, 'ready')
    return new Driver(child)
  }
  async run(concurrency: number, ms: number): Promise<Sample> {
    const line = nextLine(this.child, 'result ', ms + 15_000)
    this.child.stdin!.write(`run ${concurrency} ${ms}\n`)
    return JSON.parse(await line) as Sample
  }
}

const freePort = async (): Promise<number> => {
  const probe = net.createServer().listen(0, '127.0.0.1')
  await new Promise((r) => probe.once('listening', r))
  const { port } = probe.address() as net.AddressInfo
  await new Promise((r) => probe.close(r))
  return port
}

/** WireGuard between a and b from deploy/wireguard (test/wireguard-setup.ts); returns a's tunnel address. */
async function wireguard(hosts: TwoHosts, dir: string): Promise<string> {
  const plan = planWireGuard(hosts)
  for (const end of plan.ends) {
    await startTunnelEnd(end, dir, (running) => {
      children.push(running.daemon)
      cleanups.push(() => running.close())
    })
  }
  return plan.tunnelA
}

/** A real sshd on a loopback port with the recipe in deploy/ssh, and `ssh -N -L local:remote`. */
async function sshTunnel(dir: string, remoteSocket: string, localSocket: string): Promise<void> {
  const keys = path.join(dir, 'keys')
  mkdirSync(keys, { mode: 0o711 })
  for (const k of ['host', 'tunnel']) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', k, '-f', path.join(keys, k)], { timeout: 10_000 })
  const authorized = path.join(keys, 'authorized_keys')
  writeFileSync(authorized, `restrict,port-forwarding ${readFileSync(path.join(keys, 'tunnel.pub'), 'utf8')}`, { mode: 0o644 })
  const port = await freePort()
  writeFileSync(path.join(keys, 'known_hosts'), `[127.0.0.1]:${port} ${readFileSync(path.join(keys, 'host.pub'), 'utf8')}`)
  const recipe = readFileSync(path.join(ROOT, 'deploy', 'ssh', 'sshd_config.naaccord'), 'utf8').replace('Match User naaccord-tunnel', 'Match User nobody')
  const config = path.join(dir, 'sshd_config')
  writeFileSync(
    config,
    [
      `ListenAddress 127.0.0.1:${port}`, `HostKey ${path.join(keys, 'host')}`, 'PidFile none', `AuthorizedKeysFile ${authorized}`,
      'AuthenticationMethods publickey', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no',
      'StrictModes no', 'AllowUsers nobody', 'LogLevel ERROR', recipe,
    ].join('\n'),
  )
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 })
  let sshdLog = ''
  const sshd = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] })
  sshd.stderr!.on('data', (d: Buffer) => (sshdLog += d.toString()))
  children.push(sshd)
  cleanups.push(() => stopChild(sshd))
  const listening = () => new Promise<boolean>((r) => { const s = net.connect(port, '127.0.0.1'); s.once('connect', () => (s.destroy(), r(true))); s.once('error', () => r(false)) })
  await until('sshd listening', listening, () => (sshd.exitCode !== null ? `sshd exited: ${sshdLog}` : undefined))
  let sshLog = ''
  const ssh = spawn(SSH, [
    '-F', '/dev/null', '-N', '-T', '-o', 'ExitOnForwardFailure=yes', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes',
    '-o', 'StreamLocalBindMask=0177', '-o', 'StreamLocalBindUnlink=yes',
    '-o', `UserKnownHostsFile=${path.join(keys, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes',
    '-i', path.join(keys, 'tunnel'), '-p', String(port), '-L', `${localSocket}:${remoteSocket}`, 'nobody@127.0.0.1',
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  ssh.stderr!.on('data', (d: Buffer) => (sshLog += d.toString()))
  children.push(ssh)
  cleanups.push(() => stopChild(ssh))
  const connects = () => new Promise<boolean>((r) => { const s = net.connect(localSocket); s.once('connect', () => (s.destroy(), r(true))); s.once('error', () => r(false)) })
  await until('ssh tunnel up', () => existsSync(localSocket) && connects(), () => (ssh.exitCode !== null ? `ssh exited (${ssh.exitCode}): ${sshLog} ${sshdLog}` : undefined))
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2 }
const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a')

function loadNote(): string {
  const [l1, l5] = os.loadavg()
  return `load average ${l1!.toFixed(2)} (1 min), ${l5!.toFixed(2)} (5 min) on ${os.cpus().length} cores`
}

async function main(): Promise<void> {
  const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces, wireguard-go, sshd)' : netnsUnavailable
  if (skip) {
    console.log(`bench:ways skipped: ${skip}`)
    return
  }
  const missing = [WG_GO, WG, SSHD, SSH].filter((p) => !existsSync(p))
  if (missing.length) {
    console.log(`bench:ways skipped: needs ${missing.join(', ')} (apt-get install wireguard-go wireguard-tools openssh-server openssh-client)`)
    return
  }
  const loadBefore = loadNote()
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nipc-ways-'))
  chmodSync(dir, 0o711) // the tunnel user (nobody) reaches the services socket, nothing else in here
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const hosts = createTwoHosts()
  cleanups.push(() => hosts.cleanup())
  const tunnelA = await wireguard(hosts, dir)
  const pki = await createTestPki({ dir: path.join(dir, 'pki'), serverNames: ['localhost', hosts.a.address, tunnelA] })
  const serverTls = { cert: pki.server.certPath, key: pki.server.keyPath, ca: pki.ca.certPath }
  const clientTls = { ca: pki.ca.certPath, cert: pki.client.certPath, key: pki.client.keyPath }

  const plainSock = path.join(dir, 'plain.sock')
  const tlsSock = path.join(dir, 'tls.sock')
  const localSock = path.join(dir, 'local.sock')
  // Plain socket: root (the driver) and nobody (sshd's session process for the SSH way) allowed.
  await startServer(undefined, { socketPath: plainSock, socketMode: 0o666, allow: { uids: [0, NOBODY] }, acknowledgePlaintextSocket: true })
  await startServer(undefined, { socketPath: tlsSock, tls: serverTls })
  const [vethAddr] = await startServer(hosts.a, { listen: [{ host: hosts.a.address, port: 0 }], tls: serverTls })
  const [wgAddr] = await startServer(hosts.a, { listen: [{ host: tunnelA, port: 0 }], tls: serverTls })
  await sshTunnel(dir, plainSock, localSock)

  const ways: Way[] = [
    { key: 'unix', label: 'Unix socket', driver: await Driver.start(undefined, { socketPath: plainSock }) },
    { key: 'unix-mtls', label: 'Unix socket + mutual TLS', driver: await Driver.start(undefined, { socketPath: tlsSock, tls: clientTls }) },
    { key: 'tcp-mtls-veth', label: 'TCP + mutual TLS between hosts (veth)', driver: await Driver.start(hosts.b, { url: `https://${vethAddr}`, tls: clientTls }) },
    { key: 'wireguard-mtls', label: 'WireGuard (wireguard-go) + mutual TLS', driver: await Driver.start(hosts.b, { url: `https://${wgAddr}`, tls: clientTls }) },
    { key: 'ssh-tunnel', label: 'SSH tunnel (ssh -N -L sock:sock)', driver: await Driver.start(undefined, { socketPath: localSock }) },
  ]
  console.log(`set up in ${((Date.now() - started) / 1000).toFixed(1)} s; ${ROUNDS} rounds x ${ways.length} ways x (c=1, c=16) x ${MEASURE_MS} ms`)

  type Round = Record<string, { c1: Sample; c16: Sample }>
  const rounds: Round[] = []
  for (let r = 0; r < ROUNDS; r++) {
    if (Date.now() - started > TOTAL_BUDGET_MS - 2 * ways.length * (MEASURE_MS + 500)) {
      console.log(`stopping after ${r} rounds: time budget`)
      break
    }
    const order = r % 2 === 0 ? ways : [...ways].reverse()
    const round: Round = {}
    for (const w of order) round[w.key] = { c1: await w.driver.run(1, MEASURE_MS), c16: await w.driver.run(16, MEASURE_MS) }
    rounds.push(round)
    console.log(`round ${r + 1}: ` + ways.map((w) => `${w.key} ${Math.round(round[w.key]!.c16.requests / round[w.key]!.c16.seconds)}/s`).join(', '))
  }

  const rows = ways.map((w) => {
    const per = (f: (s: { c1: Sample; c16: Sample }) => number) => rounds.map((rd) => f(rd[w.key]!))
    const ratio = (f: (s: { c1: Sample; c16: Sample }) => number) => rounds.map((rd) => f(rd[w.key]!) / f(rd.unix!))
    const stat = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) })
    const rps1 = (s: { c1: Sample }) => s.c1.requests / s.c1.seconds
    const rps16 = (s: { c16: Sample }) => s.c16.requests / s.c16.seconds
    return {
      way: w.key,
      label: w.label,
      rpsC1: stat(per(rps1)), rpsC16: stat(per(rps16)), p50C1Ms: stat(per((s) => s.c1.p50Ms)), p99C1Ms: stat(per((s) => s.c1.p99Ms)),
      ratio: { rpsC1: stat(ratio(rps1)), rpsC16: stat(ratio(rps16)), p50C1: stat(ratio((s) => s.c1.p50Ms)), p99C1: stat(ratio((s) => s.c1.p99Ms)) },
      errors: rounds.reduce((n, rd) => n + rd[w.key]!.c1.errors + rd[w.key]!.c16.errors, 0),
    }
  })
  const mm = (s: { median: number; min: number; max: number }, d = 2) => `${fmt(s.median, d)} (${fmt(s.min, d)}–${fmt(s.max, d)})`
  const table = [
    '| way | req/s c=1 | req/s c=16 | p50 c=1 (ms) | p99 c=1 (ms) | req/s c=1 vs socket | req/s c=16 vs socket | p50 c=1 vs socket | p99 c=1 vs socket | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.label} | ${fmt(r.rpsC1.median, 0)} | ${fmt(r.rpsC16.median, 0)} | ${fmt(r.p50C1Ms.median, 3)} | ${fmt(r.p99C1Ms.median, 3)} | ${mm(r.ratio.rpsC1)} | ${mm(r.ratio.rpsC16)} | ${mm(r.ratio.p50C1)} | ${mm(r.ratio.p99C1)} | ${r.errors} |`),
  ].join('\n')
  const commit = (() => { try { return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim() } catch { return 'unknown' } })()
  const when = new Date().toISOString()
  const loadAfter = loadNote()
  const md = [
    `# Ways to run the hop (\`pnpm bench:ways\`)`,
    '',
    `${when}, commit ${commit}, Node ${process.version}, ${rounds.length} rounds x ${MEASURE_MS} ms per way and concurrency, order reversed every other round.`,
    `Machine: ${loadBefore} before, ${loadAfter} after. Other processes share the CPU: read the ratios to the Unix socket (same round) side by side, not the absolute figures.`,
    '',
    'Absolute figures: median over rounds. Ratios: median of the per-round ratios to the plain Unix socket, (min–max). For req/s above 1 is faster; for latency below 1 is faster.',
    '',
    table,
    '',
  ].join('\n')
  const out = path.join(HERE, 'results')
  mkdirSync(out, { recursive: true })
  writeFileSync(path.join(out, 'ways-latest.md'), md)
  writeFileSync(path.join(out, 'ways-latest.json'), JSON.stringify({ when, commit, node: process.version, loadBefore, loadAfter, rounds: rounds.length, measureMs: MEASURE_MS, rows, raw: rounds }, null, 2) + '\n')
  console.log('\n' + md)
  console.log(`total ${((Date.now() - started) / 1000).toFixed(1)} s; written to bench/results/ways-latest.{md,json}`)
}

async function teardown(): Promise<void> {
  for (const c of children) if (c.stdin && !c.stdin.destroyed) c.stdin.end('quit\n')
  await Promise.all(children.map((c) => stopChild(c)))
  for (const f of cleanups.reverse()) {
    try {
      await f()
    } catch (err) {
      console.error(`clean-up: ${(err as Error).message}`)
    }
  }
}

const watchdog = setTimeout(() => {
  console.error(`bench:ways: over ${TOTAL_BUDGET_MS + 20_000} ms, giving up`)
  void teardown().finally(() => process.exit(1))
}, TOTAL_BUDGET_MS + 20_000)
let failed = false
try {
  await main()
} catch (err) {
  failed = true
  console.error(`bench:ways failed: ${(err as Error).stack ?? err}`)
} finally {
  await teardown()
  clearTimeout(watchdog)
}
process.exitCode = failed ? 1 : 0
