// The server child: every server of every row, listening at once in one process that does nothing
// else. run.ts starts it (pinned to its own core when taskset is there), loads one endpoint at a
// time, and asks it over the IPC channel for process.cpuUsage() before and after each measurement.
import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { serve, type IpcServer, type ServerOptions } from '@naaccord/ipc-server'
import { createLogger } from '@naaccord/ipc-shared/logger'
import { bareHandler, createExpressApp, createServicesApp } from './apps.js'
import { runChild, send } from './child-runtime.js'
import type { Endpoint, EndpointName, Endpoints, ServerChildConfig } from './protocol.js'

const config = JSON.parse(process.argv[2] ?? '') as ServerChildConfig

const tlsFiles = {
  cert: readFileSync(config.pki.cert, 'utf8'),
  key: readFileSync(config.pki.key, 'utf8'),
  ca: readFileSync(config.pki.ca, 'utf8'),
}
const socket = (name: string) => path.join(config.workDir, `${name}.sock`)

const nodeServers: http.Server[] = []
const ipcServers: IpcServer[] = []
const endpoints: Partial<Record<EndpointName, Endpoint>> = {}

// The load generator keeps its connections for the whole run (bench/keep-alive.ts); servers
// keep idle ones that long too, so no measurement pays for reconnecting.
const IDLE_MS = 300_000

function listen(server: http.Server, where: { path: string } | { host: string; port: 0 }): Promise<void> {
  server.keepAliveTimeout = Math.max(server.keepAliveTimeout, IDLE_MS)
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(where, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

/** A bare node:http (or https, mutual TLS 1.3) server on TCP loopback and on a Unix socket. */
async function startBare(tls: boolean): Promise<void> {
  const security = tls ? 'tls' : 'plain'
  for (const transport of ['tcp', 'unix'] as const) {
    const server = tls
      ? (https.createServer({ ...tlsFiles, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, bareHandler) as unknown as http.Server)
      : http.createServer(bareHandler)
    nodeServers.push(server)
    const name = `bare-${transport}-${security}` as const
    if (transport === 'tcp') {
      await listen(server, { host: '127.0.0.1', port: 0 })
      endpoints[name] = { name, transport, tls, port: (server.address() as AddressInfo).port }
    } else {
      const socketPath = socket(name)
      await listen(server, { path: socketPath })
      endpoints[name] = { name, transport, tls, socketPath }
    }
  }
}

// Per-connection time in the 'connection' handling of some listeners: serve() puts its gate (the
// peer check) there, in front of Node's own HTTP set-up. Timed with and without the peer check,
// the difference of the medians is what the check adds per new connection, without the noise of
// everything else a request costs.
const gateTimes = new Map<EndpointName, number[]>()
function timeConnections(name: EndpointName, server: http.Server): void {
  const times: number[] = []
  gateTimes.set(name, times)
  const inner = server.listeners('connection') as Array<(...args: unknown[]) => void>
  server.removeAllListeners('connection')
  server.on('connection', function (this: unknown, ...args: unknown[]) {
    const t0 = performance.now()
    for (const listener of inner) listener.apply(this, args)
    if (times.length < 1_000_000) times.push((performance.now() - t0) * 1000)
  })
}

function medianAndReset(name: EndpointName): { medianUs: number; connections: number } {
  const times = gateTimes.get(name)
  if (!times || times.length === 0) return { medianUs: NaN, connections: 0 }
  const sorted = Float64Array.from(times).sort()
  times.length = 0
  return { medianUs: sorted[sorted.length >> 1]!, connections: sorted.length }
}

async function main(): Promise<void> {
  const app = createExpressApp()
  // Request logs go to a real file, as in production; run.ts truncates it between measurements.
  const logger = createLogger({ name: 'bench', destination: path.join(config.workDir, 'requests.log') })
  const uid = process.getuid?.() ?? 0
  const common = { logger, handleSignals: false, acknowledgePlaintextSocket: true, allowPlaintextTcp: true, limits: { keepAliveTimeoutMs: IDLE_MS } } satisfies ServerOptions
  const tls = { cert: config.pki.cert, key: config.pki.key, ca: config.pki.ca, clientAuth: 'require', watch: false } as const

  await startBare(false)
  await startBare(true)

  // serve() with the product's defaults: peer check on, request id, one log line per request.
  for (const security of ['plain', 'tls'] as const) {
    const socketPath = socket(`serve-unix-${security}`)
    const ipc = await serve(app, {
      ...common,
      socketPath,
      allow: { uids: [uid] },
      listen: [{ socketPath }, { host: '127.0.0.1', port: 0 }],
      ...(security === 'tls' ? { tls } : {}),
    })
    ipcServers.push(ipc)
    const tcp = ipc.listeners.find((l) => l.transport === 'tcp')!
    endpoints[`serve-unix-${security}`] = { name: `serve-unix-${security}`, transport: 'unix', tls: security === 'tls', socketPath }
    endpoints[`serve-tcp-${security}`] = {
      name: `serve-tcp-${security}`,
      transport: 'tcp',
      tls: security === 'tls',
      port: Number(tcp.address.slice(tcp.address.lastIndexOf(':') + 1)),
    }
  }

  // The same app on a plain server.listen(path): what serve() is measured against.
  const plainExpress = http.createServer(app)
  nodeServers.push(plainExpress)
  await listen(plainExpress, { path: socket('express-unix-plain') })
  endpoints['express-unix-plain'] = { name: 'express-unix-plain', transport: 'unix', tls: false, socketPath: socket('express-unix-plain') }

  // One thing changed at a time against serve-unix-plain.
  const variants = [
    ['serve-unix-plain-nopeer', { allow: false }],
    ['serve-unix-plain-nolog', { allow: { uids: [uid] }, requestLog: false }],
    // Nothing changed: the same options as serve-unix-plain (a TCP listener too), for the A/A pair.
    ['serve-unix-plain-twin', { allow: { uids: [uid] } }],
  ] as const
  const byName = new Map<EndpointName, IpcServer>([['serve-unix-plain', ipcServers[0]!]])
  for (const [name, extra] of variants) {
    const socketPath = socket(name)
    const listen = name === 'serve-unix-plain-twin' ? { listen: [{ socketPath }, { host: '127.0.0.1', port: 0 as const }] } : {}
    const ipc = await serve(app, { ...common, ...extra, ...listen, socketPath })
    ipcServers.push(ipc)
    byName.set(name, ipc)
    endpoints[name] = { name, transport: 'unix', tls: false, socketPath }
  }
  for (const name of ['serve-unix-plain', 'serve-unix-plain-nopeer'] as const) timeConnections(name, byName.get(name)!.server)

  // The services side of the whole hop: the example-shaped services app on Express over TCP
  // (today's hop), and through serve() on the socket with the defaults (peer check on, request
  // log on), plain and with mutual TLS.
  const services = createServicesApp()
  const servicesTcp = http.createServer(services)
  nodeServers.push(servicesTcp)
  await listen(servicesTcp, { host: '127.0.0.1', port: 0 })
  endpoints['svc-express-tcp'] = { name: 'svc-express-tcp', transport: 'tcp', tls: false, port: (servicesTcp.address() as AddressInfo).port }
  for (const [name, extra] of [
    ['svc-serve-unix', {}],
    ['svc-serve-unix-tls', { tls }],
  ] as const) {
    const socketPath = socket(name)
    ipcServers.push(await serve(services, { ...common, ...extra, socketPath, allow: { uids: [uid] } }))
    endpoints[name] = { name, transport: 'unix', tls: name.endsWith('tls'), socketPath }
  }

  send({ type: 'ready', endpoints: endpoints as Endpoints, pid: process.pid })
}

async function stop(): Promise<void> {
  await Promise.all(ipcServers.map((s) => s.close()))
  await Promise.all(
    nodeServers.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.close(() => resolve())
          s.closeAllConnections()
        }),
    ),
  )
}

runChild(main, stop, { gate: medianAndReset })
