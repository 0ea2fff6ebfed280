import { promises as fsp, readFileSync, type Stats } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import path from 'node:path'
import { DEFAULT_SOCKET_PATH, ENV, SUN_PATH_MAX, parseInteger, parseMode, pick, type Env, type Finding, type Severity } from '@naaccord/ipc-shared'
import { weakeningMessage, type SecuritySetting } from './security-report.js'
import { lockHolder } from './socket-lock.js'

export type { Finding, Severity }

export interface DiagnoseOptions {
  /** The socket. Default: NAACCORD_SOCKET_PATH, then `/var/run/naaccord/service.sock`. */
  socketPath?: string
  /** The socket mode the server was configured with (e.g. `0660`); checked when given. */
  mode?: string | number
  /** Expected owner uid of the socket; checked when given. */
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
  readonly socketPath: string
  /** The path holds a socket we could connect to (a TLS check over it makes sense). */
  readonly socketUsable: boolean
  readonly findings: readonly Finding[]
}

const uid = () => process.getuid?.() ?? -1
const octal = (m: number) => `0${(m & 0o7777).toString(8)}`

function pemOf(value: string): string {
  return value.includes('-----BEGIN') ? value : readFileSync(value, 'utf8')
}

/** Every folder from the socket's up to `/`: who may rename or replace what is below. */
async function folderChain(socketPath: string, socketOwner: number | undefined, findings: Finding[]): Promise<boolean> {
  let ok = true
  const trusted = new Set([0, socketOwner ?? uid()])
  for (let dir = path.dirname(socketPath), first = true; ; dir = path.dirname(dir), first = false) {
    let st: Stats
    try {
      st = await fsp.lstat(dir)
    } catch (err) {
      findings.push({ check: 'folder', severity: 'critical', message: `${dir}: ${(err as NodeJS.ErrnoException).code}`, fix: first ? 'the socket folder is missing: start the server (it creates the folder), or check socketPath' : 'check the path' })
      return false
    }
    if (st.isSymbolicLink()) {
      findings.push({ check: 'folder', severity: 'warning', message: `${dir} is a symbolic link`, fix: 'give socketPath through real folders: the server refuses a symlinked socket folder, and a link lets its owner redirect clients' })
    } else if (!trusted.has(st.uid)) {
      ok = false
      findings.push({ check: 'folder', severity: 'critical', message: `${dir} is owned by uid ${st.uid}, neither root nor the socket owner`, fix: `that user can replace the socket: chown root ${dir}, or move the socket to a folder of the service user` })
    } else if (st.mode & 0o022 && !(st.mode & 0o1000 && !first)) {
      ok = false
      findings.push({ check: 'folder', severity: 'critical', message: `${dir} is writable by ${st.mode & 0o002 ? 'others' : 'its group'} (mode ${octal(st.mode)})`, fix: `anyone who can write it can replace the socket: chmod go-w ${dir}` })
    }
    if (dir === path.dirname(dir)) break
  }
  if (ok) findings.push({ check: 'folder', severity: 'ok', message: `every folder above ${socketPath} is owned by root or the socket owner and not writable by others` })
  return ok
}

interface Answer {
  status?: number
  body?: string
  error?: NodeJS.ErrnoException
}

function getHealth(socketPath: string, o: DiagnoseOptions, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve) => {
    const common = { socketPath, path: '/healthz', method: 'GET', timeout: timeoutMs, headers: { connection: 'close' } }
    let tlsFiles: { ca: string; cert?: string; key?: string } | undefined
    try {
      tlsFiles = o.tls && { ca: pemOf(o.tls.ca), ...(o.tls.cert ? { cert: pemOf(o.tls.cert), key: pemOf(o.tls.key ?? '') } : {}) }
    } catch (error) {
      resolve({ error: Object.assign(new Error(`cannot read the TLS files: ${(error as Error).message}`), { code: 'TLS_FILES' }) })
      return
    }
    const req = tlsFiles && o.tls
      ? https.request({
          ...common,
          ...tlsFiles,
          servername: o.tls.servername ?? 'localhost',
          rejectUnauthorized: true,
          agent: false,
        })
      : http.request({ ...common, agent: false })
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })))
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ error }))
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d.length + body.length < 65_536 ? d : ''))
      res.on('end', () => resolve({ status: res.statusCode, body }))
      res.on('error', (error: NodeJS.ErrnoException) => resolve({ error }))
    })
    req.end()
  })
}

function answerFindings(a: Answer, socketPath: string, tls: boolean, findings: Finding[]): void {
  const me = uid()
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
 * The socket side of `naaccord-ipc doctor`: path length, the socket file (type, mode, owner,
 * group), the folder chain, the lock holder, a request to /healthz (a server answers, our uid
 * passes its allow policy, its health, and each weakening in its start-up security
 * report). Never throws for what it finds; each finding says what
 * to do.
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
  const findings: Finding[] = []
  const done = (socketUsable: boolean): SocketDiagnosis => ({ socketPath, socketUsable, findings })

  const bytes = Buffer.byteLength(socketPath)
  if (bytes > SUN_PATH_MAX) {
    findings.push({ check: 'path', severity: 'critical', message: `${socketPath} is ${bytes} bytes; a socket path holds at most ${SUN_PATH_MAX}`, fix: 'choose a shorter socketPath (e.g. under /run/naaccord)' })
    return done(false)
  }
  findings.push({ check: 'path', severity: 'ok', message: `${socketPath} (${bytes} of ${SUN_PATH_MAX} bytes)` })

  let st: Stats | undefined
  try {
    st = await fsp.lstat(socketPath)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    findings.push({ check: 'socket', severity: 'critical', message: `${socketPath}: ${code}`, fix: code === 'ENOENT' ? 'no socket: is the server running (systemctl status, its log)? Is socketPath the same on both sides?' : 'check the permissions of the folders above it' })
  }
  await folderChain(socketPath, st?.uid, findings)
  if (!st) return done(false)
  if (!st.isSocket()) {
    findings.push({ check: 'socket', severity: 'critical', message: `${socketPath} is not a socket (${st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a folder' : 'a file'})`, fix: 'the server refuses to replace it: remove it by hand after checking what it is, then restart the server' })
    return done(false)
  }
  const mode = st.mode & 0o777
  findings.push({ check: 'socket', severity: 'ok', message: `a socket, mode ${octal(mode)}, owner ${st.uid}, group ${st.gid}` })
  if (expectedMode !== undefined && mode !== expectedMode) findings.push({ check: 'mode', severity: 'warning', message: `mode is ${octal(mode)}, configured ${octal(expectedMode)}`, fix: 'something changed the socket after the server made it (or the configuration differs): restart the server, and check socketMode' })
  if (options.owner !== undefined && st.uid !== options.owner) findings.push({ check: 'owner', severity: 'warning', message: `owner is uid ${st.uid}, expected ${options.owner}`, fix: 'the server runs as another user than expected: check the service unit User=' })
  if (options.group !== undefined && st.gid !== options.group) findings.push({ check: 'group', severity: 'warning', message: `group is gid ${st.gid}, expected ${options.group}`, fix: 'set socketGroup (NAACCORD_SOCKET_GROUP) on the server' })
  if (mode & 0o006) findings.push({ check: 'mode', severity: 'warning', message: `any local user may connect (mode ${octal(mode)})`, fix: 'only the allow policy stands between them and the server: prefer socketMode 0660 with a socketGroup' })

  const holder = await lockHolder(socketPath)
  if (holder === undefined) findings.push({ check: 'lock', severity: 'warning', message: 'no lock owner beside the socket', fix: 'the socket was not made by a running naaccord-ipc server (or by an old version): check which process listens (ss -xlp)' })
  else if (!holder.alive) findings.push({ check: 'lock', severity: 'critical', message: `the server that made the socket (pid ${holder.pid}) is gone`, fix: 'restart the server: it removes the stale socket and lock at start' })
  else findings.push({ check: 'lock', severity: 'ok', message: `held by pid ${holder.pid}, alive` })

  answerFindings(await getHealth(socketPath, options, timeoutMs), socketPath, options.tls !== undefined, findings)
  return done(true)
}
