// The services server for `pnpm bench:ways`, in its own process (inside namespace a for the
// two-host ways): `ways-server.ts <json serve() options>`. The same tiny app for every way: GET
// answers a small JSON body. Prints "ready <listener addresses as JSON>", or "error ..." and exits 3.
import { serve, type ServerOptions } from '@naaccord/ipc-server'

const options = JSON.parse(process.argv[2]!) as ServerOptions
try {
  const ipc = await serve(
    (_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end('{"ok":true,"service":"bench"}')
    },
    { logger: false, requestLog: false, handleSignals: true, ...options },
  )
  process.stdout.write(`ready ${JSON.stringify(ipc.listeners.map((l) => l.address))}\n`)
} catch (err) {
  const e = err as { code?: string; message?: string }
  process.stdout.write(`error ${e.code} ${e.message}\n`)
  process.exit(3)
}
