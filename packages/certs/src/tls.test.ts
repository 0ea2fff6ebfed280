import { spawn } from 'node:child_process'
import type { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import tls from 'node:tls'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { spkiPin } from './spki-pin.js'
import { createTestPki, type TestPki } from './test-pki.js'

// The issued certificates against real TLS stacks: Node's, OpenSSL's s_client and curl.

let pki: TestPki
let closers: (() => Promise<unknown>)[]

beforeEach(async () => {
  pki = await createTestPki()
  closers = []
})

afterEach(async () => {
  for (const close of closers.reverse()) await close()
  await pki.cleanup()
})

/** A mutual-TLS server on a Unix socket in the PKI folder; resolves its socket path and the sockets it accepted/rejected. */
async function mtlsServer(cert = pki.server) {
  const socketPath = path.join(pki.dir, `mtls-${closers.length}.sock`)
  const accepted: tls.TLSSocket[] = []
  const rejected: (string | null | undefined)[] = []
  const server = tls.createServer({ key: cert.keyPem, cert: cert.certPem, ca: pki.ca.certPem, requestCert: true, rejectUnauthorized: true }, (socket) => {
    accepted.push(socket)
    socket.end(`hello ${socket.getPeerCertificate().subject.CN}`)
  })
  server.on('tlsClientError', (_err, socket) => rejected.push(socket.authorizationError?.toString()))
  server.listen(socketPath)
  await once(server, 'listening')
  closers.push(() => new Promise((resolve) => server.close(resolve)))
  return { socketPath, accepted, rejected }
}

/** Connect with `options`; resolve what the server said, or reject with the TLS error. */
async function talk(options: tls.ConnectionOptions): Promise<{ authorized: boolean; peer: X509Certificate | undefined; body: string }> {
  const socket = tls.connect(options)
  let body = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => (body += chunk))
  await once(socket, 'secureConnect')
  const peer = socket.getPeerX509Certificate()
  await once(socket, 'end')
  socket.destroy()
  return { authorized: socket.authorized, peer, body }
}

/** Run a tool with stdin closed; resolve its exit code and output. */
async function tool(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: 10_000 })
  child.stdin.end()
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d))
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, out }
}

describe('mutual TLS with issued certificates', () => {
  it('completes a Node handshake on a Unix socket, both sides authorised', async () => {
    const server = await mtlsServer()
    const { authorized, peer, body } = await talk({
      path: server.socketPath,
      servername: 'localhost',
      ca: pki.ca.certPem,
      key: pki.client.keyPem,
      cert: pki.client.certPem,
    })
    expect(authorized).toBe(true)
    expect(body).toBe('hello web-server')
    expect(server.accepted).toHaveLength(1)
    const accepted = server.accepted[0] as tls.TLSSocket
    expect(accepted.authorized).toBe(true)
    expect(accepted.getPeerCertificate().subjectaltname).toBe('DNS:web-server, URI:urn:naaccord:client:web-server')
    // The pin a client would configure matches what the server presents.
    expect(peer && spkiPin(peer)).toBe(spkiPin(pki.server.certPem))
  })

  it('completes an OpenSSL s_client handshake on the Unix socket', async () => {
    const server = await mtlsServer()
    const { out } = await tool('openssl', [
      's_client', '-unix', server.socketPath, '-servername', 'localhost', '-verify_hostname', 'localhost', '-verify_return_error', '-ign_eof',
      '-CAfile', pki.ca.certPath, '-cert', pki.client.certPath, '-key', pki.client.keyPath,
    ])
    // Not the exit code: OpenSSL 3 exits 1 on "unexpected eof" because Node closes without close_notify.
    expect(out).toMatch(/Verify return code: 0 \(ok\)/)
    expect(out).toMatch(/hello web-server/)
    expect(server.accepted).toHaveLength(1)
  })

  it('serves curl over https with client certificate, by name, by IP SAN and with the SPKI pin', async () => {
    const server = https.createServer(
      { key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.ca.certPem, requestCert: true, rejectUnauthorized: true },
      (req, res) => res.end(`hello ${(req.socket as tls.TLSSocket).getPeerCertificate().subject.CN}`),
    )
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    closers.push(() => new Promise((resolve) => server.close(resolve)))
    const { port } = server.address() as AddressInfo
    const client = ['--silent', '--show-error', '--max-time', '5', '--cacert', pki.ca.certPath, '--cert', pki.client.certPath, '--key', pki.client.keyPath]

    const byName = await tool('curl', [...client, '--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}/`])
    expect(byName).toEqual({ code: 0, out: 'hello web-server' })
    const byIp = await tool('curl', [...client, '--pinnedpubkey', `sha256//${spkiPin(pki.server.certPem)}`, `https://127.0.0.1:${port}/`])
    expect(byIp).toEqual({ code: 0, out: 'hello web-server' })

    const wrongPin = await tool('curl', [...client, '--pinnedpubkey', `sha256//${spkiPin(pki.otherServer.certPem)}`, `https://127.0.0.1:${port}/`])
    expect(wrongPin.code).toBe(90) // CURLE_SSL_PINNEDPUBKEYNOTMATCH
    const noClientCert = await tool('curl', ['--silent', '--max-time', '5', '--cacert', pki.ca.certPath, `https://127.0.0.1:${port}/`])
    expect(noClientCert.code).not.toBe(0)
  })

  it('rejects an expired server certificate with CERT_HAS_EXPIRED', async () => {
    const server = await mtlsServer(pki.expiredServer)
    const err = await talk({ path: server.socketPath, servername: 'localhost', ca: pki.ca.certPem, key: pki.client.keyPem, cert: pki.client.certPem }).catch((e: NodeJS.ErrnoException) => e)
    expect((err as NodeJS.ErrnoException).code).toBe('CERT_HAS_EXPIRED')
  })

  it('rejects an expired client certificate with CERT_HAS_EXPIRED on the server', async () => {
    const server = await mtlsServer()
    await talk({ path: server.socketPath, servername: 'localhost', ca: pki.ca.certPem, key: pki.expiredClient.keyPem, cert: pki.expiredClient.certPem }).catch(() => {})
    await waitFor(() => server.rejected.length > 0)
    expect(server.rejected).toEqual(['CERT_HAS_EXPIRED'])
    expect(server.accepted).toHaveLength(0)
  })

  it('rejects certificates from another CA, on either side', async () => {
    const server = await mtlsServer()
    await talk({ path: server.socketPath, servername: 'localhost', ca: pki.ca.certPem, key: pki.otherClient.keyPem, cert: pki.otherClient.certPem }).catch(() => {})
    await waitFor(() => server.rejected.length > 0)
    expect(server.rejected).toEqual(['UNABLE_TO_VERIFY_LEAF_SIGNATURE'])
    expect(server.accepted).toHaveLength(0)

    const other = await mtlsServer(pki.otherServer)
    const err = await talk({ path: other.socketPath, servername: 'localhost', ca: pki.ca.certPem, key: pki.client.keyPem, cert: pki.client.certPem }).catch((e: NodeJS.ErrnoException) => e)
    expect((err as NodeJS.ErrnoException).code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE')
  })

  it('rejects a server certificate for another name', async () => {
    const server = await mtlsServer()
    const err = await talk({ path: server.socketPath, servername: 'services.internal', ca: pki.ca.certPem, key: pki.client.keyPem, cert: pki.client.certPem }).catch((e: NodeJS.ErrnoException) => e)
    expect((err as NodeJS.ErrnoException).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID')
  })
})

async function waitFor(predicate: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms
  while (!predicate()) {
    if (Date.now() > until) throw new Error('timed out waiting')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
