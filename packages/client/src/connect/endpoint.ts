import { mapConnectError } from './connect-errors.js'
import type { ResolvedClientOptions } from '../options.js'
import { checkSocketPath } from './server-check.js'

/** Where a connection goes: the checked real path of the socket, or a TCP host and port. */
export type Endpoint = { path: string } | { host: string; port: number }

/** An ENOENT as connect(2) would report it: mapped and retried like a socket not there yet. */
function absent(socketPath: string, missing: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`connect ENOENT ${socketPath} (${missing} does not exist)`), { code: 'ENOENT', syscall: 'connect', address: socketPath })
}

/**
 * The first step of every connection. Over the socket: the safe-path check of the socket path
 * (no folder, link or socket file another user could have placed), walked anew for each
 * connection, and the real path it leads to, which is what we connect to. Over TCP: the host and
 * port. A refusal comes back as the error to give undici (its connector reports by callback).
 *
 * @example
 * const where = endpointOf(opts, { hostname: 'localhost', port: '' }) // { path: '/run/naaccord/service.sock' }
 */
export function endpointOf(opts: ResolvedClientOptions, target: { hostname: string; port: string }): Endpoint | Error {
  const check = opts.serverCheck
  if (opts.socketPath === undefined || !check) return { host: opts.host ?? target.hostname, port: Number(opts.port ?? target.port) }
  let checked: { realPath: string } | { missing: string }
  try {
    checked = checkSocketPath(opts.socketPath, check)
  } catch (err) {
    return err as Error
  }
  if ('missing' in checked) return mapConnectError(absent(opts.socketPath, checked.missing), opts)
  return { path: checked.realPath }
}
