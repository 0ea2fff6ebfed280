// A project with @naaccord/ipc-client and not @naaccord/ipc-peercred: the client works without the
// native addon, and expectServer says which package to install.
// Usage: node client-only.mjs <socket-path>
import assert from 'node:assert/strict'
import http from 'node:http'
import { createClient } from '@naaccord/ipc-client'

const socketPath = process.argv[2]
const server = http.createServer((req, res) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ ok: true })))
await new Promise((resolve) => server.listen(socketPath, resolve))
try {
  const plain = createClient({ socketPath, logger: false, acknowledgePlaintext: true })
  assert.deepEqual(await plain.get('/'), { ok: true })
  await plain.close()
  const checked = createClient({ socketPath, logger: false, acknowledgePlaintext: true, expectServer: { uid: process.getuid(), checkSocketFile: false }, retries: 0 })
  const err = await checked.get('/').then(() => undefined, (e) => e)
  assert.equal(err?.code, 'IPC_PEER_CREDENTIALS_UNAVAILABLE', `expected IPC_PEER_CREDENTIALS_UNAVAILABLE, got ${err}`)
  assert.match(err.message, /npm install @naaccord\/ipc-peercred/)
  await checked.close()
  console.log(JSON.stringify({ withoutExpectServer: 'ok', withExpectServer: err.code, message: err.message }))
} finally {
  server.close()
}
