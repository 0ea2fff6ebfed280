// A consumer's own script, outside the monorepo, using only the installed packages: serves an
// Express app with serve() and calls it with createClient(), over the Unix socket, then over the
// socket with mutual TLS made by the packed certs CLI, and checks req.peer each time.
// Usage: node consumer.mjs <certs-dir>
import assert from 'node:assert/strict'
import path from 'node:path'
import express from 'express'
import { createClient } from '@naaccord/ipc-client'
import { serve } from '@naaccord/ipc-server'

const certs = process.argv[2]
const here = path.dirname(new URL(import.meta.url).pathname)
const app = express()
app.get('/whoami', (req, res) => res.json({ peer: req.peer }))

const uid = process.getuid()
const results = {}

async function round(name, serverTls, clientTls) {
  const socketPath = path.join(here, 'run', `${name}.sock`)
  const server = await serve(app, { socketPath, logger: false, handleSignals: false, acknowledgePlaintextSocket: true, ...(serverTls ? { tls: serverTls } : {}) })
  const client = createClient({ socketPath, logger: false, acknowledgePlaintext: true, expectServer: { uid }, ...(clientTls ? { tls: clientTls } : {}) })
  try {
    const { peer } = await client.get('/whoami')
    assert.equal(peer.transport, 'unix')
    assert.equal(peer.uid, uid, 'req.peer.uid is the kernel-reported uid of the caller')
    assert.equal(peer.pid, process.pid, 'req.peer.pid is this process (client and server share it)')
    if (serverTls) assert.equal(peer.certificate?.commonName, 'web-server', 'req.peer.certificate names the client certificate')
    results[name] = { transport: peer.transport, uid: peer.uid, pid: peer.pid, certificate: peer.certificate?.commonName ?? null }
  } finally {
    await client.close()
    await server.close()
  }
}

await round('socket', undefined, undefined)
const file = (name) => path.join(certs, name)
await round(
  'socket-mtls',
  { cert: file('localhost.crt'), key: file('localhost.key'), ca: file('ca.crt'), allowClients: ['web-server'], watch: false },
  { ca: file('ca.crt'), cert: file('web-server.crt'), key: file('web-server.key'), watch: false },
)
console.log(JSON.stringify(results))
