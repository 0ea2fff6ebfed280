import type net from 'node:net'
import path from 'node:path'
import {
  DEFAULT_SOCKET_PATH,
  ENV,
  SUN_PATH_MAX,
  loadPem,
  parseInteger,
  parseMode,
  pick,
  printableFinding,
  trustedUids,
  type Env,
  type Finding,
  type SafeEntry,
  type Severity,
} from '@naaccord/ipc-shared'
import { lockHolder } from '@naaccord/ipc-server'
import { answerFindings } from './doctor-health.js'
import { checkPath, checkServerProcess } from './doctor-trust.js'
import { probeHealth, type ProbeTls } from './health-probe.js'

export type { Finding, Severity }

/** The defaults of `diagnoseSocket` (the socket path's: NAACCORD_SOCKET_PATH, then DEFAULT_SOCKET_PATH). */
export const DOCTOR_DEFAULTS = Object.freeze({ timeoutMs: 3_000, servername: 'localhost' })

export interface DiagnoseOptions {
  /** The socket. Default: NAACCORD_SOCKET_PATH, then `/var/run/naaccord/service.sock`. */
  socketPath?: string
  /** The socket mode the server was configured with (e.g. `0660`); checked when given. */
  mode?: string | number
  /**
   * The services user's uid, when the server runs as neither this user nor root. Trusted like
   * them (the client's `expectServer.uid`): the folders, links and socket file on the way may
   * belong to it and the server process may run as it. The socket's owner is checked against it.
   */
  owner?: number
  /** Expected group gid of the socket; checked when given. */
  group?: number
  /** For the /healthz request over TLS (PEM text or paths). Without it, plaintext HTTP is spoken. */
  tls?: { ca: string; cert?: string | undefined; key?: string | undefined; servername?: string | undefined }
  /** Time limit of the request to the server, ms. Default 3000. */
  timeoutMs?: number
  env?: Env
}

export interface SocketDiagnosis {
  /** The socket path as given (or from NAACCORD_SOCKET_PATH, or the default), made absolute. */
  readonly socketPath: string
  /** The checked real path (trusted links resolved): what a TLS check connects to. Set when `socketUsable`. */
  readonly realPath?: string
  /** The path passed the safe-path check and holds a socket a trusted process listens on. */
  readonly socketUsable: boolean
  /** Each message and fix is printable: control characters a server or the filesystem supplied are escaped. */
  readonly findings: readonly Finding[]
}

interface Resolved {
  readonly socketPath: string
  readonly timeoutMs: number
  readonly mode: number | undefined
  readonly owner: number | undefined
  readonly group: number | undefined
  readonly trust: ReadonlySet<number>
}

function resolveDiagnose(options: DiagnoseOptions): Resolved {
  const env = options.env ?? process.env
  const owner = options.owner === undefined ? undefined : parseInteger('owner', options.owner, 0, 0xffffffff)
  return {
    socketPath: path.resolve(String(pick(options.socketPath, env, ENV.socketPath) ?? DEFAULT_SOCKET_PATH)),
    timeoutMs: parseInteger('timeoutMs', options.timeoutMs ?? DOCTOR_DEFAULTS.timeoutMs, 1),
    mode: options.mode === undefined ? undefined : parseMode('mode', options.mode),
    owner,
    group: options.group,
    trust: trustedUids(owner),
  }
}

const octal = (m: number) => `0${(m & 0o7777).toString(8)}`

/** The path fits in sun_path (unix(7): 108 bytes with the NUL). */
function lengthFinding(socketPath: string): Finding {
  const bytes = Buffer.byteLength(socketPath)
  if (bytes > SUN_PATH_MAX) return { check: 'path', severity: 'critical', message: `${socketPath} is ${bytes} bytes; a socket path holds at most ${SUN_PATH_MAX}`, fix: 'choose a shorter socketPath (e.g. under /run/naaccord)' }
  return { check: 'path', severity: 'ok', message: `${socketPath} (${bytes} of ${SUN_PATH_MAX} bytes)` }
}

/** The socket file's mode, owner and group against what was configured. */
function socketFileFindings(st: SafeEntry['stat'], o: Resolved): Finding[] {
  const mode = st.mode & 0o777
  const findings: Finding[] = [{ check: 'socket', severity: 'ok', message: `a socket, mode ${octal(mode)}, owner ${st.uid}, group ${st.gid}` }]
  if (o.mode !== undefined && mode !== o.mode) findings.push({ check: 'mode', severity: 'warning', message: `mode is ${octal(mode)}, configured ${octal(o.mode)}`, fix: 'something changed the socket after the server made it (or the configuration differs): restart the server, and check socketMode' })
  if (o.owner !== undefined && st.uid !== o.owner) findings.push({ check: 'owner', severity: 'warning', message: `owner is uid ${st.uid}, expected ${o.owner} (--owner)`, fix: 'the server runs as another user than expected: check the service unit User= (or SocketUser= with socket activation)' })
  if (o.group !== undefined && st.gid !== o.group) findings.push({ check: 'group', severity: 'warning', message: `group is gid ${st.gid}, expected ${o.group}`, fix: 'set socketGroup (NAACCORD_SOCKET_GROUP) on the server' })
  if (mode & 0o006) findings.push({ check: 'mode', severity: 'warning', message: `any local user may connect (mode ${octal(mode)})`, fix: 'only the allow policy stands between them and the server: prefer socketMode 0660 with a socketGroup' })
  return findings
}

async function lockFinding(realPath: string): Promise<Finding> {
  const holder = await lockHolder(realPath)
  if (holder === undefined) return { check: 'lock', severity: 'warning', message: 'no lock owner beside the socket', fix: 'the socket was not made by a running naaccord-ipc server (or by an old version): check which process listens (ss -xlp)' }
  if (!holder.alive) return { check: 'lock', severity: 'critical', message: `the server that made the socket (pid ${holder.pid}) is gone`, fix: 'restart the server: it removes the stale socket and lock at start' }
  return { check: 'lock', severity: 'ok', message: `held by pid ${holder.pid}, alive` }
}

/** The --ca/--cert/--key PEM text (through the shared safe-path rules: a FIFO, another user's file: refused), read before anything is connected. */
function readTlsFiles(t: NonNullable<DiagnoseOptions['tls']>): ProbeTls {
  try {
    const pem = (value: string, secret = false) => loadPem(secret ? '--key' : '--ca/--cert', value, secret).pem
    return { ca: pem(t.ca), ...(t.cert ? { cert: pem(t.cert), key: pem(t.key ?? '', true) } : {}), servername: t.servername ?? DOCTOR_DEFAULTS.servername }
  } catch (error) {
    throw Object.assign(new Error(`cannot read the TLS files: ${(error as Error).message}`), { code: 'TLS_FILES' })
  }
}

/**
 * GET /healthz through the health probe, once the process that listens is proven trusted (before
 * a byte, a ClientHello included, is written). Resolves whether the socket is usable: false when
 * the process check refused it.
 */
async function askServer(realPath: string, o: Resolved, t: DiagnoseOptions['tls'], findings: Finding[]): Promise<boolean> {
  let tls: ProbeTls | undefined
  try {
    tls = t === undefined ? undefined : readTlsFiles(t)
  } catch (error) {
    answerFindings({ error: error as NodeJS.ErrnoException }, o.socketPath, true, findings)
    return true
  }
  const admit = (socket: net.Socket) => {
    const finding = checkServerProcess(socket, o.socketPath, o.trust)
    findings.push(finding)
    return finding.severity === 'ok'
  }
  const probe = await probeHealth({ target: { path: realPath }, tls, method: 'GET', host: tls?.servername ?? DOCTOR_DEFAULTS.servername, timeoutMs: o.timeoutMs, admit })
  if (!probe.admitted) return false
  const notHttp = probe.answer !== undefined && probe.answer.status === undefined
  const error = probe.error ?? (notHttp ? Object.assign(new Error(`the answer is not HTTP: ${probe.answer?.statusLine.slice(0, 40)}`), { code: 'NOT_HTTP' }) : undefined)
  answerFindings(error ? { error } : { status: probe.answer?.status, body: probe.answer?.body }, o.socketPath, t !== undefined, findings)
  return true
}

/**
 * The socket side of `naaccord-ipc doctor`: path length; the folders, links and socket file
 * through the shared safe-path module, trusting what the client trusts (this user, root and
 * `owner`); the socket's mode, owner and group; the lock holder; the uid of the process that
 * listens (from the kernel); then a request to /healthz (a server answers, our uid passes its
 * allow policy, its health, and each weakening in its start-up security report). Nothing is
 * sent to a socket the path or process check refused. Never throws for what it finds; each
 * finding says what to do, with what the server or the filesystem supplied made printable.
 *
 * @example
 * const { findings } = await diagnoseSocket({ socketPath: '/run/naaccord/service.sock', mode: '0660' })
 * findings.filter((f) => f.severity !== 'ok')
 */
export async function diagnoseSocket(options: DiagnoseOptions = {}): Promise<SocketDiagnosis> {
  const o = resolveDiagnose(options)
  const findings: Finding[] = []
  const done = (realPath?: string): SocketDiagnosis => ({ socketPath: o.socketPath, ...(realPath === undefined ? {} : { realPath }), socketUsable: realPath !== undefined, findings: findings.map(printableFinding) })
  findings.push(lengthFinding(o.socketPath))
  if (findings[0]?.severity !== 'ok') return done()
  const entry = checkPath(o.socketPath, o.trust, findings)
  if (!entry) return done()
  findings.push(...socketFileFindings(entry.stat, o), await lockFinding(entry.realPath))
  return done((await askServer(entry.realPath, o, options.tls, findings)) ? entry.realPath : undefined)
}
