import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { parseEnum, parseInteger, printable, printableJson } from '@naaccord/ipc-shared'
import { CERT_KINDS, CERTS_DEFAULTS, CertsFileError, KEY_ALGORITHMS, MODES, initCa, inspectCertificate, issueToDir, normaliseNames, parseDays, rotate, type CertificateInfo } from '@naaccord/ipc-certs'
import { EXIT, UsageError, type CliIo } from './cli-io.js'
import { str, type Flag, type FlagTable, type FlagValues } from './flags.js'

/** The parsed command line of one certs command. */
export interface CertsArgs {
  readonly values: FlagValues
  readonly positionals: string[]
}

/** One `naaccord-ipc certs <name>` command: its flags (one table), its help and what it runs. */
export interface CertsCommand {
  readonly usage: string
  readonly summary: string
  readonly flags: FlagTable
  /** Lines after the options in --help. */
  readonly notes?: readonly string[]
  run(args: CertsArgs, io: CliIo): Promise<number>
}

const DIR: Flag = { name: 'dir', type: 'string', value: 'DIR', default: CERTS_DEFAULTS.dir, description: 'certs folder, created 0700, refused if group/world-writable' }
const KEY: Flag = { name: 'key-algorithm', type: 'string', value: 'ALG', default: CERTS_DEFAULTS.keyAlgorithm, description: KEY_ALGORITHMS.join(', ') }
const JSON_OUT: Flag = { name: 'json', type: 'boolean', description: 'print one JSON object (dates as ISO 8601)' }

/** The certs commands, in the order `naaccord-ipc certs --help` lists them. */
export const CERTS_COMMANDS: Readonly<Record<string, CertsCommand>> = {
  init: {
    usage: 'naaccord-ipc certs init [--dir DIR] [--days N] [--cn NAME] [--key-algorithm ALG] [--force]',
    summary: 'create the CA: ca.crt (0644) and ca.key (0600)',
    flags: [
      DIR,
      { name: 'days', type: 'string', value: 'N', default: CERTS_DEFAULTS.caDays, description: 'lifetime of the CA in days' },
      { name: 'cn', type: 'string', value: 'NAME', default: `"${CERTS_DEFAULTS.caCommonName}"`, description: 'subject CN of the CA' },
      KEY,
      { name: 'force', type: 'boolean', description: 'replace an existing CA (every certificate it issued must then be reissued)' },
    ],
    run: runInit,
  },
  issue: {
    usage: 'naaccord-ipc certs issue server|client --name NAME [--name NAME...] [--dir DIR] [--days N] [--file BASENAME] [--key-algorithm ALG] [--spiffe-id ID] [--force]',
    summary: 'issue a server or client certificate signed by the CA: <name>.crt (0644), <name>.key (0600)',
    flags: [
      { name: 'name', type: 'string', value: 'NAME', multiple: true, description: 'a DNS name or IP address, repeatable; the first is the subject CN and names the files' },
      DIR,
      { name: 'days', type: 'string', value: 'N', default: CERTS_DEFAULTS.leafDays, description: 'lifetime in days' },
      { name: 'file', type: 'string', value: 'BASENAME', description: 'write BASENAME.crt and BASENAME.key instead of <first name>.crt/.key' },
      { name: 'spiffe-id', type: 'string', value: 'ID', description: 'a SPIFFE ID (spiffe://<trust-domain>/<workload>) as the one URI SAN (replaces urn:naaccord:client:<name>)' },
      KEY,
      { name: 'force', type: 'boolean', description: 'replace an existing certificate and key of that name' },
    ],
    notes: [
      'server: SANs for every name (localhost also gets IP 127.0.0.1 and ::1), EKU serverAuth',
      'client: SANs for every name plus URI urn:naaccord:client:<first name>, EKU clientAuth',
    ],
    run: runIssue,
  },
  inspect: {
    usage: 'naaccord-ipc certs inspect FILE [--json]',
    summary: 'show subject, SANs, issuer, validity, days to expiry, SHA-256 fingerprint and SPKI pin',
    flags: [JSON_OUT],
    run: runInspect,
  },
  rotate: {
    usage: 'naaccord-ipc certs rotate [--dir DIR] [--within-days N] [--days N] [--all] [--json]',
    summary: 'reissue, with new keys, the server/client certificates that expire soon',
    flags: [
      DIR,
      { name: 'within-days', type: 'string', value: 'N', default: CERTS_DEFAULTS.rotateWithinDays, description: 'reissue certificates that expire within N days, or have expired' },
      { name: 'days', type: 'string', value: 'N', default: CERTS_DEFAULTS.leafDays, description: 'lifetime of the new certificates in days' },
      { name: 'all', type: 'boolean', description: 'reissue every certificate the CA issued, due or not (e.g. after a key leak)' },
      { name: 'json', type: 'boolean', description: 'print the result as JSON' },
    ],
    run: runRotate,
  },
}

function noPositionals(cmd: string, args: CertsArgs, expected = 0): void {
  if (args.positionals.length > expected) {
    throw new UsageError(`certs ${cmd}: unexpected argument "${args.positionals[expected]}"`)
  }
}

function days(args: CertsArgs): number | undefined {
  const v = str(args.values.days)
  return v === undefined ? undefined : parseDays('--days', v)
}

function keyAlgorithm(args: CertsArgs) {
  const v = str(args.values['key-algorithm'])
  return v === undefined ? undefined : parseEnum('--key-algorithm', v, KEY_ALGORITHMS)
}

function mode(m: number): string {
  return m.toString(8).padStart(4, '0')
}

function rel(file: string): string {
  const r = path.relative(process.cwd(), file)
  return r === '' || r.startsWith('..') || path.isAbsolute(r) ? file : r
}

function sanList(info: CertificateInfo): string {
  return [...info.sans.dns.map((v) => `DNS:${v}`), ...info.sans.ip.map((v) => `IP:${v}`), ...info.sans.uri.map((v) => `URI:${v}`)].join(', ')
}

async function runInit(args: CertsArgs, io: CliIo): Promise<number> {
  noPositionals('init', args)
  const cn = str(args.values.cn)
  const dir = str(args.values.dir) ?? CERTS_DEFAULTS.dir
  const d = days(args)
  const alg = keyAlgorithm(args)
  const ca = await initCa({
    dir,
    force: args.values.force === true,
    ...(cn === undefined ? {} : { commonName: cn }),
    ...(d === undefined ? {} : { days: d }),
    ...(alg === undefined ? {} : { keyAlgorithm: alg }),
  })
  const info = inspectCertificate(ca.certPem)
  const dirFlag = dir === CERTS_DEFAULTS.dir ? '' : ` --dir ${dir}`
  io.stdout(
    `${ca.replaced ? 'replaced' : 'created'} CA "${info.subject}" in ${rel(ca.dir)} (mode ${mode(MODES.dir)})\n` +
      `  ${rel(ca.certPath)}  ${mode(MODES.cert)}  valid until ${info.notAfter.toISOString()}, SHA-256 ${info.fingerprint256}\n` +
      `  ${rel(ca.keyPath)}  ${mode(MODES.key)}  keep it secret; only issue and rotate need it\n` +
      `next: naaccord-ipc certs issue server --name localhost${dirFlag}\n` +
      `      naaccord-ipc certs issue client --name web-server${dirFlag}\n`,
  )
  return EXIT.ok
}

async function runIssue(args: CertsArgs, io: CliIo): Promise<number> {
  const [kindArg] = args.positionals
  if (kindArg === undefined) throw new UsageError('certs issue: say which kind: "certs issue server --name localhost" or "certs issue client --name web-server"')
  const kind = parseEnum('certs issue <kind>', kindArg, CERT_KINDS)
  noPositionals('issue', args, 1)
  const names = (args.values.name as string[] | undefined) ?? []
  if (names.length === 0) throw new UsageError(`certs issue ${kind}: give at least one --name (the first becomes the subject CN), e.g. --name ${kind === 'server' ? 'localhost' : 'web-server'}`)
  const file = str(args.values.file)
  const d = days(args)
  const alg = keyAlgorithm(args)
  const spiffeId = str(args.values['spiffe-id'])
  const cert = await issueToDir({
    dir: str(args.values.dir) ?? CERTS_DEFAULTS.dir,
    kind,
    names: normaliseNames('--name', names, kind),
    force: args.values.force === true,
    ...(file === undefined ? {} : { fileName: file }),
    ...(d === undefined ? {} : { days: d }),
    ...(alg === undefined ? {} : { keyAlgorithm: alg }),
    ...(spiffeId === undefined ? {} : { spiffeId }),
  })
  const info = inspectCertificate(cert.certPem)
  io.stdout(
    `${cert.replaced ? 'replaced' : 'issued'} ${kind} certificate "${info.subject}" (${sanList(info)})\n` +
      `  ${rel(cert.certPath)}  ${mode(MODES.cert)}  valid until ${info.notAfter.toISOString()} (${info.daysToExpiry} days)\n` +
      `  ${rel(cert.keyPath)}  ${mode(MODES.key)}\n` +
      `  SPKI pin sha256//${info.spkiPin}\n`,
  )
  return EXIT.ok
}

/** The certificate FILE names, read and parsed; a refusal says what to do. */
async function readCertificate(file: string): Promise<CertificateInfo> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'error'
    throw new CertsFileError(file, `cannot be read (${code}); ${code === 'ENOENT' ? 'check the path' : 'check its permissions'}`, { cause })
  }
  try {
    return inspectCertificate(text)
  } catch (cause) {
    throw new CertsFileError(file, (cause as Error).message.replace(/^pem: /, ''), { cause })
  }
}

async function runInspect(args: CertsArgs, io: CliIo): Promise<number> {
  const [file] = args.positionals
  if (file === undefined) throw new UsageError('certs inspect: give the certificate file, e.g. "certs inspect certs/localhost.crt"')
  noPositionals('inspect', args, 1)
  const info = await readCertificate(file)
  if (args.values.json === true) {
    // A certificate's fields are another party's text: control characters escaped, in JSON too.
    io.stdout(`${printableJson({ file: path.resolve(file), ...info })}\n`)
    return EXIT.ok
  }
  const status = info.expired ? `EXPIRED ${-info.daysToExpiry} days ago` : info.notYetValid ? 'NOT YET VALID' : `${info.daysToExpiry} days`
  const rows: [string, string][] = [
    ['file', path.resolve(file)],
    ['subject', info.subject],
    ['issuer', `${info.issuer}${info.selfSigned ? ' (self-signed)' : ''}`],
    ['SANs', sanList(info) || '(none)'],
    ['CA', info.isCa ? 'yes' : 'no'],
    ['key usage', [...info.keyUsage, ...info.extKeyUsage].join(', ') || '(none)'],
    ['key', info.keyAlgorithm],
    ['serial', info.serialNumber],
    ['not before', info.notBefore.toISOString()],
    ['not after', info.notAfter.toISOString()],
    ['expires in', status],
    ['SHA-256', info.fingerprint256],
    ['SPKI pin', `sha256//${info.spkiPin}`],
  ]
  io.stdout(`${rows.map(([k, v]) => `${`${k}:`.padEnd(12)}${printable(v)}`).join('\n')}\n`)
  return EXIT.ok
}

async function runRotate(args: CertsArgs, io: CliIo): Promise<number> {
  noPositionals('rotate', args)
  const within = str(args.values['within-days'])
  const d = days(args)
  const result = await rotate({
    dir: str(args.values.dir) ?? CERTS_DEFAULTS.dir,
    all: args.values.all === true,
    ...(within === undefined ? {} : { withinDays: parseInteger('--within-days', within, 0, CERTS_DEFAULTS.maxDays) }),
    ...(d === undefined ? {} : { days: d }),
  })
  if (args.values.json === true) {
    io.stdout(`${JSON.stringify(result, null, 2)}\n`)
    return EXIT.ok
  }
  const lines = [
    ...result.rotated.map((r) => `rotated  ${r.name} (${r.kind}): new key; valid until ${r.notAfter.toISOString()} (was ${r.previousNotAfter.toISOString()})`),
    ...result.kept.map((k) => `kept     ${k.name}: ${k.reason}`),
  ]
  if (lines.length === 0) lines.push(`no certificates besides the CA in ${rel(result.dir)}`)
  io.stdout(`${lines.join('\n')}\n`)
  return EXIT.ok
}
