import { assertPeerCredentialsAvailable } from '@naaccord/ipc-peercred'
import { TlsRequiredError } from '@naaccord/ipc-shared'
import type { ResolvedServerOptions } from './options.js'

/**
 * Refuse a configuration that would be unsafe before anything is opened. What is allowed but
 * weaker than the default is said by the security report (security-report.ts), not here.
 *
 * @throws {PeerCredentialsUnavailableError} IPC_PEER_CREDENTIALS_UNAVAILABLE: a socket listener without a working peer check, unless `allow: false`.
 * @throws {TlsRequiredError} IPC_TLS_REQUIRED: a TCP listener without TLS, unless `allowPlaintextTcp`.
 * @example
 * checkStartPolicy(resolveServerOptions(options))
 */
export function checkStartPolicy(opts: ResolvedServerOptions): void {
  const hasSocket = opts.listen.some((t) => t.kind === 'socket')
  // Fail closed: without a working peer check we do not start, unless allow: false says so by name.
  if (opts.allow !== false && hasSocket) assertPeerCredentialsAvailable()
  for (const t of opts.listen) {
    if (t.kind === 'tcp' && !opts.tls && !opts.allowPlaintextTcp) {
      throw new TlsRequiredError(
        `listening on TCP ${t.host}:${t.port} without TLS would send health data in clear text; pass tls: { cert, key, ca }, or allowPlaintextTcp: true to accept that`,
      )
    }
  }
}
