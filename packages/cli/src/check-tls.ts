import { InvalidOptionError, isIpcError, loadPem, parseInteger, parseString, printable, printableFinding, resolveSafeEntry, spkiSha256, subjectOf, trustedUids, worstSeverity, type Finding, type Severity } from '@naaccord/ipc-shared'
import { probeHealth, type ProbeAnswer, type ProbeHandshake, type ProbeTarget, type ProbeTls } from './health-probe.js'

export { worstSeverity, type Finding, type Severity }

export interface CheckTlsOptions {
  /** Unix socket to connect to; or host and port. */
  socketPath?: string
  host?: string
  port?: number
  /** Name checked against the certificate (SNI too). Default: `host`, or `localhost` over a socket. */
  servername?: string
  /** CA bundle the server certificate must chain to: a path or PEM text. Required: there is no unverified mode. */
  ca: string
  /** Client certificate and key (path or PEM) when the server requires mutual TLS. */
  cert?: string
  key?: string
  /** Expected SPKI pins (base64 SHA-256, optionally `sha256//`-prefixed); any one must match. */
  pins?: readonly string[]
  /** Warn below this many days to expiry. Default 30. */
  warnDays?: number
  /** Critical below this many days to expiry. Default 7. */
  criticalDays?: number
  /** Whole check time limit, ms. Default 5000. */
  timeoutMs?: number
}

export interface CheckTlsResult {
  readonly status: Severity
  readonly target: string
  readonly servername: string
  /** Set once a handshake verified; absent when the connection or verification failed. */
  readonly connection?: {
    readonly version: string
    readonly cipher: string
    readonly subject: string
    readonly issuer: string
    readonly sans: readonly string[]
    readonly notAfter: string
    readonly daysToExpiry: number
    readonly spkiPin: string
    readonly fingerprint256: string
    /** The first line of the server's HTTP answer to `HEAD /healthz` (proves the server accepted our certificate). */
    readonly http?: string
  }
  /** Each message and fix is printable (control characters the server supplied are escaped); `connection` holds the raw values. */
  readonly findings: readonly Finding[]
}

export const CHECK_TLS_DEFAULTS = Object.freeze({ warnDays: 30, criticalDays: 7, timeoutMs: 5_000, servername: 'localhost' })

const DAY_MS = 86_400_000

/** PEM text, or a file read through the shared safe-path rules (loadPem: IPC_UNSAFE_PATH for a file another user could swap). */
function pem(name: string, value: string): string {
  try {
    return loadPem(name, value, name === 'key').pem
  } catch (err) {
    if (isIpcError(err, 'IPC_UNSAFE_PATH')) throw err
    throw new InvalidOptionError(name, `cannot read ${value} (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}); give a readable PEM file`, { cause: err })
  }
}

// What to do, by the verification error Node/OpenSSL reports.
const VERIFY_FIXES: Record<string, string> = {
  CERT_HAS_EXPIRED: 'the server certificate has expired: run "naaccord-ipc certs rotate" on the server host (the server reloads it)',
  CERT_NOT_YET_VALID: 'the server certificate is not valid yet: check the clocks of both hosts',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the server certificate was not signed by this CA: pass the CA that issued it with --ca, or reissue it with this CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the server certificate was not signed by this CA: pass the CA that issued it with --ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'the chain ends in a CA not in --ca: pass that CA with --ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the server presents a self-signed certificate: issue one with "naaccord-ipc certs issue server"',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the certificate does not name the host you dialled: pass --servername with a name it carries, or reissue it with --name for this host',
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'the server requires a client certificate: pass --cert and --key',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'the server refused our client certificate: pass one issued by the CA the server trusts',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'the server does not trust the CA of our client certificate: pass one issued by the CA the server trusts',
  ECONNREFUSED: 'nothing listens there: start the server, or check the socket path / host and port',
  ENOENT: 'the socket does not exist: start the server, or check the socket path',
  EACCES: 'no permission to open the socket: run as a user the socket mode and group allow',
  ECONNRESET: 'the server closed the connection: it may refuse this uid (allow policy) or this client certificate (allowClients); see its log',
}

/** The options checked, the PEM files read: what the probe needs. */
interface ResolvedCheckTls {
  readonly target: string
  readonly socketPath: string | undefined
  readonly host: string | undefined
  readonly port: number | undefined
  readonly tls: ProbeTls
  readonly pins: readonly string[]
  readonly warnDays: number
  readonly criticalDays: number
  readonly timeoutMs: number
}

function resolveCheckTls(o: CheckTlsOptions): ResolvedCheckTls {
  if (o.ca === undefined) throw new InvalidOptionError('ca', 'is required: check-tls always verifies the server against a CA (there is no unverified mode)')
  if ((o.socketPath === undefined) === (o.host === undefined)) throw new InvalidOptionError('socketPath', 'give either a socket path or a host and port')
  if ((o.cert === undefined) !== (o.key === undefined)) throw new InvalidOptionError(o.cert === undefined ? 'cert' : 'key', 'cert and key go together')
  const port = o.host === undefined ? undefined : parseInteger('port', o.port, 1, 65535)
  const servername = parseString('servername', o.servername ?? o.host ?? CHECK_TLS_DEFAULTS.servername)
  return {
    target: o.socketPath ?? `${o.host}:${port}`,
    socketPath: o.socketPath,
    host: o.host,
    port,
    warnDays: parseInteger('warnDays', o.warnDays ?? CHECK_TLS_DEFAULTS.warnDays, 0),
    criticalDays: parseInteger('criticalDays', o.criticalDays ?? CHECK_TLS_DEFAULTS.criticalDays, 0),
    timeoutMs: parseInteger('timeoutMs', o.timeoutMs ?? CHECK_TLS_DEFAULTS.timeoutMs, 1),
    pins: (o.pins ?? []).map((p) => p.replace(/^sha256\/\//, '')),
    tls: { servername, ca: pem('ca', o.ca), cert: o.cert === undefined ? undefined : pem('cert', o.cert), key: o.key === undefined ? undefined : pem('key', o.key) },
  }
}

/** The connection finding of a probe that stopped early: what to do, by the code Node/OpenSSL reports. */
function errorFinding(target: string, err: NodeJS.ErrnoException): Finding {
  const code = err.code ?? 'ERROR'
  return {
    check: code.startsWith('E') && !code.startsWith('ERR_') ? 'connect' : 'verify',
    severity: 'critical',
    message: `${target}: ${code}: ${err.message}`,
    fix: VERIFY_FIXES[code] ?? 'see the server log for the refused handshake; check --ca, --cert, --key and --servername',
  }
}

type Connection = NonNullable<CheckTlsResult['connection']>

function connectionOf(h: ProbeHandshake, answer: ProbeAnswer | undefined): Connection {
  return {
    version: h.version,
    cipher: h.cipher,
    subject: subjectOf(h.peer),
    issuer: h.peer.issuer.split('\n').join(', '),
    sans: (h.peer.subjectAltName ?? '').split(', ').filter(Boolean),
    notAfter: new Date(h.peer.validTo).toISOString(),
    daysToExpiry: Math.floor((Date.parse(h.peer.validTo) - Date.now()) / DAY_MS),
    spkiPin: spkiSha256(h.peer),
    fingerprint256: h.peer.fingerprint256,
    ...(answer === undefined ? {} : { http: answer.statusLine }),
  }
}

/** Expiry against the thresholds, the pin against the expected ones, and the verified chain and name. */
function certificateFindings(c: Connection, o: ResolvedCheckTls): Finding[] {
  const findings: Finding[] = []
  const when = `${c.subject} expires ${c.notAfter} (${c.daysToExpiry} days)`
  if (c.daysToExpiry < o.criticalDays) findings.push({ check: 'expiry', severity: 'critical', message: when, fix: `rotate now: naaccord-ipc certs rotate --within-days ${o.warnDays}` })
  else if (c.daysToExpiry < o.warnDays) findings.push({ check: 'expiry', severity: 'warning', message: when, fix: `rotate soon: naaccord-ipc certs rotate --within-days ${o.warnDays} (e.g. daily from a timer)` })
  else findings.push({ check: 'expiry', severity: 'ok', message: when })
  if (o.pins.length > 0) {
    if (o.pins.includes(c.spkiPin)) findings.push({ check: 'pin', severity: 'ok', message: `SPKI pin sha256//${c.spkiPin} is expected` })
    else findings.push({ check: 'pin', severity: 'critical', message: `SPKI pin sha256//${c.spkiPin} is none of the expected ${o.pins.map((p) => `sha256//${p}`).join(', ')}`, fix: 'the server key changed: if that was a planned rotation, add the new pin to the clients (keep both during the change); otherwise find out who holds this key' })
  }
  findings.push({ check: 'verify', severity: 'ok', message: `chain to the given CA and name "${o.tls.servername}" verified (${c.version}, ${c.cipher})` })
  return findings
}

/**
 * Over a socket, nothing (not a ClientHello) goes to a path another user could have placed: the
 * same safe-path walk as the client's, trusting this uid and root (the listening process itself
 * is checked by doctor). Undefined when the socket does not exist (a finding says so).
 */
function probeTarget(o: ResolvedCheckTls, findings: Finding[]): ProbeTarget | undefined {
  if (o.socketPath === undefined) return { host: o.host ?? '', port: o.port }
  const entry = resolveSafeEntry(o.socketPath, 'socket', { kind: 'socket', label: 'the socket', option: '--socket' }, trustedUids())
  if ('missing' in entry) {
    findings.push({ check: 'connect', severity: 'critical', message: `${o.target}: no socket (${printable(entry.missing)} does not exist)`, fix: 'check --socket, and that the server runs' })
    return undefined
  }
  return { path: entry.realPath }
}

/**
 * The design note's `check_internal_tls`, done right: connect over a Unix socket or TCP with
 * full verification (chain to `ca`, hostname, optional SPKI pins; never an unverified context),
 * send one `HEAD /healthz` so a refused client certificate shows, and report the TLS version,
 * cipher, subject, issuer, SANs, days to expiry and pin. Warning under `warnDays` days,
 * critical under `criticalDays` or on any verification failure. Never throws for what it finds
 * about the server; throws `IPC_INVALID_OPTION` for bad options.
 *
 * @example
 * const r = await checkTls({ socketPath: '/run/naaccord/service.sock', ca: 'certs/ca.crt', cert: 'certs/web-server.crt', key: 'certs/web-server.key' })
 * r.status                      // 'ok' | 'warning' | 'critical'
 * r.connection?.daysToExpiry    // 89
 */
export async function checkTls(options: CheckTlsOptions): Promise<CheckTlsResult> {
  const o = resolveCheckTls(options)
  const findings: Finding[] = []
  const target = probeTarget(o, findings)
  let connection: Connection | undefined
  if (target !== undefined) {
    const probe = await probeHealth({ target, tls: o.tls, method: 'HEAD', host: o.tls.servername, timeoutMs: o.timeoutMs })
    if (probe.error) findings.push(errorFinding(o.target, probe.error))
    connection = probe.handshake && connectionOf(probe.handshake, probe.answer)
    if (connection) findings.push(...certificateFindings(connection, o))
  }
  // Findings are text for people: the subject, the answer line and error messages came from the server.
  return { status: worstSeverity(findings), target: o.target, servername: o.tls.servername, ...(connection ? { connection } : {}), findings: findings.map(printableFinding) }
}
