import { performance } from 'node:perf_hooks'
import autocannon from 'autocannon'
import type { Driver, ClientTls } from './driver.js'
import type { LatencyRecorder } from './latency.js'
import type { Endpoint } from './protocol.js'

/**
 * Keep-alive load from autocannon, no pipelining, `connections` connections, over TCP or the
 * Unix socket (autocannon's `socketPath`), plain or mutual TLS 1.3 (autocannon's `tlsOptions`; it
 * always sets rejectUnauthorized: false, so it presents its certificate but does not check the
 * server's). Latencies are taken from autocannon's per-response event, at full precision.
 */
export function autocannonDriver(endpoint: Endpoint, tls: ClientTls, connections: number): Driver {
  const scheme = endpoint.tls ? 'https' : 'http'
  const urlPath = endpoint.path ?? '/'
  const url = endpoint.transport === 'tcp' ? `${scheme}://127.0.0.1:${endpoint.port}${urlPath}` : `${scheme}://localhost${urlPath}`
  return {
    run(durationMs: number, latency?: LatencyRecorder) {
      return new Promise((resolve, reject) => {
        let completed = 0
        let errors = 0
        const started = performance.now()
        let last = started
        autocannon(
          {
            url,
            ...(endpoint.socketPath ? { socketPath: endpoint.socketPath } : {}),
            connections,
            pipelining: 1,
            duration: durationMs / 1000,
            // autocannon checks for the end of the run on this tick; the default 1 s overshoots short runs.
            sampleInt: 50,
            headers: { host: 'localhost' },
            ...(endpoint.tls
              ? { tlsOptions: { ca: tls.ca, cert: tls.cert, key: tls.key, servername: 'localhost', minVersion: 'TLSv1.3' as const }, servername: 'localhost' }
              : {}),
            setupClient(client) {
              client.on('response', (status: number, _bytes: number, ms: number) => {
                if (status !== 200) {
                  errors++
                  return
                }
                last = performance.now()
                completed++
                latency?.record(ms)
              })
            },
          },
          (err, result) => {
            if (err) {
              reject(err)
              return
            }
            const failed = errors + result.errors + result.timeouts
            resolve({
              completed,
              errors: failed,
              firstError: failed > 0 ? `autocannon: ${result.errors} errors, ${result.timeouts} timeouts, ${errors} non-200` : undefined,
              elapsedMs: last - started,
            })
          },
        )
      })
    },
    async close() {},
  }
}
