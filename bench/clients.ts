import http from 'node:http'
import { createClient } from '@naaccord/ipc-client'
import { Pool } from 'undici'
import { closedLoop } from './closed-loop.js'
import type { Driver } from './driver.js'
import type { Endpoint } from './protocol.js'

export type ClientKind = 'ours' | 'undici-pool' | 'fetch-ours' | 'node-http-agent'

export const CLIENT_LABELS: Readonly<Record<ClientKind, string>> = {
  ours: 'our client: client.request() + text()',
  'undici-pool': 'raw undici Pool (socketPath) + text()',
  'fetch-ours': 'fetch() (Node global) with client.dispatcher',
  'node-http-agent': 'node:http keep-alive Agent (socketPath)',
}

function expectOk(status: number): void {
  if (status !== 200) throw new Error(`status ${status}`)
}

/** One request, body read to the end, the way each client is used in application code. */
function requester(kind: ClientKind, socketPath: string, connections: number): { once: () => Promise<void>; close: () => Promise<void> } {
  switch (kind) {
    case 'ours': {
      const client = createClient({ socketPath, connections, logger: false, acknowledgePlaintext: true })
      return {
        once: async () => {
          const res = await client.request({ path: '/' })
          expectOk(res.status)
          await res.text()
        },
        close: () => client.close(),
      }
    }
    case 'fetch-ours': {
      const client = createClient({ socketPath, connections, logger: false, acknowledgePlaintext: true })
      // Node 20 types fetch against its bundled undici; the dispatcher is undici 7 (works at run time).
      const init = { dispatcher: client.dispatcher } as unknown as RequestInit
      return {
        once: async () => {
          const res = await fetch('http://localhost/', init)
          expectOk(res.status)
          await res.text()
        },
        close: () => client.close(),
      }
    }
    case 'undici-pool': {
      const pool = new Pool('http://localhost', { socketPath, connections, pipelining: 1 })
      return {
        once: async () => {
          const res = await pool.request({ path: '/', method: 'GET' })
          expectOk(res.statusCode)
          await res.body.text()
        },
        close: () => pool.close(),
      }
    }
    case 'node-http-agent': {
      const agent = new http.Agent({ keepAlive: true, maxSockets: connections })
      return {
        once: () =>
          new Promise<void>((resolve, reject) => {
            const req = http.get({ socketPath, path: '/', agent, headers: { host: 'localhost' } }, (res) => {
              let body = ''
              res.setEncoding('utf8')
              res.on('data', (chunk: string) => (body += chunk))
              res.on('end', () => {
                try {
                  expectOk(res.statusCode ?? 0)
                  resolve()
                } catch (err) {
                  reject(err)
                }
              })
              res.on('error', reject)
            })
            req.on('error', reject)
          }),
        close: async () => agent.destroy(),
      }
    }
  }
}

/** A closed-loop driver for one client library over the Unix socket, `concurrency` requests in flight. */
export function clientDriver(kind: ClientKind, endpoint: Endpoint, concurrency: number): Driver {
  if (!endpoint.socketPath) throw new Error(`client rows run over the socket; ${endpoint.name} has none`)
  const { once, close } = requester(kind, endpoint.socketPath, concurrency)
  return {
    run: (durationMs, latency) => closedLoop(once, { concurrency, durationMs, ...(latency ? { latency } : {}) }),
    close,
  }
}
