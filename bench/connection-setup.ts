import net from 'node:net'
import tls from 'node:tls'
import { closedLoop } from './closed-loop.js'
import type { ClientTls, Driver } from './driver.js'
import type { Endpoint } from './protocol.js'

/** full: a complete TLS 1.3 handshake per request; resumed: each connection resumes the last session ticket. */
export type Handshake = 'full' | 'resumed'

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', 'latin1')

/**
 * A new connection for every request (no keep-alive): connect, handshake when TLS, send one
 * request with `Connection: close`, read until the server closes. A raw socket rather than an
 * HTTP client, so that the row measures the transport and the server, not a client library.
 */
export function connectionSetupDriver(endpoint: Endpoint, material: ClientTls, handshake: Handshake, concurrency: number): Driver & { resumedShare(): number } {
  const where = endpoint.socketPath ? { path: endpoint.socketPath } : { host: '127.0.0.1', port: endpoint.port! }
  // One context for the whole row: building it (PEM parsing, CA store) per connection would cost
  // more than the handshake that is being measured.
  const secureContext = endpoint.tls ? tls.createSecureContext({ ca: material.ca, cert: material.cert, key: material.key, minVersion: 'TLSv1.3' }) : undefined
  let session: Buffer | undefined
  let handshakes = 0
  let resumed = 0
  const once = () =>
    new Promise<void>((resolve, reject) => {
      const socket = endpoint.tls
        ? tls.connect({
            ...where,
            secureContext,
            servername: 'localhost',
            ...(handshake === 'resumed' && session ? { session } : {}),
          })
        : net.connect(where)
      socket.setNoDelay(true)
      if (endpoint.tls && handshake === 'resumed') socket.on('session', (s: Buffer) => (session = s))
      let head = ''
      socket.once(endpoint.tls ? 'secureConnect' : 'connect', () => {
        if (endpoint.tls) {
          handshakes++
          if ((socket as tls.TLSSocket).isSessionReused()) resumed++
        }
        socket.write(REQUEST)
      })
      socket.on('data', (chunk: Buffer) => {
        if (head.length < 12) head += chunk.toString('latin1', 0, 12)
      })
      socket.once('error', reject)
      socket.once('close', () => {
        if (head.startsWith('HTTP/1.1 200')) resolve()
        else reject(new Error(`no 200 response on a new connection (got ${JSON.stringify(head.slice(0, 12))})`))
      })
    })
  return {
    run: (durationMs, latency) => closedLoop(once, { concurrency, durationMs, ...(latency ? { latency } : {}) }),
    async close() {},
    resumedShare: () => (handshakes === 0 ? 0 : resumed / handshakes),
  }
}
