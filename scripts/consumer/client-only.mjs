// A project with @naaccord/ipc-client only: the client brings the native addon (a prebuilt binary,
// no compiler) and checks by default that the server runs as this uid or root before sending.
// Usage: node client-only.mjs <socket-path>
import assert from 'node:assert/strict'
import http from 'node:http'
import { createClient } from '@naaccord/ipc-client'

const socketPath = process.argv[2]
const server = http.createServer((req, res) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ ok: true })))
await new Promise((resolve) => server.listen(socketPath, resolve))
try {
  const checked = createClient({ socketPath, logger: false, acknowledgePlaintext: true, retries: 0 })
  assert.deepEqual(await checked.get('/'), { ok: true })
  await checked.close()
  const other = createClient({ socketPath, logger: false, acknowledgePlaintext: true, retries: 0, expectServer: { uid: process.getuid(), gid: process.getgid() + 1, checkSocketFile: false } })
  const err = await other.get('/').then(() => undefined, (e) => e)
  assert.equal(err?.code, 'IPC_PEER_REJECTED', `expected IPC_PEER_REJECTED, got ${err}`)
  await other.close()
  console.log(JSON.stringify({ defaultCheck: 'ok', otherGid: err.code }))
} finally {
  server.close()
}
