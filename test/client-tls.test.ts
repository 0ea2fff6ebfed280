import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import https from 'node:https'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { createTestPki, issueCertificate, spkiPin, type TestPki } from '@naaccord/ipc-certs'
import { createClient, type ClientOptions, type IpcClient } from '@naaccord/ipc-client'
import { serve, type IpcServer } from '@naaccord/ipc-server'
import { deferCleanup, tempDir } from './helpers.js'

// The client's side of TLS: what a failure means, and what is retried. (Server-side TLS: tls.test.ts.)

const defer = deferCleanup()

interface Setup {
  socketPath: string
  pki: TestPki
}

async function setup(): Promise<Setup> {
  const t = tempDir()
  defer(t.cleanup)
  const pki = await createTestPki({ dir: path.join(t.dir, 'pki') })
  return { socketPath: path.join(t.dir, 's.sock'), pki }
}

async function start(s: Setup, handler: http.RequestListener): Promise<IpcServer> {
  const ipc = await serve(handler, {
    socketPath: s.socketPath,
    logger: false,
    handleSignals: false,
    tls: { cert: s.pki.server.certPath, key: s.pki.server.keyPath, ca: s.pki.ca.certPath },
  })
  defer(() => ipc.close())
  return ipc
}

function client(s: Setup, extra: ClientOptions = {}): IpcClient {
  const c = createClient({
    socketPath: s.socketPath,
    logger: false,
    ...extra,
    tls: { ca: s.pki.ca.certPath, cert: s.pki.client.certPath, key: s.pki.client.keyPath, ...extra.tls },
  })
  defer(() => c.destroy())
  return c
}

describe('TLS failures the client must not misread', () => {
  it('a TLS 1.3 server that drops a GET mid-request once: the GET is retried and succeeds', async () => {
    const s = await setup()
    let hits = 0
    // Each request on a fresh connection (Connection: close), the first one cut before any byte
    // of an answer: what a restart looks like, and not a refused client certificate.
    await start(s, (req, res) => {
      if (++hits === 1) return void req.socket.destroy()
      res.setHeader('connection', 'close')
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ hits }))
    })
    expect(await client(s, { retryDelayMs: 10 }).get('/')).toEqual({ hits: 2 })
  })

  it('a POST dropped the same way is a lost connection, not replayed', async () => {
    const s = await setup()
    let hits = 0
    await start(s, (req) => {
      hits++
      req.socket.destroy()
    })
    const err = await client(s, { retryDelayMs: 10 }).post('/', { a: 1 }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'IPC_CONNECTION_LOST' })
    expect(hits).toBe(1)
  })

  it('a real TLS alert (certificate required) is a refusal, and is not retried', async () => {
    const s = await setup()
    const ipc = await start(s, (_req, res) => res.end('no'))
    let handshakes = 0
    for (const tlsServer of ipc.tlsServers) tlsServer.on('tlsClientError', () => handshakes++)
    const c = client(s, { retryDelayMs: 10, tls: { ca: s.pki.ca.certPath, cert: undefined, key: undefined } })
    const err = await c.get('/').catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'IPC_TLS_CLIENT_CERT_REQUIRED' })
    expect(((err as Error).cause as NodeJS.ErrnoException | undefined)?.code).toMatch(/^ERR_SSL_\w+_ALERT_CERTIFICATE_REQUIRED$/)
    await sleep(50)
    expect(handshakes).toBe(1)
  })
})

describe('resumed TLS sessions', () => {
  it('a resumed session whose server certificate has expired since is refused (Node would accept it)', async () => {
    const s = await setup()
    // A server certificate that expires three seconds from now, on a plain Node https server
    // that closes the connection after each answer, so the next request resumes the session.
    const notAfter = new Date(Math.ceil((Date.now() + 3_000) / 1000) * 1000)
    const short = await issueCertificate({ ca: s.pki.ca, kind: 'server', names: ['localhost'], notBefore: new Date(Date.now() - 60_000), notAfter })
    const server = https.createServer({ cert: short.certPem, key: short.keyPem }, (_req, res) => {
      res.setHeader('connection', 'close')
      res.end('{}')
    })
    server.listen(s.socketPath)
    await once(server, 'listening')
    defer(() => new Promise((r) => server.close(r)))
    const c = client(s, { retries: 0, tls: { pin: spkiPin(short.certPem) } })
    await c.get('/') // full handshake: verified, session kept
    expect(Date.parse(new X509Certificate(short.certPem).validTo)).toBe(notAfter.getTime())
    await sleep(notAfter.getTime() - Date.now() + 1_100)
    const err = await c.get('/').catch((e: unknown) => e)
    // The connection did resume the session (Node keeps the first handshake's verdict for it,
    // authorized), and our check refused it anyway.
    expect(err).toMatchObject({ code: 'IPC_TLS_EXPIRED', subject: 'CN=localhost' })
    expect((err as Error).message).toContain('refused on a resumed TLS session')
    // A fresh client (no session to resume) is refused too, by the full handshake.
    await expect(client(s, { retries: 0 }).get('/')).rejects.toMatchObject({ code: 'IPC_TLS_EXPIRED' })
  })
})
