// SPIFFE IDs: certificates our CLI issues in X.509-SVID shape (one URI SAN spiffe://...), a
// server that admits clients by SPIFFE ID (allowClients), and a client that checks the server's
// SPIFFE ID (tls.serverId) instead of a host name.
import { X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { main } from '@naaccord/ipc-cli'
import { rotate } from '@naaccord/ipc-certs'
import { createClient, type ClientOptions } from '@naaccord/ipc-client'
import { serve, type Peer } from '@naaccord/ipc-server'
import { uriSans } from '@naaccord/ipc-shared'
import { deferCleanup, tempDir } from './helpers.js'

const defer = deferCleanup()
const SERVER_ID = 'spiffe://example.org/ns/prod/services'
const CLIENT_ID = 'spiffe://example.org/ns/prod/web-server'

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const code = await main(argv, { stdout: (t) => void (out += t), stderr: (t) => void (err += t) })
  return { code, out, err }
}

/** A certs folder made with the CLI: CA, a server SVID, two client SVIDs. */
async function svids() {
  const t = tempDir()
  defer(t.cleanup)
  const dir = path.join(t.dir, 'certs')
  expect((await cli('certs', 'init', '--dir', dir)).code).toBe(0)
  const issued = await cli('certs', 'issue', 'server', '--dir', dir, '--name', 'services', '--spiffe-id', SERVER_ID)
  expect(issued.code).toBe(0)
  expect((await cli('certs', 'issue', 'client', '--dir', dir, '--name', 'web-server', '--spiffe-id', CLIENT_ID)).code).toBe(0)
  expect((await cli('certs', 'issue', 'client', '--dir', dir, '--name', 'reports', '--spiffe-id', 'spiffe://example.org/ns/prod/reports')).code).toBe(0)
  const f = (name: string) => path.join(dir, name)
  return { dir, socketPath: path.join(t.dir, 's.sock'), f }
}

describe('SPIFFE IDs', () => {
  it('certs issue --spiffe-id makes the SPIFFE ID the one URI SAN (X.509-SVID shape); rotate keeps it', async () => {
    const s = await svids()
    const server = new X509Certificate(await readFile(s.f('services.crt')))
    const client = new X509Certificate(await readFile(s.f('web-server.crt')))
    expect(uriSans(server.subjectAltName)).toEqual([SERVER_ID])
    expect(uriSans(client.subjectAltName)).toEqual([CLIENT_ID]) // instead of urn:naaccord:client:web-server
    const inspected = await cli('certs', 'inspect', s.f('web-server.crt'))
    expect(inspected.out).toContain(`URI:${CLIENT_ID}`)
    const result = await rotate({ dir: s.dir, all: true })
    expect(result.rotated).toHaveLength(3)
    const rotated = new X509Certificate(await readFile(s.f('web-server.crt')))
    expect(rotated.fingerprint256).not.toBe(client.fingerprint256)
    expect(uriSans(rotated.subjectAltName)).toEqual([CLIENT_ID])
  })

  it.each(['example.org/web', 'spiffe://Example.org/web', 'spiffe://example.org', 'spiffe://example.org/web/', 'spiffe://example.org/a/../b', 'spiffe://example.org:8443/web'])(
    'certs issue refuses the malformed SPIFFE ID %s (exit 2, names the option)',
    async (id) => {
      const s = await svids()
      const r = await cli('certs', 'issue', 'client', '--dir', s.dir, '--name', 'x', '--spiffe-id', id)
      expect(r.code).toBe(2)
      expect(r.err).toContain('spiffeId')
    },
  )

  it('allowClients admits a client by SPIFFE ID and refuses another SVID of the same trust domain; tls.serverId checks the server', async () => {
    const s = await svids()
    const ipc = await serve(
      (req, res) => {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ peer: req.peer }))
      },
      {
        socketPath: s.socketPath,
        logger: false,
        handleSignals: false,
        tls: { cert: s.f('services.crt'), key: s.f('services.key'), ca: s.f('ca.crt'), allowClients: [CLIENT_ID] },
      },
    )
    defer(() => ipc.close())
    const client = (name: string, tls: ClientOptions['tls'] = {}) => {
      const c = createClient({ socketPath: s.socketPath, logger: false, retries: 0, tls: { ca: s.f('ca.crt'), cert: s.f(`${name}.crt`), key: s.f(`${name}.key`), serverId: SERVER_ID, ...tls } })
      defer(() => c.destroy())
      return c
    }
    const ok = await client('web-server').get<{ peer: Peer }>('/')
    expect(ok.peer.certificate?.uris).toEqual([CLIENT_ID])
    // allowClients refuses by closing (Node sends no TLS alert): a lost connection for the client.
    await expect(client('reports').get('/')).rejects.toMatchObject({ code: 'IPC_CONNECTION_LOST' })
    // The server SVID names no host "localhost": the SPIFFE ID is what the client checks.
    await expect(client('web-server', { serverId: undefined }).get('/')).rejects.toMatchObject({ code: 'IPC_TLS_HOSTNAME' })
    await expect(client('web-server', { serverId: 'spiffe://example.org/ns/prod/other' }).get('/')).rejects.toMatchObject({ code: 'IPC_TLS_HOSTNAME' })
    expect(() => client('web-server', { serverId: 'https://example.org/services' })).toThrow(expect.objectContaining({ code: 'IPC_INVALID_OPTION', option: 'tls.serverId' }))
  })
})
