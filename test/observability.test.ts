// Prometheus metrics on their own loopback listener, and W3C trace context from the web server's
// incoming request through our client into the services server's request log.
import { execFile } from 'node:child_process'
import { chmodSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import express from 'express'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { createTestPki } from '@naaccord/ipc-certs'
import { clientMetrics, createClient, propagationHeaders } from '@naaccord/ipc-client'
import { flushLogger, serve, serveMetrics } from '@naaccord/ipc-server'
import { NOBODY, deferCleanup, isRoot, memoryLogger, tempDir } from './helpers.js'

const execFileAsync = promisify(execFile)
const defer = deferCleanup()

/** One sample value from Prometheus text, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]))
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3])
  }
  return undefined
}

describe('metrics', () => {
  it('counts requests by route template and status, refusals and TLS failures by reason, open connections and days to expiry, on a loopback listener', async () => {
    const t = tempDir()
    defer(t.cleanup)
    chmodSync(t.dir, 0o711)
    const pki = await createTestPki({ dir: path.join(t.dir, 'pki'), days: 90 })
    const socketPath = path.join(t.dir, 's.sock')
    const app = express()
    app.get('/reports/:id', (req, res) => void res.json({ id: req.params.id }))
    const ipc = await serve(app, {
      socketPath,
      socketMode: 0o666,
      logger: false,
      handleSignals: false,
      requestLog: false,
      tls: { cert: pki.server.certPath, key: pki.server.keyPath, ca: pki.ca.certPath, allowClients: ['web-server'] },
    })
    defer(() => ipc.close())
    await expect(serveMetrics(ipc, { listen: { host: '0.0.0.0', port: 0 } })).rejects.toMatchObject({ code: 'IPC_INVALID_OPTION', option: 'metrics.listen.host' })
    const metrics = await serveMetrics(ipc, { listen: { host: '127.0.0.1', port: 0 } })
    defer(() => metrics.close())

    const client = createClient({ socketPath, logger: false, retries: 0, tls: { ca: pki.ca.certPath, cert: pki.client.certPath, key: pki.client.keyPath } })
    defer(() => client.destroy())
    await client.get('/reports/1')
    await client.get('/reports/2')
    await client.get('/healthz')
    await expect(client.get('/nope')).rejects.toMatchObject({ status: 404 })
    const otherCa = createClient({ socketPath, logger: false, retries: 0, tls: { ca: pki.ca.certPath, cert: pki.otherClient.certPath, key: pki.otherClient.keyPath } })
    defer(() => otherCa.destroy())
    // Node's server closes without a TLS alert for an untrusted client certificate: a lost connection.
    await expect(otherCa.get('/reports/3')).rejects.toMatchObject({ code: 'IPC_CONNECTION_LOST' })
    if (isRoot) {
      // uid 65534 is outside the allow policy: cut before the handshake.
      await expect(execFileAsync('curl', ['-sS', '--max-time', '5', '--unix-socket', socketPath, '-k', 'https://localhost/'], { uid: NOBODY, gid: NOBODY, cwd: '/' })).rejects.toBeTruthy()
    }

    const res = await fetch(`http://${metrics.address}/metrics`)
    expect(res.status).toBe(200)
    const text = await res.text()
    expect(sample(text, 'naaccord_ipc_http_requests_total', { method: 'GET', route: '/reports/:id', status: '200' })).toBe(2)
    expect(sample(text, 'naaccord_ipc_http_requests_total', { route: '/healthz', status: '200' })).toBe(1)
    expect(sample(text, 'naaccord_ipc_http_requests_total', { route: 'unmatched', status: '404' })).toBe(1)
    expect(sample(text, 'naaccord_ipc_http_request_duration_seconds_count', { route: '/reports/:id', status: '200' })).toBe(2)
    expect(sample(text, 'naaccord_ipc_tls_handshake_failures_total', { reason: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' })).toBe(1)
    if (isRoot) expect(sample(text, 'naaccord_ipc_refused_connections_total', { reason: 'allow_policy' })).toBeGreaterThanOrEqual(1)
    expect(sample(text, 'naaccord_ipc_open_connections', { transport: 'unix' })).toBeGreaterThanOrEqual(1) // the client's kept-alive connection
    const days = sample(text, 'naaccord_ipc_certificate_days_to_expiry')!
    expect(days).toBeGreaterThan(89)
    expect(days).toBeLessThan(90)
    expect((await fetch(`http://${metrics.address}/other`)).status).toBe(404)
  })
})

describe('client metrics', () => {
  it('counts requests by outcome, retries and errors by code, and pool connections, per client', async () => {
    const t = tempDir()
    defer(t.cleanup)
    const socketPath = path.join(t.dir, 's.sock')
    const ipc = await serve((_req, res) => res.end('{}'), { socketPath, logger: false, handleSignals: false, requestLog: false, acknowledgePlaintextSocket: true })
    defer(() => ipc.close())
    const register = new Registry()
    const client = createClient({ socketPath, logger: false, acknowledgePlaintext: true })
    defer(() => client.destroy())
    defer((await clientMetrics(client, { register })).close)
    // Another client in the same process is not counted by the first one's metrics.
    const missing = createClient({ socketPath: path.join(t.dir, 'missing.sock'), logger: false, retries: 2, retryDelayMs: 1 })
    defer(() => missing.destroy())
    const missingRegister = new Registry()
    defer((await clientMetrics(missing, { register: missingRegister })).close)

    await client.get('/a')
    await client.post('/b', { x: 1 })
    await expect(missing.get('/c')).rejects.toMatchObject({ code: 'IPC_SERVICE_UNAVAILABLE' })
    const text = await register.metrics()
    expect(sample(text, 'naaccord_ipc_client_requests_total', { method: 'GET', outcome: 'ok' })).toBe(1)
    expect(sample(text, 'naaccord_ipc_client_requests_total', { method: 'POST', outcome: 'ok' })).toBe(1)
    expect(sample(text, 'naaccord_ipc_client_errors_total')).toBeUndefined()
    expect(sample(text, 'naaccord_ipc_client_pool_connections')).toBeGreaterThanOrEqual(1)
    const other = await missingRegister.metrics()
    expect(sample(other, 'naaccord_ipc_client_errors_total', { code: 'IPC_SERVICE_UNAVAILABLE' })).toBe(1)
    expect(sample(other, 'naaccord_ipc_client_retries_total', { code: 'IPC_SERVICE_UNAVAILABLE' })).toBe(2)
    expect(sample(other, 'naaccord_ipc_client_requests_total', { method: 'GET', outcome: 'error' })).toBe(1)
  })
})

describe('trace context', () => {
  it('the client forwards traceparent/tracestate and x-request-id from the incoming request; the request log carries the trace id', async () => {
    const t = tempDir()
    defer(t.cleanup)
    const socketPath = path.join(t.dir, 's.sock')
    const { logger, lines } = memoryLogger()
    const ipc = await serve(
      (req, res) => {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ traceparent: req.headers.traceparent ?? null, tracestate: req.headers.tracestate ?? null }))
      },
      { socketPath, logger, handleSignals: false, acknowledgePlaintextSocket: true },
    )
    defer(() => ipc.close())
    const client = createClient({ socketPath, logger: false, retries: 0, acknowledgePlaintext: true })
    defer(() => client.destroy())
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    // What the web server received from its own caller (e.g. a browser with an OpenTelemetry SDK).
    const incoming = { headers: { traceparent, tracestate: 'congo=t61rcWkgMzE', 'x-request-id': 'web-42', cookie: 'secret' } }
    const headers = propagationHeaders(incoming)
    expect(headers).toEqual({ traceparent, tracestate: 'congo=t61rcWkgMzE', 'x-request-id': 'web-42' })
    expect(await client.get('/traced', { headers })).toEqual({ traceparent, tracestate: 'congo=t61rcWkgMzE' })
    // The request log is written in batches: flushLogger() writes what it holds.
    await flushLogger(logger)
    const line = lines.find((l) => l.msg === 'request' && l.path === '/traced')
    expect(line).toMatchObject({ reqId: 'web-42', traceId: '4bf92f3577b34da6a3ce929d0e0e4736' })

    // A malformed traceparent is not forwarded (nor its tracestate), and not logged.
    expect(propagationHeaders({ headers: { traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01', tracestate: 'a=b' } })).toEqual({})
    await client.get('/plain', { headers: { traceparent: 'garbage' } })
    await flushLogger(logger)
    const plain = lines.find((l) => l.msg === 'request' && l.path === '/plain')
    expect(plain).toBeDefined()
    expect(plain!.traceId).toBeUndefined()
  })
})
