import os from 'node:os'
import { addonOverrideInEffect } from '@naaccord/ipc-peercred'
import { ENV, type Logger, type SettingSource } from '@naaccord/ipc-shared'
import { warnWhateverLevel } from '@naaccord/ipc-shared/logger'
import type { ResolvedServerOptions, ServerSettingSources } from './options.js'

/** A setting's effective value as the report shows it: modes as octal text ("0600"), lists of ids, `null` for "none". */
export type SettingValue = string | number | boolean | null | readonly number[] | readonly string[]

/** One security setting in force: its value, where it came from, and whether it is weaker than the default. */
export interface SecuritySetting {
  /** The option's name (`socketMode`, `trustedProxy.uids`), or `peerCredentialsAddon` for NAACCORD_PEERCRED_ADDON. */
  readonly setting: string
  readonly value: SettingValue
  /** "option", "env:<VARIABLE>" or "default". */
  readonly source: SettingSource
  /** Weaker than the safe default: logged at warn at every start, whatever the log level. */
  readonly weakens: boolean
  /** What the value means for who can connect, what they can claim, what travels in clear. */
  readonly why: string
}

/** What the report needs from the process besides the options. */
export interface SecurityContext {
  /** This process's uid (the default `allow.uids`). */
  readonly uid: number
  /** The addon file named by NAACCORD_PEERCRED_ADDON, when that test hook is in effect. */
  readonly peerCredentialsAddon: string | undefined
}

/**
 * The context of this process: its uid and the peer-credential addon override.
 *
 * @example
 * serverSecurityReport(opts, securityContext())
 */
export function securityContext(): SecurityContext {
  return { uid: process.getuid?.() ?? os.userInfo().uid, peerCredentialsAddon: addonOverrideInEffect() }
}

/** The socket settings, shared by serve() and the supervisor. */
export interface SocketSettings {
  readonly socketMode: number
  readonly socketGid: number | undefined
  readonly dirMode: number
  readonly sources: Pick<ServerSettingSources, 'socketMode' | 'socketGroup' | 'dirMode'>
}

const octal = (mode: number): string => `0${mode.toString(8).padStart(3, '0')}`
const ids = (list: readonly number[]): string => list.join(', ')

/** Who stands behind the file mode: the server's allow policy, nothing (allow: false), or the app the supervisor runs. */
type Gatekeeper = 'allow' | 'none' | 'app'

function socketModeSetting(s: SocketSettings, hasSocket: boolean, gate: Gatekeeper): SecuritySetting {
  const base = { setting: 'socketMode', value: octal(s.socketMode), source: s.sources.socketMode }
  if (!hasSocket) return { ...base, weakens: false, why: 'no Unix socket listener' }
  const behind =
    gate === 'none'
      ? 'the peer check is off (allow: false), so every one of them is served'
      : gate === 'allow'
        ? 'only the allow policy stands between them and the server'
        : "only the app's allow policy stands between them and it"
  if (s.socketMode & 0o007) {
    return { ...base, weakens: true, why: `ANY local user may open the socket (mode ${octal(s.socketMode)}); ${behind}` }
  }
  if (s.socketMode & 0o070 && s.socketGid === undefined) {
    return {
      ...base,
      weakens: true,
      why: `members of this process's own group may open the socket (mode ${octal(s.socketMode)}) though no socketGroup was chosen; name the group with socketGroup, or use 0600`,
    }
  }
  if (s.socketMode & 0o070) {
    return { ...base, weakens: false, why: `members of group ${s.socketGid} (socketGroup) may open the socket; ${behind}` }
  }
  return { ...base, weakens: false, why: 'only our own uid (and root) may open the socket' }
}

function socketSettings(s: SocketSettings, hasSocket: boolean, gate: Gatekeeper): SecuritySetting[] {
  return [
    socketModeSetting(s, hasSocket, gate),
    {
      setting: 'socketGroup',
      value: s.socketGid ?? null,
      source: s.sources.socketGroup,
      weakens: false,
      why: s.socketGid === undefined ? "the socket keeps this process's group" : `group ${s.socketGid} owns the socket and a folder we create`,
    },
    { setting: 'dirMode', value: octal(s.dirMode), source: s.sources.dirMode, weakens: false, why: 'group and others can never write the socket folder (refused at start)' },
  ]
}

function addonSetting(ctx: SecurityContext, uses: string): SecuritySetting {
  const file = ctx.peerCredentialsAddon
  if (file === undefined) return { setting: 'peerCredentialsAddon', value: 'packaged', source: 'default', weakens: false, why: `${uses} use the packaged native addon` }
  return {
    setting: 'peerCredentialsAddon',
    value: file,
    source: `env:${ENV.peerAddon}`,
    weakens: true,
    why: `${uses} use ${file} instead of the packaged addon: a test hook that decides who a peer is; never set it in production (treat it like LD_PRELOAD)`,
  }
}

function allowSettings(opts: ResolvedServerOptions, ctx: SecurityContext, hasSocket: boolean): SecuritySetting[] {
  const src = opts.sources
  if (opts.allow === false) {
    return [
      {
        setting: 'allow',
        value: false,
        source: src.allow,
        weakens: hasSocket,
        why: hasSocket ? 'the peer check is OFF: any process that can open the socket is served, and req.peer carries no uid' : 'no Unix socket listener (the peer check is for sockets only)',
      },
    ]
  }
  const { uids, gids } = opts.allow
  // Root is not counted: it can read this process's memory whatever the policy says.
  const others = uids.filter((u) => u !== ctx.uid && u !== 0)
  const own = uids.includes(ctx.uid) ? `our own uid ${ctx.uid}${uids.includes(0) && ctx.uid !== 0 ? ' and root' : ''}` : 'root'
  return [
    {
      setting: 'allow.uids',
      value: uids,
      source: src['allow.uids'],
      weakens: hasSocket && others.length > 0,
      why: others.length > 0 ? `processes running as uid ${ids(others)} are served over the socket (the default is our own uid ${ctx.uid} only)` : `only ${own} may be served over the socket`,
    },
    {
      setting: 'allow.gids',
      value: gids,
      source: src['allow.gids'],
      weakens: hasSocket && gids.length > 0,
      why: gids.length > 0 ? `any process whose primary gid is ${ids(gids)} is served over the socket, whatever its uid` : 'no group admits a peer',
    },
  ]
}

function tlsSettings(opts: ResolvedServerOptions): SecuritySetting[] {
  const src = opts.sources
  const tls = opts.tls
  if (!tls) return [{ setting: 'tls', value: false, source: src.tls, weakens: false, why: 'no TLS on any listener (see acknowledgePlaintextSocket and allowPlaintextTcp)' }]
  const clientAuthWhy = {
    require: 'every client must present a certificate the CA signed',
    optional: 'a client without a certificate completes the handshake: on TCP it has passed no check of ours, and the app must refuse it itself',
    none: 'client certificates are not asked for: on TCP any client that reaches the port is served',
  } as const
  return [
    { setting: 'tls', value: true, source: src.tls, weakens: false, why: 'TLS on every listener' },
    { setting: 'tls.clientAuth', value: tls.clientAuth, source: src['tls.clientAuth'], weakens: tls.clientAuth !== 'require', why: clientAuthWhy[tls.clientAuth] },
    {
      setting: 'tls.minVersion',
      value: tls.minVersion,
      source: src['tls.minVersion'],
      weakens: tls.minVersion !== 'TLSv1.3',
      why: tls.minVersion === 'TLSv1.3' ? 'TLS 1.3 only' : 'TLS 1.2 is accepted as well as 1.3 (the default is 1.3 only)',
    },
    {
      setting: 'tls.allowClients',
      value: tls.allowClients ?? null,
      source: src['tls.allowClients'],
      weakens: false,
      why: tls.allowClients ? 'only client certificates with these names or fingerprints' : 'any client certificate the CA signed',
    },
  ]
}

function plaintextSettings(opts: ResolvedServerOptions, hasSocket: boolean): SecuritySetting[] {
  const src = opts.sources
  const plainSocket = hasSocket && !opts.tls
  const plainTcp = opts.tls ? [] : opts.listen.flatMap((t) => (t.kind === 'tcp' ? [`${t.host}:${t.port}`] : []))
  return [
    {
      setting: 'acknowledgePlaintextSocket',
      value: opts.acknowledgePlaintextSocket,
      source: src.acknowledgePlaintextSocket,
      weakens: plainSocket && !opts.acknowledgePlaintextSocket,
      why: !plainSocket
        ? opts.tls
          ? 'TLS on the socket'
          : 'no Unix socket listener'
        : opts.acknowledgePlaintextSocket
          ? 'plaintext HTTP over the Unix socket, accepted by name'
          : 'plaintext HTTP over the Unix socket (protected by the file mode and the peer check, not encrypted); add tls for defence in depth, or acknowledgePlaintextSocket: true to accept it by name',
    },
    {
      setting: 'allowPlaintextTcp',
      value: opts.allowPlaintextTcp,
      source: src.allowPlaintextTcp,
      weakens: plainTcp.length > 0,
      why:
        plainTcp.length > 0
          ? `listening on TCP ${plainTcp.join(', ')} without TLS: requests and answers, health data included, cross the network in clear text, and any host that reaches the port is served`
          : opts.allowPlaintextTcp
            ? 'no effect: no TCP listener without TLS'
            : 'a TCP listener without TLS refuses the start',
    },
  ]
}

function trustedProxySettings(opts: ResolvedServerOptions): SecuritySetting[] {
  const proxy = opts.trustedProxy
  const src = opts.sources
  if (!proxy) return [{ setting: 'trustedProxy.uids', value: null, source: src['trustedProxy.uids'], weakens: false, why: 'no identity header is believed from anyone' }]
  return [
    {
      setting: 'trustedProxy.uids',
      value: proxy.uids,
      source: src['trustedProxy.uids'],
      weakens: true,
      why: `processes running as uid ${ids(proxy.uids)} may claim any client identity (req.peer.forwardedIdentity) in the ${proxy.identityHeader} header; list the reverse proxy's uid only`,
    },
    {
      setting: 'trustedProxy.identityHeader',
      value: proxy.identityHeader,
      source: src['trustedProxy.identityHeader'],
      weakens: false,
      why: 'removed from every request; believed only from the uids above',
    },
  ]
}

/**
 * The security settings in force for serve(), each with its effective value, where it came from
 * (option, `env:<VARIABLE>`, default) and whether it weakens the default: `allow` wider than our
 * own uid or off, a socket mode that opens the socket to others (or to a group not chosen with
 * socketGroup), the NAACCORD_PEERCRED_ADDON test hook, plaintext over the socket not
 * acknowledged, plaintext TCP, TLS client certificates not required or TLS 1.2, and trusted
 * proxy uids. Pure: the same options and context give the same list. Holds no secrets (no
 * key, certificate or path to one).
 *
 * @example
 * const report = serverSecurityReport(resolveServerOptions({ socketMode: 0o666 }), securityContext())
 * report.filter((s) => s.weakens) // [{ setting: 'socketMode', value: '0666', source: 'option', weakens: true, why: 'ANY local user ...' }, ...]
 */
export function serverSecurityReport(opts: ResolvedServerOptions, ctx: SecurityContext): SecuritySetting[] {
  const hasSocket = opts.listen.some((t) => t.kind === 'socket')
  return [
    ...socketSettings(opts, hasSocket, opts.allow === false ? 'none' : 'allow'),
    ...allowSettings(opts, ctx, hasSocket),
    addonSetting(ctx, 'the peer check and the socket lock'),
    ...tlsSettings(opts),
    ...plaintextSettings(opts, hasSocket),
    ...trustedProxySettings(opts),
  ]
}

/**
 * The security settings of `naaccord-ipc run`: the socket it holds for the app (mode, group,
 * folder) and the addon its socket lock uses. The app's own serve() reports the rest.
 *
 * @example
 * supervisorSecurityReport(resolveSupervisorOptions({ command: ['node', 'app.js'] }), securityContext())
 */
export function supervisorSecurityReport(opts: SocketSettings, ctx: SecurityContext): SecuritySetting[] {
  return [...socketSettings(opts, true, 'app'), addonSetting(ctx, 'the socket lock and the descriptor checks')]
}

function show(value: SettingValue): string {
  if (value === null) return 'none'
  if (Array.isArray(value)) return value.length === 0 ? '[]' : value.join(',')
  return String(value)
}

/**
 * The warn line of one weakening: names the setting, its value and where it came from.
 *
 * @example
 * weakeningMessage({ setting: 'socketMode', value: '0666', source: 'env:NAACCORD_SOCKET_MODE', weakens: true, why: '...' })
 * // 'security weakened: socketMode = 0666 (from env:NAACCORD_SOCKET_MODE): ...'
 */
export function weakeningMessage(s: SecuritySetting): string {
  return `security weakened: ${s.setting} = ${show(s.value)} (from ${s.source}): ${s.why}`
}

/**
 * Say the report at start: one info line with the whole list, then one warn line per weakening,
 * written whatever the logger's level (a process warning, code IPC_SECURITY_WEAKENED, with
 * `logger: false`; see warnWhateverLevel).
 *
 * @example
 * logSecurityReport(log, serverSecurityReport(opts, securityContext()))
 */
export function logSecurityReport(log: Logger, report: readonly SecuritySetting[]): void {
  log.info({ security: report }, 'security settings in force')
  for (const s of report) {
    if (s.weakens) warnWhateverLevel(log, { setting: s.setting, value: s.value, source: s.source }, weakeningMessage(s))
  }
}
