// The web child: the public web server of the whole hop (Express on TCP 127.0.0.1), once per way
// of calling services. run.ts starts it after the server child (which runs the services side),
// and asks it for process.cpuUsage() around each measurement, as it asks the server child.
import { readFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createClient, type IpcClient } from '@naaccord/ipc-client'
import { Agent, request } from 'undici'
import { createWebApp, type FetchReport } from './apps.js'
import { runChild, send } from './child-runtime.js'
import type { Endpoint, EndpointName, Endpoints, WebChildConfig } from './protocol.js'

const config = JSON.parse(process.argv[2] ?? '') as WebChildConfig
const REPORT_PATH = '/api/reports/42'
const CONNECTIONS = 32

const servers: http.Server[] = []
const closers: Array<() => Promise<unknown>> = []

/** Today's hop: node:http with a keep-alive Agent to Express on TCP loopback. */
function viaNodeHttpAgent(): FetchReport {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS })
  closers.push(async () => agent.destroy())
  return (id, requestId) =>
    new Promise((resolve, reject) => {
      const req = http.get(
        { host: '127.0.0.1', port: config.upstream.expressPort, path: `/reports/${encodeURIComponent(id)}`, agent, headers: { 'x-request-id': requestId } },
        (res) => {
          let body = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => (body += chunk))
          res.on('end', () => {
            if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`))
            else resolve(JSON.parse(body))
          })
          res.on('error', reject)
        },
      )
      req.on('error', reject)
    })
}

/** Today's hop with undici instead: an undici Agent to Express on TCP loopback. */
function viaUndiciAgent(): FetchReport {
  const dispatcher = new Agent({ connections: CONNECTIONS })
  closers.push(() => dispatcher.close())
  const origin = `http://127.0.0.1:${config.upstream.expressPort}`
  return async (id, requestId) => {
    const res = await request(`${origin}/reports/${encodeURIComponent(id)}`, { dispatcher, headers: { 'x-request-id': requestId } })
    if (res.statusCode !== 200) {
      await res.body.dump()
      throw new Error(`status ${res.statusCode}`)
    }
    return res.body.json()
  }
}

/** naaccord-ipc: our client over the socket, with its defaults (our logger, retries, limits). */
function viaOurClient(tls: boolean): FetchReport {
  const client: IpcClient = tls
    ? createClient({ socketPath: config.upstream.tlsSocketPath, tls: { ca: config.pki.ca, cert: config.pki.cert, key: config.pki.key, watch: false } })
    : createClient({ socketPath: config.upstream.socketPath, acknowledgePlaintext: true })
  closers.push(() => client.close())
  return (id, requestId) => client.get(`/reports/${encodeURIComponent(id)}`, { headers: { 'x-request-id': requestId } })
}

async function listenWeb(name: EndpointName, fetchReport: FetchReport): Promise<Endpoint> {
  const server = http.createServer(createWebApp(fetchReport))
  // The load generator keeps its connections for the whole run (bench/keep-alive.ts).
  server.keepAliveTimeout = 300_000
  servers.push(server)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve())
  })
  return { name, transport: 'tcp', tls: false, port: (server.address() as AddressInfo).port, path: REPORT_PATH }
}

async function main(): Promise<void> {
  // Fail early if the PEM paths are wrong, with the path in the message.
  for (const file of [config.pki.ca, config.pki.cert, config.pki.key]) readFileSync(file)
  const endpoints: Partial<Record<EndpointName, Endpoint>> = {
    'hop-agent': await listenWeb('hop-agent', viaNodeHttpAgent()),
    'hop-undici': await listenWeb('hop-undici', viaUndiciAgent()),
    'hop-ours': await listenWeb('hop-ours', viaOurClient(false)),
    'hop-ours-tls': await listenWeb('hop-ours-tls', viaOurClient(true)),
  }
  send({ type: 'ready', endpoints: endpoints as Endpoints, pid: process.pid })
}

async function stop(): Promise<void> {
  await Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.close(() => resolve())
          s.closeAllConnections()
        }),
    ),
  )
  await Promise.all(closers.map((c) => c()))
}

runChild(main, stop)
