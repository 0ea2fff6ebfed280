import { lstatSync, type Stats } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import tls from 'node:tls'
import {
  DEFAULT_SOCKET_PATH,
  ENV,
  SUN_PATH_MAX,
  checkFolderChain,
  isIpcError,
  loadPem,
  myUid,
  parseInteger,
  parseMode,
  pick,
  printableFinding,
  resolveSafeEntry,
  trustedUids,
  type Env,
  type Finding,
  type SafeEntry,
  type SafePathSubject,
  type Severity,
} from '@naaccord/ipc-shared'
import { getPeerIds } from '@naaccord/ipc-peercred'
import { weakeningMessage, type SecuritySetting } from './security-report.js'
import { lockHolder } from './socket/socket-lock.js'

export type { Finding, Severity }

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

const octal = (m: number) => `0${(m & 0o7777).toString(8)}`

/** PEM text, or a file read through the shared safe-path rules (a FIFO, another user's file: refused). */
function pemOf(value: string, secret = false): string {
  return loadPem(secret ? '--key' : '--ca/--cert', value, secret).pem
}

const SUBJECT: SafePathSubject = { kind: 'socket', label: 'the socket', option: 'socketPath' }

/** "root, uid 1000 (this user) or uid 998 (--owner)": who the path and the server may belong to. */
function trustedNames(trust: ReadonlySet<number>): string {
  const me = myUid()
  const names = [...trust].map((u) => (u === 0 ? `root${me === 0 ? ' (this user)' : ''}` : u === me ? `uid ${u} (this user)` : `uid ${u} (--owner)`))
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names.at(-1)}` : names.join('')
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p)
  } catch {
    return undefined
  }
}

/** What to do about a component the safe-path walk refused, from its owner and what it is. */
function refusalFix(at: string, owner: number | undefined, trust: ReadonlySet<number>): string {
  if (owner !== undefined && !trust.has(owner)) {
    return (
      `if uid ${owner} is legitimately the services user, name it: --owner ${owner} (its clients need expectServer: { uid: ${owner} } too); ` +
      `otherwise another user could have placed or redirected the socket: find out who made ${at}. Nothing was sent to it`
    )
  }
  const st = lstatOrUndefined(at)
  if (st?.isDirectory() && st.mode & 0o022) {
    return st.mode & 0o1000
      ? 'a shared sticky folder (like /tmp) cannot hold the socket itself: give socketPath in a private folder (e.g. /run/naaccord)'
      : `anyone who can write it can replace the socket: chmod go-w ${at}`
  }
  if (st && !st.isDirectory() && !st.isSymbolicLink() && !st.isSocket()) {
    return 'the server refuses to replace it: remove it by hand after checking what it is, then restart the server'
  }
  return `the socket must be reached through folders and links owned by ${trustedNames(trust)} that nobody else may write: change the component named, or socketPath`
}

/**
 * The folders, links and socket file, walked by the shared safe-path module with the client's
 * trust (this user, root, `--owner`). A refusal is critical and ends the diagnosis: nothing is
 * connected to, as the client would not.
 */
function checkPath(socketPath: string, trust: ReadonlySet<number>, findings: Finding[]): SafeEntry | undefined {
  let entry: SafeEntry | { missing: string }
  try {
    entry = resolveSafeEntry(socketPath, 'socket', SUBJECT, trust)
  } catch (err) {
    const e = err as Error & { path?: string; owner?: number }
    if (isIpcError(err, 'IPC_SOCKET_PATH_TOO_LONG')) {
      findings.push({ check: 'path', severity: 'critical', message: e.message, fix: 'choose a shorter socketPath: its real path, links resolved, must fit too' })
    } else if (isIpcError(err, 'IPC_SOCKET_PATH_ACCESS')) {
      findings.push({ check: 'access', severity: 'critical', message: e.message, fix: 'run the doctor as root or as a user that may search every folder above the socket' })
    } else {
      const at = e.path ?? socketPath
      const st = lstatOrUndefined(at)
      const check = !st || st.isDirectory() || st.isSymbolicLink() ? 'folder' : 'socket'
      findings.push({ check, severity: 'critical', message: `${e.message}${isIpcError(err) ? '' : ` (${(err as NodeJS.ErrnoException).code ?? 'error'})`}`, fix: refusalFix(at, e.owner, trust) })
    }
    return undefined
  }
  if ('missing' in entry) {
    const folder = checkFolderChainQuiet(socketPath, trust)
    if (folder !== undefined && path.join(folder, path.basename(socketPath)) === entry.missing) {
      findings.push({ check: 'socket', severity: 'critical', message: `${socketPath}: ENOENT (no socket${entry.missing === socketPath ? '' : ` at ${entry.missing}`})`, fix: 'no socket: is the server running (systemctl status, its log)? Is socketPath the same on both sides?' })
    } else {
      findings.push({ check: 'folder', severity: 'critical', message: `${entry.missing}: ENOENT, on the way to ${socketPath}`, fix: 'the socket folder is missing: start the server (it creates the folder), or check socketPath' })
    }
    return undefined
  }
  const through = entry.realPath === socketPath ? '' : ` (${entry.realPath}, through links)`
  findings.push({ check: 'folder', severity: 'ok', message: `every folder and link on the way to ${socketPath}${through} is owned by ${trustedNames(trust)} and writable by nobody else` })
  return entry
}

/** The socket's real folder, or undefined when a folder is missing (the walk already passed). */
function checkFolderChainQuiet(socketPath: string, trust: ReadonlySet<number>): string | undefined {
  try {
    const r = checkFolderChain(socketPath, SUBJECT, trust)
    return typeof r === 'string' ? r : undefined
  } catch {
    return undefined
  }
}

interface Answer {
  status?: number
  body?: string
  error?: NodeJS.ErrnoException
}

const failure = (message: string, code: string): NodeJS.ErrnoException => Object.assign(new Error(message), { code })

/** The --ca/--cert/--key PEM text, read before anything is connected. */
function readTlsFiles(o: DiagnoseOptions): { ca: string; cert?: string; key?: string; servername: string } | undefined {
  if (!o.tls) return undefined
  try {
    return { ca: pemOf(o.tls.ca), ...(o.tls.cert ? { cert: pemOf(o.tls.cert), key: pemOf(o.tls.key ?? '', true) } : {}), servername: o.tls.servername ?? 'localhost' }
  } catch (error) {
    throw failure(`cannot read the TLS files: ${(error as Error).message}`, 'TLS_FILES')
  }
}

/** A plain Unix-socket connection to the checked real path, nothing written yet. */
function connectUnix(realPath: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(realPath)
    const timer = setTimeout(() => socket.destroy(failure(`no connection within ${timeoutMs} ms`, 'ETIMEDOUT')), timeoutMs)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.removeListener('error', reject)
      resolve(socket)
    })
    socket.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

/**
 * After connecting, before a byte is written: the kernel's credentials of the process that
 * listens must be a trusted uid (the client's check of the server process). Not ok: the caller
 * closes the connection unused.
 */
function checkServerProcess(socket: net.Socket, socketPath: string, trust: ReadonlySet<number>): Finding {
  let creds: { pid: number; uid: number; gid: number }
  try {
    creds = getPeerIds(socket)
  } catch (err) {
    return {
      check: 'process',
      severity: 'critical',
      message: `cannot read which uid runs the server on ${socketPath}, so nothing was sent: ${(err as Error).message}`,
      fix: 'the doctor checks the server process from the kernel before asking it, as the client does: reinstall @naaccord/ipc-server with its dependency @naaccord/ipc-peercred',
    }
  }
  if (!trust.has(creds.uid)) {
    return {
      check: 'process',
      severity: 'critical',
      message: `the server on ${socketPath} runs as uid ${creds.uid} (pid ${creds.pid}), not ${trustedNames(trust)}; nothing was sent`,
      fix:
        `if uid ${creds.uid} is legitimately the services user, name it: --owner ${creds.uid}; ` +
        `otherwise another user's process holds the socket (a passed descriptor, a moved socket): find out which (ps -p ${creds.pid}, ss -xlp)`,
    }
  }
  return { check: 'process', severity: 'ok', message: `the server process (pid ${creds.pid}) runs as uid ${creds.uid}, gid ${creds.gid}` }
}

/** GET /healthz over a connection already checked (TLS on it first with --ca). */
function getHealth(socket: net.Socket, tlsFiles: ReturnType<typeof readTlsFiles>, timeoutMs: number): Promise<Answer> {
  return new Promise<Answer>((settle) => {
    const connection = tlsFiles ? tls.connect({ socket, ...tlsFiles, rejectUnauthorized: true }) : socket
    const req = http.request({ createConnection: () => connection, path: '/healthz', method: 'GET', headers: { connection: 'close' } })
    // The whole answer within timeoutMs: http's own `timeout` is not armed on a socket handed in already connected.
    const timer = setTimeout(() => req.destroy(failure(`no answer within ${timeoutMs} ms`, 'ETIMEDOUT')), timeoutMs)
    const resolve = (a: Answer) => {
      clearTimeout(timer)
      settle(a)
    }
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ error }))
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d.length + body.length < 65_536 ? d : ''))
      res.on('end', () => resolve({ status: res.statusCode, body }))
      res.on('error', (error: NodeJS.ErrnoException) => resolve({ error }))
    })
    req.end()
  }).finally(() => socket.destroy())
}

function answerFindings(a: Answer, socketPath: string, tls: boolean, findings: Finding[]): void {
  const me = myUid()
  const e = a.error
  if (e) {
    const code = e.code ?? 'ERROR'
    const fixes: Record<string, [string, string]> = {
      ECONNREFUSED: ['server', `the socket file exists but nobody listens (a stale socket): restart the server; it removes the stale socket under its lock`],
      EACCES: ['access', `our uid ${me} may not open the socket: run as a user its mode and group admit, or widen socketMode/socketGroup`],
      ETIMEDOUT: ['server', 'the server accepted but did not answer in time: it may be overloaded or stuck; see its log'],
      HPE_INVALID_CONSTANT: ['tls', 'the server speaks TLS on this socket: pass --ca (and --cert/--key) to the doctor'],
      TLS_FILES: ['tls', 'check the --ca, --cert and --key paths and that this user may read them'],
      ECONNRESET: ['allow', `the server closed the connection at once: our uid ${me} is probably outside its allow policy (add it to allow.uids / NAACCORD_ALLOW_UIDS if it should connect)${tls ? ', or it refused our client certificate' : ', or it speaks TLS (pass --ca)'}`],
    }
    const [check, fix] = fixes[code] ?? (tls ? ['tls', 'the TLS connection failed; the tls findings below say why'] : ['server', 'see the server log'])
    findings.push({ check, severity: 'critical', message: `GET /healthz on ${socketPath}: ${code}: ${e.message}`, fix })
    return
  }
  findings.push({ check: 'server', severity: 'ok', message: `a server answers on ${socketPath}` })
  if (a.status === 403) {
    findings.push({ check: 'allow', severity: 'critical', message: `the server refused our uid ${me} (403)`, fix: `add uid ${me} to the server's allow.uids (NAACCORD_ALLOW_UIDS), or run the doctor as an allowed user` })
    return
  }
  findings.push({ check: 'allow', severity: 'ok', message: `our uid ${me} passes the server's allow policy` })
  let health: { status?: string; warnings?: string[]; security?: unknown } = {}
  try {
    health = JSON.parse(a.body ?? '') as typeof health
  } catch {
    // Not our health document: handled below.
  }
  if (a.status !== 200 || health.status === undefined) {
    findings.push({ check: 'health', severity: 'warning', message: `/healthz answered ${a.status} without a naaccord-ipc health document`, fix: 'the app may shadow /healthz, or this is not a naaccord-ipc server' })
  } else if (health.status !== 'ok') {
    findings.push({ check: 'health', severity: 'warning', message: `health ${health.status}: ${(health.warnings ?? []).join('; ')}`, fix: 'act on the warnings (e.g. rotate certificates that expire soon)' })
  } else {
    findings.push({ check: 'health', severity: 'ok', message: 'health ok' })
  }
  securityFindings(health.security, findings)
}

function isSetting(s: unknown): s is SecuritySetting {
  const o = s as Partial<SecuritySetting> | null
  return typeof o === 'object' && o !== null && typeof o.setting === 'string' && typeof o.source === 'string' && typeof o.weakens === 'boolean' && typeof o.why === 'string'
}

/** What to change to take a weakening back, from where it came from. */
function undo(s: SecuritySetting): string {
  const restart = 'then restart the server'
  if (s.source.startsWith('env:')) return `if this is not intended, unset ${s.source.slice(4)} in the server's environment (unit file, .env), ${restart}`
  if (s.source === 'option') return `if this is not intended, change ${s.setting} where the server calls serve(), ${restart}`
  return `set ${s.setting} (or what the reason names) where the server calls serve(), ${restart}`
}

/** The server's start-up security report (from /healthz): each weakening is a warning. */
function securityFindings(report: unknown, findings: Finding[]): void {
  // A server from before the report sends none: nothing to say.
  if (!Array.isArray(report)) return
  const settings = report.filter(isSetting)
  const weak = settings.filter((s) => s.weakens)
  for (const s of weak) findings.push({ check: 'security', severity: 'warning', message: weakeningMessage(s), fix: undo(s) })
  if (weak.length === 0) findings.push({ check: 'security', severity: 'ok', message: `the server reports ${settings.length} security settings, none weaker than the default` })
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
  const env = options.env ?? process.env
  const socketPath = path.resolve(String(pick(options.socketPath, env, ENV.socketPath) ?? DEFAULT_SOCKET_PATH))
  const timeoutMs = parseInteger('timeoutMs', options.timeoutMs ?? 3_000, 1)
  const expectedMode = options.mode === undefined ? undefined : parseMode('mode', options.mode)
  const owner = options.owner === undefined ? undefined : parseInteger('owner', options.owner, 0, 0xffffffff)
  const trust = trustedUids(owner)
  const findings: Finding[] = []
  const done = (realPath?: string): SocketDiagnosis => ({ socketPath, ...(realPath === undefined ? {} : { realPath }), socketUsable: realPath !== undefined, findings: findings.map(printableFinding) })

  const bytes = Buffer.byteLength(socketPath)
  if (bytes > SUN_PATH_MAX) {
    findings.push({ check: 'path', severity: 'critical', message: `${socketPath} is ${bytes} bytes; a socket path holds at most ${SUN_PATH_MAX}`, fix: 'choose a shorter socketPath (e.g. under /run/naaccord)' })
    return done()
  }
  findings.push({ check: 'path', severity: 'ok', message: `${socketPath} (${bytes} of ${SUN_PATH_MAX} bytes)` })

  const entry = checkPath(socketPath, trust, findings)
  if (!entry) return done()
  const st = entry.stat
  const mode = st.mode & 0o777
  findings.push({ check: 'socket', severity: 'ok', message: `a socket, mode ${octal(mode)}, owner ${st.uid}, group ${st.gid}` })
  if (expectedMode !== undefined && mode !== expectedMode) findings.push({ check: 'mode', severity: 'warning', message: `mode is ${octal(mode)}, configured ${octal(expectedMode)}`, fix: 'something changed the socket after the server made it (or the configuration differs): restart the server, and check socketMode' })
  if (owner !== undefined && st.uid !== owner) findings.push({ check: 'owner', severity: 'warning', message: `owner is uid ${st.uid}, expected ${owner} (--owner)`, fix: 'the server runs as another user than expected: check the service unit User= (or SocketUser= with socket activation)' })
  if (options.group !== undefined && st.gid !== options.group) findings.push({ check: 'group', severity: 'warning', message: `group is gid ${st.gid}, expected ${options.group}`, fix: 'set socketGroup (NAACCORD_SOCKET_GROUP) on the server' })
  if (mode & 0o006) findings.push({ check: 'mode', severity: 'warning', message: `any local user may connect (mode ${octal(mode)})`, fix: 'only the allow policy stands between them and the server: prefer socketMode 0660 with a socketGroup' })

  const holder = await lockHolder(entry.realPath)
  if (holder === undefined) findings.push({ check: 'lock', severity: 'warning', message: 'no lock owner beside the socket', fix: 'the socket was not made by a running naaccord-ipc server (or by an old version): check which process listens (ss -xlp)' })
  else if (!holder.alive) findings.push({ check: 'lock', severity: 'critical', message: `the server that made the socket (pid ${holder.pid}) is gone`, fix: 'restart the server: it removes the stale socket and lock at start' })
  else findings.push({ check: 'lock', severity: 'ok', message: `held by pid ${holder.pid}, alive` })

  const withTls = options.tls !== undefined
  let tlsFiles: ReturnType<typeof readTlsFiles>
  let socket: net.Socket
  try {
    tlsFiles = readTlsFiles(options)
    socket = await connectUnix(entry.realPath, timeoutMs)
  } catch (error) {
    answerFindings({ error: error as NodeJS.ErrnoException }, socketPath, withTls, findings)
    return done(entry.realPath)
  }
  const serverProcess = checkServerProcess(socket, socketPath, trust)
  findings.push(serverProcess)
  if (serverProcess.severity !== 'ok') {
    socket.destroy()
    return done()
  }
  answerFindings(await getHealth(socket, tlsFiles, timeoutMs), socketPath, withTls, findings)
  return done(entry.realPath)
}
