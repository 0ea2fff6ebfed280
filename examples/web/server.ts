import { createClient } from '@naaccord/ipc-client'
import { createLogger } from '@naaccord/ipc-shared/logger'
import { createWebApp } from './app.js'

// The public web server on 127.0.0.1:8000 (NAACCORD_WEB_PORT), calling services over the socket
// given by NAACCORD_SOCKET_PATH.
const logger = createLogger({ name: 'web', pretty: process.stdout.isTTY === true })
// Plaintext over the socket, accepted by name as on the services side (see services/server.ts).
const services = createClient({ logger, acknowledgePlaintext: true })
const port = Number(process.env.NAACCORD_WEB_PORT ?? 8000)
const host = process.env.NAACCORD_WEB_HOST ?? '127.0.0.1'
const server = createWebApp(services, logger).listen(port, host, () => {
  logger.info(`web server ready on http://${host}:${port} -> services at ${services.options.target}`)
})
const stop = () => {
  server.close()
  server.closeIdleConnections()
  void services.close().then(() => process.exit(0))
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
