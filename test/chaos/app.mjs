// The services app of the chaos suite, run as its own process (plain ESM over the built dist/).
//   NAACCORD_SOCKET_PATH   where to serve (set by naaccord-ipc run, or by the suite)
//   ORDERS_FILE            POST /orders appends its x-order-id here (one line each, O_APPEND)
//   CHAOS_LIMITS           JSON for serve()'s limits
//   CHAOS_SHUTDOWN_MS      shutdownTimeoutMs
//   CHAOS_TLS_DIR          a test PKI folder: also listen on 127.0.0.1:0 with mutual TLS
// Prints "mark <pid>" just before serve(), then "ready <pid> <serve ms> <tcp port>" or
// "error <code> <message>" (exit 3).
import { appendFileSync } from 'node:fs'
import path from 'node:path'
import { serve } from '@naaccord/ipc-server'

const socketPath = process.env.NAACCORD_SOCKET_PATH
const tlsDir = process.env.CHAOS_TLS_DIR
const handler = (req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost')
  if (req.method === 'POST' && url.pathname === '/orders') {
    let n = 0
    req.on('data', (d) => (n += d.length))
    req.on('end', () => {
      appendFileSync(process.env.ORDERS_FILE, `${req.headers['x-order-id']}\n`)
      res.statusCode = 201
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ pid: process.pid, n }))
    })
    return
  }
  const reply = () => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ pid: process.pid }))
  }
  if (url.pathname === '/slow') setTimeout(reply, Number(url.searchParams.get('ms') ?? 500))
  else reply()
}
process.stdout.write(`mark ${process.pid}\n`)
const t0 = performance.now()
try {
  const ipc = await serve(handler, {
    socketPath,
    logger: false,
    requestLog: false,
    acknowledgePlaintextSocket: true,
    ...(process.env.CHAOS_SHUTDOWN_MS ? { shutdownTimeoutMs: Number(process.env.CHAOS_SHUTDOWN_MS) } : {}),
    ...(process.env.CHAOS_LIMITS ? { limits: JSON.parse(process.env.CHAOS_LIMITS) } : {}),
    ...(tlsDir
      ? {
          listen: [{ socketPath }, { host: '127.0.0.1', port: 0 }],
          tls: { cert: path.join(tlsDir, 'server.crt'), key: path.join(tlsDir, 'server.key'), ca: path.join(tlsDir, 'ca.crt') },
        }
      : {}),
  })
  const tcp = ipc.listeners.find((l) => l.transport === 'tcp')
  process.stdout.write(`ready ${process.pid} ${(performance.now() - t0).toFixed(1)} ${tcp ? tcp.address.split(':').pop() : '-'}\n`)
} catch (err) {
  process.stdout.write(`error ${err?.code ?? 'RAW'} ${String(err?.message).split('\n')[0]}\n`)
  process.exit(3)
}
