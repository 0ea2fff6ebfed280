// What the doctor concludes from the server's answer to GET /healthz: a server answers, our uid
// passes its allow policy, its health, and each weakening in its start-up security report.
import { myUid, type Finding } from '@naaccord/ipc-shared'
import { weakeningMessage, type SecuritySetting } from '@naaccord/ipc-server'

/** The answer (status and body), or why there is none. */
export interface HealthAnswer {
  readonly status?: number | undefined
  readonly body?: string | undefined
  readonly error?: NodeJS.ErrnoException | undefined
}

/** What to do about a request that failed, by its code. */
function failureFinding(e: NodeJS.ErrnoException, socketPath: string, tls: boolean): Finding {
  const me = myUid()
  const code = e.code ?? 'ERROR'
  const fixes: Record<string, [string, string]> = {
    ECONNREFUSED: ['server', `the socket file exists but nobody listens (a stale socket): restart the server; it removes the stale socket under its lock`],
    EACCES: ['access', `our uid ${me} may not open the socket: run as a user its mode and group admit, or widen socketMode/socketGroup`],
    ETIMEDOUT: ['server', 'the server accepted but did not answer in time: it may be overloaded or stuck; see its log'],
    NOT_HTTP: ['tls', 'the server speaks TLS on this socket: pass --ca (and --cert/--key) to the doctor'],
    TLS_FILES: ['tls', 'check the --ca, --cert and --key paths and that this user may read them'],
    ECONNRESET: ['allow', `the server closed the connection at once: our uid ${me} is probably outside its allow policy (add it to allow.uids / NAACCORD_ALLOW_UIDS if it should connect)${tls ? ', or it refused our client certificate' : ', or it speaks TLS (pass --ca)'}`],
  }
  const [check, fix] = fixes[code] ?? (tls ? ['tls', 'the TLS connection failed; the tls findings below say why'] : ['server', 'see the server log'])
  return { check, severity: 'critical', message: `GET /healthz on ${socketPath}: ${code}: ${e.message}`, fix }
}

/** The health document's status and warnings. */
function healthFinding(status: number | undefined, health: { status?: string; warnings?: string[] }): Finding {
  if (status !== 200 || health.status === undefined) {
    return { check: 'health', severity: 'warning', message: `/healthz answered ${status} without a naaccord-ipc health document`, fix: 'the app may shadow /healthz, or this is not a naaccord-ipc server' }
  }
  if (health.status !== 'ok') {
    return { check: 'health', severity: 'warning', message: `health ${health.status}: ${(health.warnings ?? []).join('; ')}`, fix: 'act on the warnings (e.g. rotate certificates that expire soon)' }
  }
  return { check: 'health', severity: 'ok', message: 'health ok' }
}

/**
 * The findings of one answer to GET /healthz (or of its failure): a server answers, our uid
 * passes its allow policy, its health, and the weakenings of its security report.
 *
 * @example
 * answerFindings({ status: 200, body }, '/run/naaccord/service.sock', false, findings)
 */
export function answerFindings(a: HealthAnswer, socketPath: string, tls: boolean, findings: Finding[]): void {
  if (a.error) {
    findings.push(failureFinding(a.error, socketPath, tls))
    return
  }
  const me = myUid()
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
    // Not our health document: handled by healthFinding.
  }
  findings.push(healthFinding(a.status, health))
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

