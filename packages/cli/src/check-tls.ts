import type { X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import tls from 'node:tls'
import { InvalidOptionError, isIpcError, loadPem, parseInteger, parseString, printable, printableFinding, resolveSafeEntry, spkiSha256, subjectOf, trustedUids, worstSeverity, type Finding, type Severity } from '@naaccord/ipc-shared'

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
  const o = options
  if (o.ca === undefined) throw new InvalidOptionError('ca', 'is required: check-tls always verifies the server against a CA (there is no unverified mode)')
  if ((o.socketPath === undefined) === (o.host === undefined)) throw new InvalidOptionError('socketPath', 'give either a socket path or a host and port')
  if ((o.cert === undefined) !== (o.key === undefined)) throw new InvalidOptionError(o.cert === undefined ? 'cert' : 'key', 'cert and key go together')
  const port = o.host === undefined ? undefined : parseInteger('port', o.port, 1, 65535)
  const servername = parseString('servername', o.servername ?? o.host ?? CHECK_TLS_DEFAULTS.servername)
  const warnDays = parseInteger('warnDays', o.warnDays ?? CHECK_TLS_DEFAULTS.warnDays, 0)
  const criticalDays = parseInteger('criticalDays', o.criticalDays ?? CHECK_TLS_DEFAULTS.criticalDays, 0)
  const timeoutMs = parseInteger('timeoutMs', o.timeoutMs ?? CHECK_TLS_DEFAULTS.timeoutMs, 1)
  const pins = (o.pins ?? []).map((p) => p.replace(/^sha256\/\//, ''))
  const ca = pem('ca', o.ca)
  const cert = o.cert === undefined ? undefined : pem('cert', o.cert)
  const key = o.key === undefined ? undefined : pem('key', o.key)
  const target = o.socketPath ?? `${o.host}:${port}`
  const findings: Finding[] = []
  // Over a socket, nothing (not a ClientHello) goes to a path another user could have placed:
  // the same safe-path walk as the client's, trusting this uid and root (the listening process
  // itself is checked by doctor, which has the addon).
  let connectPath: string | undefined
  if (o.socketPath !== undefined) {
    const entry = resolveSafeEntry(o.socketPath, 'socket', { kind: 'socket', label: 'the socket', option: '--socket' }, trustedUids())
    if ('missing' in entry) {
      findings.push({ check: 'connect', severity: 'critical', message: `${target}: no socket (${printable(entry.missing)} does not exist)`, fix: 'check --socket, and that the server runs' })
      return { status: worstSeverity(findings), target, servername, findings: findings.map(printableFinding) }
    }
    connectPath = entry.realPath
  }

  const outcome = await new Promise<{ peer?: X509Certificate; version?: string; cipher?: string; http?: string; error?: NodeJS.ErrnoException }>((resolve) => {
    const socket = tls.connect({
      ...(connectPath !== undefined ? { path: connectPath } : { host: o.host, port }),
      servername: isIP(servername) === 0 ? servername : undefined, // SNI carries names only (RFC 6066)
      ca,
      cert,
      key,
      // Verification stays on: rejectUnauthorized is Node's default and is set here by name.
      rejectUnauthorized: true,
      checkServerIdentity: (_host, c) => tls.checkServerIdentity(servername, c),
      minVersion: 'TLSv1.2',
    })
    let done = false
    let result: { peer?: X509Certificate; version?: string; cipher?: string; http?: string } = {}
    const finish = (r: { error?: NodeJS.ErrnoException; http?: string } = {}) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ ...result, ...r })
    }
    const timer = setTimeout(() => finish({ error: Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }) }), timeoutMs)
    socket.once('secureConnect', () => {
      result = { peer: socket.getPeerX509Certificate(), version: socket.getProtocol() ?? undefined, cipher: socket.getCipher().standardName }
      socket.write(`HEAD /healthz HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`)
    })
    let answer = ''
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1')
      const eol = answer.indexOf('\r\n')
      if (eol !== -1) finish({ http: answer.slice(0, eol) })
    })
    socket.once('error', (error: NodeJS.ErrnoException) => finish({ error }))
    socket.once('close', () => finish(answer ? { http: answer.split('\r\n')[0] } : { error: Object.assign(new Error('connection closed without an answer'), { code: 'ECONNRESET' }) }))
  })

  const err = outcome.error
  if (err) {
    const code = err.code ?? 'ERROR'
    findings.push({
      check: code.startsWith('E') && !code.startsWith('ERR_') ? 'connect' : 'verify',
      severity: 'critical',
      message: `${target}: ${code}: ${err.message}`,
      fix: VERIFY_FIXES[code] ?? 'see the server log for the refused handshake; check --ca, --cert, --key and --servername',
    })
  }
  let connection: CheckTlsResult['connection']
  if (outcome.peer && outcome.version && outcome.cipher) {
    const peer = outcome.peer
    const daysToExpiry = Math.floor((Date.parse(peer.validTo) - Date.now()) / DAY_MS)
    const spkiPin = spkiSha256(peer)
    connection = {
      version: outcome.version,
      cipher: outcome.cipher,
      subject: subjectOf(peer),
      issuer: peer.issuer.split('\n').join(', '),
      sans: (peer.subjectAltName ?? '').split(', ').filter(Boolean),
      notAfter: new Date(peer.validTo).toISOString(),
      daysToExpiry,
      spkiPin,
      fingerprint256: peer.fingerprint256,
      ...(outcome.http === undefined ? {} : { http: outcome.http }),
    }
    const when = `${connection.subject} expires ${connection.notAfter} (${daysToExpiry} days)`
    if (daysToExpiry < criticalDays) findings.push({ check: 'expiry', severity: 'critical', message: when, fix: `rotate now: naaccord-ipc certs rotate --within-days ${warnDays}` })
    else if (daysToExpiry < warnDays) findings.push({ check: 'expiry', severity: 'warning', message: when, fix: `rotate soon: naaccord-ipc certs rotate --within-days ${warnDays} (e.g. daily from a timer)` })
    else findings.push({ check: 'expiry', severity: 'ok', message: when })
    if (pins.length > 0) {
      if (pins.includes(spkiPin)) findings.push({ check: 'pin', severity: 'ok', message: `SPKI pin sha256//${spkiPin} is expected` })
      else findings.push({ check: 'pin', severity: 'critical', message: `SPKI pin sha256//${spkiPin} is none of the expected ${pins.map((p) => `sha256//${p}`).join(', ')}`, fix: 'the server key changed: if that was a planned rotation, add the new pin to the clients (keep both during the change); otherwise find out who holds this key' })
    }
    findings.push({ check: 'verify', severity: 'ok', message: `chain to the given CA and name "${servername}" verified (${outcome.version}, ${outcome.cipher})` })
  }
  // Findings are text for people: the subject, the answer line and error messages came from the server.
  return { status: worstSeverity(findings), target, servername, ...(connection ? { connection } : {}), findings: findings.map(printableFinding) }
}
