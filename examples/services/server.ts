import { serve } from '@naaccord/ipc-server'
import { createLogger } from '@naaccord/ipc-shared/logger'
import { createServicesApp } from './app.js'

// The services server: the app above on the Unix socket. Options come from the environment
// (NAACCORD_SOCKET_PATH, NAACCORD_LOG_LEVEL, ...), see docs/server.md.
const logger = createLogger({ name: 'services', pretty: process.stdout.isTTY === true })
// Plaintext HTTP over the socket, accepted by name: on one host the 0600 socket and the kernel's
// peer check decide who may talk; add `tls` (docs/tls.md) for encryption on top.
const ipc = await serve(createServicesApp(), { logger, acknowledgePlaintextSocket: true })
logger.info(`services server ready on ${ipc.socketPath}`)
