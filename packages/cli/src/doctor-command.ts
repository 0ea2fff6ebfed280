import { parseArgs, type ParseArgsConfig } from 'node:util'
import { InvalidOptionError, SEVERITY_RANK, parseInteger, printable, printableJson } from '@naaccord/ipc-shared'
import { checkTls, worstSeverity, type CheckTlsResult, type Finding } from './check-tls.js'

/** Where the operator commands write (the CLI's io). */
export interface OpsIo {
  stdout(text: string): void
  stderr(text: string): void
}

const TLS_FLAGS = {
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  servername: { type: 'string' },
  pin: { type: 'string', multiple: true },
} as const

export const CHECK_TLS_USAGE = `Usage: naaccord-ipc check-tls (--socket PATH | --host HOST --port N) --ca FILE [--cert FILE --key FILE] [--servername NAME] [--pin PIN...] [--warn-days N] [--critical-days N] [--timeout-ms N] [--json]

Connect with full verification (chain to --ca, the name, optional pins; there is no unverified
mode) and print TLS version, cipher, subject, issuer, SANs, days to expiry and SPKI pin.
Exit 0 ok; 1 warning (expires within --warn-days, default 30); 2 critical (within --critical-days,
default 7, any verification or connection failure, or bad usage).
`

export const DOCTOR_USAGE = `Usage: naaccord-ipc doctor [--socket PATH] [--mode OCTAL] [--owner UID] [--group GID] [--ca FILE [--cert FILE --key FILE] [--servername NAME] [--pin PIN...]] [--timeout-ms N] [--json]

What an operator runs when something is wrong, and what a monitoring check calls. Checks: path
length; every folder and link on the way and the socket file, owned by root, this user or
--owner and writable by nobody else (what the client trusts; links of theirs, such as
/var/run -> /run, are followed); its mode, owner and group (as given); the lock holder is alive;
the process that listens runs as one of those uids; a server answers; our uid passes its allow
policy; /healthz; and with --ca the TLS chain, name, days to expiry and pin. Nothing is sent to
a socket the path or process check refused. --owner UID names the services user when the server
runs as neither this user nor root. Every finding says what to do; what the server or the
filesystem supplied is printed with control characters escaped.
--socket defaults to NAACCORD_SOCKET_PATH, then /var/run/naaccord/service.sock.
Exit 0 ok; 1 warning; 2 critical (or bad usage).
`

function parse(argv: readonly string[], options: NonNullable<ParseArgsConfig['options']>, command: string) {
  try {
    return parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: false, strict: true }).values as Record<string, string | boolean | string[] | undefined>
  } catch (err) {
    throw new InvalidOptionError(command, (err as Error).message.replace(/\. To specify a positional argument.*$/s, ''))
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
const int = (name: string, v: unknown, min = 0): number | undefined => (v === undefined ? undefined : parseInteger(name, v, min))

// Every field printed goes through printable(): a server or the filesystem supplied part of it
// (health warnings, certificate subjects, the HTTP answer, paths, error messages).
function findingLines(findings: readonly Finding[]): string {
  return findings.map((f) => `  [${f.severity}] ${printable(f.check)}: ${printable(f.message)}${f.fix ? `\n      -> ${printable(f.fix)}` : ''}`).join('\n')
}

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
export async function runCheckTls(argv: readonly string[], io: OpsIo): Promise<number> {
  const v = parse(argv, { socket: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, ...TLS_FLAGS, 'warn-days': { type: 'string' }, 'critical-days': { type: 'string' }, 'timeout-ms': { type: 'string' }, json: { type: 'boolean' } }, 'check-tls')
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
    ...(Array.isArray(v.pin) ? { pins: v.pin } : {}),
    ...(v['warn-days'] !== undefined ? { warnDays: int('--warn-days', v['warn-days']) } : {}),
    ...(v['critical-days'] !== undefined ? { criticalDays: int('--critical-days', v['critical-days']) } : {}),
    ...(v['timeout-ms'] !== undefined ? { timeoutMs: int('--timeout-ms', v['timeout-ms'], 1) } : {}),
  })
  io.stdout(v.json === true ? `${printableJson(result)}\n` : formatCheckTls(result))
  return SEVERITY_RANK[result.status]
}

/**
 * `naaccord-ipc doctor ...`: socket, folder, lock, allow policy and health checks from
 * `@naaccord/ipc-server` (imported only when doctor runs), plus `checkTls` with --ca.
 *
 * @example
 * process.exitCode = await runDoctor(['--socket', '/run/naaccord/service.sock', '--json'], io)
 */
export async function runDoctor(argv: readonly string[], io: OpsIo): Promise<number> {
  const v = parse(argv, { socket: { type: 'string' }, mode: { type: 'string' }, owner: { type: 'string' }, group: { type: 'string' }, ...TLS_FLAGS, 'timeout-ms': { type: 'string' }, json: { type: 'boolean' } }, 'doctor')
  if (v.help === true) {
    io.stdout(DOCTOR_USAGE)
    return 0
  }
  if ((str(v.cert) === undefined) !== (str(v.key) === undefined)) throw new InvalidOptionError(str(v.cert) === undefined ? '--cert' : '--key', '--cert and --key go together')
  // The server package is loaded here only, so the certs commands never pay for it.
  // It is an optional peer dependency: the certificates CLI installs without the server and its addon.
  const { diagnoseSocket } = await import('@naaccord/ipc-server').catch((err: unknown) => {
    throw new InvalidOptionError('doctor', `needs @naaccord/ipc-server installed next to @naaccord/ipc-certs ("npm install @naaccord/ipc-server"): ${(err as Error).message.split('\n', 1)[0]}`)
  })
  const ca = str(v.ca)
  const timeoutMs = int('--timeout-ms', v['timeout-ms'], 1)
  const report = await diagnoseSocket({
    ...(str(v.socket) !== undefined ? { socketPath: str(v.socket) } : {}),
    ...(str(v.mode) !== undefined ? { mode: str(v.mode) } : {}),
    ...(str(v.owner) !== undefined ? { owner: int('--owner', v.owner) } : {}),
    ...(str(v.group) !== undefined ? { group: int('--group', v.group) } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(ca !== undefined ? { tls: { ca, cert: str(v.cert), key: str(v.key), servername: str(v.servername) } } : {}),
  })
  const findings: Finding[] = [...report.findings]
  let tlsResult: CheckTlsResult | undefined
  if (ca !== undefined && report.socketUsable) {
    tlsResult = await checkTls({
      // The path the doctor checked, links resolved: nothing is followed again.
      socketPath: report.realPath ?? report.socketPath,
      ca,
      ...(str(v.cert) !== undefined ? { cert: str(v.cert), key: str(v.key) } : {}),
      ...(str(v.servername) !== undefined ? { servername: str(v.servername) } : {}),
      ...(Array.isArray(v.pin) ? { pins: v.pin } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    })
    findings.push(...tlsResult.findings.map((f) => ({ ...f, check: `tls ${f.check}` })))
  }
  const status = worstSeverity(findings)
  if (v.json === true) io.stdout(`${printableJson({ status, socketPath: report.socketPath, ...(report.realPath === undefined ? {} : { realPath: report.realPath }), findings, ...(tlsResult?.connection ? { tls: tlsResult.connection } : {}) })}\n`)
  else io.stdout(`${status.toUpperCase()} doctor ${printable(report.socketPath)}\nfindings:\n${findingLines(findings)}\n`)
  return SEVERITY_RANK[status]
}
