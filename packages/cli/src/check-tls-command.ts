import { InvalidOptionError, SEVERITY_RANK, printable, printableJson } from '@naaccord/ipc-shared'
import { CHECK_TLS_DEFAULTS, checkTls, type CheckTlsResult } from './check-tls.js'
import type { CliIo } from './cli-io.js'
import { optionsHelp, str, type FlagTable } from './flags.js'
import { JSON_FLAG, TLS_FLAGS, findingLines, int, parseOperatorFlags } from './operator-flags.js'

/** The flags of `naaccord-ipc check-tls`. */
export const CHECK_TLS_FLAGS: FlagTable = [
  { name: 'socket', type: 'string', value: 'PATH', description: 'the Unix socket to connect to (or --host and --port)' },
  { name: 'host', type: 'string', value: 'HOST', description: 'the host to connect to over TCP' },
  { name: 'port', type: 'string', value: 'N', description: 'its port' },
  ...TLS_FLAGS,
  { name: 'warn-days', type: 'string', value: 'N', default: CHECK_TLS_DEFAULTS.warnDays, description: 'warning when the certificate expires within N days' },
  { name: 'critical-days', type: 'string', value: 'N', default: CHECK_TLS_DEFAULTS.criticalDays, description: 'critical when it expires within N days' },
  { name: 'timeout-ms', type: 'string', value: 'N', default: CHECK_TLS_DEFAULTS.timeoutMs, description: 'time limit of the whole check' },
  JSON_FLAG,
]

export const CHECK_TLS_USAGE = `Usage: naaccord-ipc check-tls (--socket PATH | --host HOST --port N) --ca FILE [--cert FILE --key FILE] [--servername NAME] [--pin PIN...] [--warn-days N] [--critical-days N] [--timeout-ms N] [--json]

Connect with full verification (chain to --ca, the name, optional pins; there is no unverified
mode) and print TLS version, cipher, subject, issuer, SANs, days to expiry and SPKI pin.
Exit 0 ok; 1 warning (expires within --warn-days, default 30); 2 critical (within --critical-days,
default 7, any verification or connection failure, or bad usage).

Options:
${optionsHelp(CHECK_TLS_FLAGS)}
`

/** Text report of a check-tls result. */
export function formatCheckTls(r: CheckTlsResult): string {
  const c = r.connection
  const rows: [string, string][] = c
    ? [
        ['version', c.version],
        ['cipher', c.cipher],
        ['subject', c.subject],
        ['issuer', c.issuer],
        ['SANs', c.sans.join(', ') || '(none)'],
        ['expires', `${c.notAfter} (${c.daysToExpiry} days)`],
        ['SPKI pin', `sha256//${c.spkiPin}`],
        ['SHA-256', c.fingerprint256],
        ...(c.http ? ([['answer', c.http]] as [string, string][]) : []),
      ]
    : []
  return `${r.status.toUpperCase()} check-tls ${printable(r.target)} (name ${printable(r.servername)})\n${rows.map(([k, v]) => `  ${`${k}:`.padEnd(10)}${printable(v)}`).join('\n')}${rows.length ? '\n' : ''}findings:\n${findingLines(r.findings)}\n`
}

/**
 * `naaccord-ipc check-tls ...`: resolve to the exit code (0 ok, 1 warning, 2 critical).
 *
 * @example
 * process.exitCode = await runCheckTls(['--socket', '/run/naaccord/service.sock', '--ca', 'certs/ca.crt'], io)
 */
export async function runCheckTls(argv: readonly string[], io: CliIo): Promise<number> {
  const v = parseOperatorFlags('check-tls', CHECK_TLS_FLAGS, argv)
  if (v.help === true) {
    io.stdout(CHECK_TLS_USAGE)
    return 0
  }
  const ca = str(v.ca)
  if (ca === undefined) throw new InvalidOptionError('--ca', 'is required: check-tls always verifies the server (give the CA file that signed its certificate)')
  const socketPath = str(v.socket)
  const host = str(v.host)
  if ((socketPath === undefined) === (host === undefined)) throw new InvalidOptionError('--socket', 'give either --socket PATH or --host HOST --port N')
  const result = await checkTls({
    ca,
    ...(socketPath !== undefined ? { socketPath } : { host, port: int('--port', v.port, 1) }),
    ...(str(v.cert) !== undefined ? { cert: str(v.cert) } : {}),
    ...(str(v.key) !== undefined ? { key: str(v.key) } : {}),
    ...(str(v.servername) !== undefined ? { servername: str(v.servername) } : {}),
    ...(Array.isArray(v.pin) ? { pins: v.pin as string[] } : {}),
    ...(v['warn-days'] !== undefined ? { warnDays: int('--warn-days', v['warn-days']) } : {}),
    ...(v['critical-days'] !== undefined ? { criticalDays: int('--critical-days', v['critical-days']) } : {}),
    ...(v['timeout-ms'] !== undefined ? { timeoutMs: int('--timeout-ms', v['timeout-ms'], 1) } : {}),
  })
  io.stdout(v.json === true ? `${printableJson(result)}\n` : formatCheckTls(result))
  return SEVERITY_RANK[result.status]
}
