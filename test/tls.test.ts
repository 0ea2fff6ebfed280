import { once } from 'node:events'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import tls from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import { createTestPki, type TestPki } from '@naaccord/ipc-certs'
import { createClient, type ClientOptions, type IpcClient } from '@naaccord/ipc-client'
import { serve, type IpcServer, type ServerOptions } from '@naaccord/ipc-server'
import { memoryLogger, tempDir } from './helpers.js'

let cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.reverse()) await c()
  cleanups = []
})

interface Setup {
  dir: string
  socketPath: string
  pki: TestPki
}

/** A temp folder with a socket path and a test PKI inside it. */
async function setup(pkiOptions: Parameters<typeof createTestPki>[0] = {}): Promise<Setup> {
  const t = tempDir()
  cleanups.push(t.cleanup)
  const pki = await createTestPki({ ...pkiOptions, dir: path.join(t.dir, 'pki') })
  return { dir: t.dir, socketPath: path.join(t.dir, 's.sock'), pki }
}

/** Answers with who the server thinks is connected. */
const whoami: http.RequestListener = (req, res) => {
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify({ url: req.url, peer: req.peer }))
}

async function start(s: Setup, extra: ServerOptions = {}, handler: http.RequestListener = whoami): Promise<IpcServer> {
  const ipc = await serve(handler, {
    socketPath: s.socketPath,
    logger: false,
    handleSignals: false,
    ...extra,
    tls: { cert: s.pki.server.certPath, key: s.pki.server.keyPath, ca: s.pki.ca.certPath, ...extra.tls },
  })
  cleanups.push(() => ipc.close())
  return ipc
}

function client(s: Setup, extra: ClientOptions = {}): IpcClient {
  const c = createClient({
    socketPath: extra.url === undefined ? s.socketPath : undefined,
    logger: false,
    retries: 0,
    ...extra,
    tls: { ca: s.pki.ca.certPath, cert: s.pki.client.certPath, key: s.pki.client.keyPath, ...extra.tls },
  } as ClientOptions)
  cleanups.push(() => c.destroy())
  return c
}

const errorOf = (p: Promise<unknown>): Promise<unknown> => p.then(
  () => {
    throw new Error('expected a rejection')
  },
  (e: unknown) => e,
)

const tcpPort = (ipc: IpcServer): number => Number(ipc.listeners.find((l) => l.transport === 'tcp')!.address.split(':').pop())

interface Whoami {
  url: string
  peer: { transport: string; uid?: number; certificate?: { commonName?: string; uris: string[]; fingerprint256: string } }
}

describe('mutual TLS happy path', () => {
  it('serves the same app over the socket and over TCP, with the client certificate on req.peer', async () => {
    const s = await setup()
    const ipc = await start(s, { listen: [{ socketPath: s.socketPath }, { host: '127.0.0.1', port: 0 }] })
    expect(ipc.listeners.map((l) => [l.transport, l.tls])).toEqual([
      ['unix', true],
      ['tcp', true],
    ])
    const overSocket = await client(s).get<Whoami>('/who')
    expect(overSocket.peer.transport).toBe('unix')
    expect(overSocket.peer.certificate?.commonName).toBe('web-server')
    // The kernel peer check still runs under TLS: the uid comes from SO_PEERCRED.
    expect(overSocket.peer.uid).toBe(process.getuid!())

    const port = tcpPort(ipc)
    const overTcp = await client(s, { url: `https://localhost:${port}` }).get<Whoami>('/who')
    expect(overTcp.peer.transport).toBe('tcp')
    expect(overTcp.peer.certificate?.commonName).toBe('web-server')
    expect(overTcp.peer.certificate?.uris).toEqual(['urn:naaccord:client:web-server'])
    expect(overTcp.peer.uid).toBeUndefined()
  })
})

describe('refused handshakes', () => {
  it('a client without a certificate -> IPC_TLS_CLIENT_CERT_REQUIRED', async () => {
    const s = await setup()
    await start(s)
    const c = client(s, { tls: { ca: s.pki.ca.certPath, cert: undefined, key: undefined } })
    const err = await errorOf(c.get('/who'))
    expect(err).toMatchObject({ code: 'IPC_TLS_CLIENT_CERT_REQUIRED' })
  })

  it('a client certificate from another CA is refused, and the server logs the failed handshake', async () => {
    const s = await setup()
    const { logger, lines } = memoryLogger()
    await start(s, { logger })
    const c = client(s, { tls: { cert: s.pki.otherClient.certPath, key: s.pki.otherClient.keyPath } })
    const err = await errorOf(c.get('/who'))
    expect(err).toMatchObject({ code: 'IPC_TLS_CLIENT_CERT_REQUIRED' })
    expect(lines.some((l) => l.msg === 'TLS handshake failed')).toBe(true)
  })

  it('a server certificate from another CA -> IPC_TLS_UNTRUSTED naming the subject', async () => {
    const s = await setup()
    // The server's own certificate must chain to its CA bundle, so it trusts both CAs here.
    await start(s, { tls: { cert: s.pki.otherServer.certPath, key: s.pki.otherServer.keyPath, ca: s.pki.ca.certPem + s.pki.otherCa.certPem } })
    const err = await errorOf(client(s).get('/who'))
    expect(err).toMatchObject({ code: 'IPC_TLS_UNTRUSTED', subject: 'CN=localhost' })
    expect((err as Error).message).toContain('CN=localhost')
  })

  it('serve() refuses an expired certificate at start; a client meeting one -> IPC_TLS_EXPIRED', async () => {
    const s = await setup()
    await expect(start(s, { tls: { cert: s.pki.expiredServer.certPath, key: s.pki.expiredServer.keyPath, ca: s.pki.ca.certPath } })).rejects.toMatchObject({
      code: 'IPC_TLS_CONFIG',
    })
    // Another server stack can still present one: a raw https server.
    const server = https.createServer({ cert: s.pki.expiredServer.certPem, key: s.pki.expiredServer.keyPem }, (_req, res) => res.end('no'))
    server.listen(s.socketPath)
    await once(server, 'listening')
    cleanups.push(() => new Promise((r) => server.close(r)))
    const err = await errorOf(client(s).get('/who'))
    expect(err).toMatchObject({ code: 'IPC_TLS_EXPIRED', subject: 'CN=localhost' })
  })

  it('a servername the certificate does not carry -> IPC_TLS_HOSTNAME', async () => {
    const s = await setup()
    await start(s)
    const err = await errorOf(client(s, { tls: { servername: 'services.internal' } }).get('/who'))
    expect(err).toMatchObject({ code: 'IPC_TLS_HOSTNAME' })
  })
})
