import { ENV } from '@naaccord/ipc-shared'
import { warnWhateverLevel } from '@naaccord/ipc-shared/logger'
import type { ResolvedClientOptions } from './options.js'

/**
 * Say at creation, whatever the log level (a process warning with `logger: false`), each way in
 * which this client is less protected than the defaults: plaintext over the socket or over TCP,
 * TLS verification off, the kernel check of the server process off, an addon override. Naming
 * another trusted server uid is said once at info, with where it came from.
 *
 * @example
 * warnWeakenedSecurity(resolveClientOptions({ socketPath, expectServer: false }))
 */
export function warnWeakenedSecurity(opts: ResolvedClientOptions): void {
  warnPlaintext(opts)
  const log = opts.logger
  if (opts.tls?.insecureSkipVerify) {
    warnWhateverLevel(log, { target: opts.target }, 'TLS VERIFICATION IS OFF for this client (tls.insecureSkipVerify): any server can impersonate the services server. Development only.')
  }
  warnServerCheck(opts)
}

function warnPlaintext(opts: ResolvedClientOptions): void {
  const log = opts.logger
  if (opts.transport === 'unix' && !opts.tls && !opts.acknowledgePlaintext) {
    warnWhateverLevel(log, { socketPath: opts.socketPath }, 'plaintext HTTP over the Unix socket (protected by file mode, not encrypted); add tls for defence in depth, or acknowledgePlaintext: true to accept it by name')
  }
  if (opts.transport === 'tcp' && !opts.tls) {
    warnWhateverLevel(
      log,
      { url: opts.target },
      `plaintext HTTP over TCP to ${opts.target} (option url or ${ENV.url}; to a host other than loopback only with allowPlaintextRemote): requests and answers travel unencrypted and unauthenticated to whatever listens on that port; use https:// with tls`,
    )
  }
}

function warnServerCheck(opts: ResolvedClientOptions): void {
  const log = opts.logger
  const check = opts.serverCheck
  if (check && check.processUids === undefined) {
    warnWhateverLevel(
      log,
      { socketPath: opts.socketPath, setting: 'expectServer', value: false },
      `security weakened: the kernel check of the server process is OFF for ${opts.target} (expectServer: false); the socket path is still checked, but a process of a trusted uid's making is not told apart from the services server`,
    )
  }
  if (check && check.source !== 'default') {
    // Naming another uid widens whom the client trusts: said once, with where it came from.
    log.info({ socketPath: opts.socketPath, trustedServerUids: check.processUids && [...check.processUids], source: check.source }, 'server check: the socket, its folders and the listening process may belong to these uids')
  }
  const override = process.env[ENV.peerAddon]
  if (check?.processUids !== undefined && override !== undefined && override.trim() !== '') {
    warnWhateverLevel(
      log,
      { setting: 'peerCredentialsAddon', value: override, source: `env:${ENV.peerAddon}` },
      `security weakened: ${ENV.peerAddon}=${override} replaces the native addon that checks the server process (a test hook; never set it in production). It is loaded only if it is a .node file owned by this uid or root in a folder nobody else can change`,
    )
  }
}
