import { DEFAULT_SOCKET_PATH, ENV, InvalidOptionError, SEVERITY_RANK, printable, printableJson, worstSeverity, type Finding } from '@naaccord/ipc-shared'
import { checkTls, type CheckTlsResult } from './check-tls.js'
import type { CliIo } from './cli-io.js'
import { DOCTOR_DEFAULTS, diagnoseSocket, type SocketDiagnosis } from './doctor.js'
import { optionsHelp, str, type FlagTable, type FlagValues } from './flags.js'
import { JSON_FLAG, TLS_FLAGS, findingLines, int, parseOperatorFlags } from './operator-flags.js'

/** The flags of `naaccord-ipc doctor`. */
export const DOCTOR_FLAGS: FlagTable = [
  { name: 'socket', type: 'string', value: 'PATH', env: ENV.socketPath, default: DEFAULT_SOCKET_PATH, description: 'the socket to check' },
  { name: 'mode', type: 'string', value: 'OCTAL', description: 'the socket mode the server was configured with (e.g. 0660)' },
  { name: 'owner', type: 'string', value: 'UID', description: 'the services user, when the server runs as neither this user nor root' },
  { name: 'group', type: 'string', value: 'GID', description: 'the expected group of the socket' },
  ...TLS_FLAGS,
  { name: 'timeout-ms', type: 'string', value: 'N', default: DOCTOR_DEFAULTS.timeoutMs, description: 'time limit of the request to the server' },
  JSON_FLAG,
]

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
Exit 0 ok; 1 warning; 2 critical (or bad usage).

Options:
${optionsHelp(DOCTOR_FLAGS)}
`

/** The TLS check over the path the doctor checked (links resolved: nothing is followed again). */
function checkTlsAfter(report: SocketDiagnosis, ca: string, v: FlagValues, timeoutMs: number | undefined): Promise<CheckTlsResult> {
  return checkTls({
    socketPath: report.realPath ?? report.socketPath,
    ca,
    ...(str(v.cert) !== undefined ? { cert: str(v.cert), key: str(v.key) } : {}),
    ...(str(v.servername) !== undefined ? { servername: str(v.servername) } : {}),
    ...(Array.isArray(v.pin) ? { pins: v.pin as string[] } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  })
}

function print(io: CliIo, v: FlagValues, report: SocketDiagnosis, findings: readonly Finding[], tlsResult: CheckTlsResult | undefined): number {
  const status = worstSeverity(findings)
  if (v.json === true) io.stdout(`${printableJson({ status, socketPath: report.socketPath, ...(report.realPath === undefined ? {} : { realPath: report.realPath }), findings, ...(tlsResult?.connection ? { tls: tlsResult.connection } : {}) })}\n`)
  else io.stdout(`${status.toUpperCase()} doctor ${printable(report.socketPath)}\nfindings:\n${findingLines(findings)}\n`)
  return SEVERITY_RANK[status]
}

/**
 * `naaccord-ipc doctor ...`: the socket, folder, lock, allow policy and health checks of
 * `diagnoseSocket`, plus `checkTls` with --ca; resolves to the exit code (0 ok, 1 warning, 2 critical).
 *
 * @example
 * process.exitCode = await runDoctor(['--socket', '/run/naaccord/service.sock', '--json'], io)
 */
export async function runDoctor(argv: readonly string[], io: CliIo): Promise<number> {
  const v = parseOperatorFlags('doctor', DOCTOR_FLAGS, argv)
  if (v.help === true) {
    io.stdout(DOCTOR_USAGE)
    return 0
  }
  if ((str(v.cert) === undefined) !== (str(v.key) === undefined)) throw new InvalidOptionError(str(v.cert) === undefined ? '--cert' : '--key', '--cert and --key go together')
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
  const tlsResult = ca !== undefined && report.socketUsable ? await checkTlsAfter(report, ca, v, timeoutMs) : undefined
  if (tlsResult) findings.push(...tlsResult.findings.map((f) => ({ ...f, check: `tls ${f.check}` })))
  return print(io, v, report, findings, tlsResult)
}
