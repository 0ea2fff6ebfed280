import net from 'node:net'
import { performance } from 'node:perf_hooks'
import tls from 'node:tls'
import type { LoopResult } from './closed-loop.js'
import type { ClientTls, Driver } from './driver.js'
import type { LatencyRecorder } from './latency.js'
import type { Endpoint } from './protocol.js'

const HEADER_END = Buffer.from('\r\n\r\n')

/**
 * Keep-alive load on connections that live as long as the driver: `connections` HTTP/1.1
 * connections (TCP or the Unix socket, plain or mutual TLS 1.3 with the server's certificate
 * checked), each a closed loop of GETs without pipelining. Unlike a load tool started per
 * measurement, the connections are opened once (and again only if the server closed them):
 * no measurement pays connection set-up or a cold connection, so the rounds of a row differ
 * less. Responses are read by their Content-Length (every bench server sends one); anything
 * else counts as an error. The load generator itself costs a few µs per request.
 */
export function keepAliveDriver(endpoint: Endpoint, clientTls: ClientTls, connections: number): Driver {
  const request = Buffer.from(`GET ${endpoint.path ?? '/'} HTTP/1.1\r\nHost: localhost\r\n\r\n`)
  const pool: Connection[] = []

  async function ready(): Promise<void> {
    for (let i = 0; i < connections; i++) {
      const c = pool[i]
      if (c === undefined || c.closed) pool[i] = await openConnection(endpoint, clientTls)
    }
  }

  return {
    async run(durationMs: number, latency?: LatencyRecorder): Promise<LoopResult> {
      await ready()
      const started = performance.now()
      const deadline = started + durationMs
      let completed = 0
      let errors = 0
      let firstError: string | undefined
      let last = started
      await Promise.all(
        pool.map(
          (c) =>
            new Promise<void>((resolve) => {
              const next = () => {
                if (performance.now() >= deadline || c.closed) {
                  resolve()
                  return
                }
                const t0 = performance.now()
                c.send(request, (status, err) => {
                  if (err || status !== 200) {
                    errors++
                    firstError ??= err ? err.message : `status ${status}`
                    if (c.closed) {
                      resolve()
                      return
                    }
                  } else {
                    last = performance.now()
                    latency?.record(last - t0)
                    completed++
                  }
                  next()
                })
              }
              next()
            }),
        ),
      )
      return { completed, errors, firstError, elapsedMs: last - started }
    },
    async close() {
      for (const c of pool) c.destroy()
      pool.length = 0
    },
  }
}

interface Connection {
  readonly closed: boolean
  /** Write one request; `done` is called once its whole response has arrived (or the connection failed). */
  send(request: Buffer, done: (status: number, err?: Error) => void): void
  destroy(): void
}

function openConnection(endpoint: Endpoint, clientTls: ClientTls): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const where = endpoint.transport === 'unix' ? { path: endpoint.socketPath! } : { host: '127.0.0.1', port: endpoint.port! }
    const socket: net.Socket = endpoint.tls
      ? tls.connect({ ...where, ca: clientTls.ca, cert: clientTls.cert, key: clientTls.key, servername: 'localhost', minVersion: 'TLSv1.3' }, () => resolve(connection))
      : net.connect(where, () => resolve(connection))
    socket.setNoDelay(true)
    let closed = false
    let pending: ((status: number, err?: Error) => void) | undefined
    let buffered: Buffer = Buffer.alloc(0)
    const fail = (err: Error) => {
      closed = true
      const done = pending
      pending = undefined
      done?.(0, err)
    }
    socket.on('error', (err) => {
      if (!pending) reject(err)
      fail(err)
    })
    socket.on('close', () => fail(new Error('connection closed by the server')))
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
      const end = buffered.indexOf(HEADER_END)
      if (end === -1) return
      const head = buffered.toString('latin1', 0, end)
      const status = Number(head.slice(9, 12))
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head)
      if (!m) {
        socket.destroy()
        fail(new Error(`response without Content-Length: ${head.split('\r\n')[0]}`))
        return
      }
      const total = end + HEADER_END.length + Number(m[1])
      if (buffered.length < total) return
      buffered = buffered.subarray(total)
      if (/\r\nconnection:\s*close/i.test(head)) closed = true
      const done = pending
      pending = undefined
      done?.(status)
    })
    const connection: Connection = {
      get closed() {
        return closed
      },
      send(request, done) {
        pending = done
        socket.write(request)
      },
      destroy() {
        closed = true
        socket.destroy()
      },
    }
  })
}
