import { realpathSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { InvalidOptionError, IpcError, parseEnum, parseInteger, printable, printableJson } from '@naaccord/ipc-shared'
import { initCa, issueToDir } from './cert-store.js'
import { CERT_KINDS, CERTS_DEFAULTS, KEY_ALGORITHMS, MODES } from './defaults.js'
import { CertsFileError } from './errors.js'
import { inspectCertificate, type CertificateInfo } from './inspect.js'
import { rotate } from './rotate.js'
import { normaliseNames } from './subject-names.js'
import { parseDays } from './validity.js'

/** Where the CLI writes; tests pass their own to capture output. */
export interface CliIo {
  stdout(text: string): void
  stderr(text: string): void
}

const processIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
}

/** Exit codes: 0 done; 1 an unexpected failure (a bug, a full disk); 2 bad usage or a refusal whose message says what to do. */
export const EXIT = Object.freeze({ ok: 0, failure: 1, usage: 2 })

type Options = NonNullable<ParseArgsConfig['options']>

const common = {
  help: { type: 'boolean', short: 'h' },
} satisfies Options

const dirOption = { dir: { type: 'string' } } satisfies Options

interface Command {
  readonly usage: string
  readonly summary: string
  readonly options: Options
  readonly help: readonly (readonly [string, string])[]
  run(args: Parsed, io: CliIo): Promise<number>
}

interface Parsed {
  readonly values: Record<string, string | boolean | (string | boolean)[] | undefined>
  readonly positionals: string[]
}

const HELP_DIR = ['--dir DIR', `certs folder (default ${CERTS_DEFAULTS.dir}); created 0700, refused if group/world-writable`] as const
const HELP_KEY = ['--key-algorithm ALG', `${KEY_ALGORITHMS.join(', ')} (default ${CERTS_DEFAULTS.keyAlgorithm})`] as const

const COMMANDS: Record<string, Command> = {
  init: {
    usage: 'naaccord-ipc certs init [--dir DIR] [--days N] [--cn NAME] [--key-algorithm ALG] [--force]',
    summary: 'create the CA: ca.crt (0644) and ca.key (0600)',
    options: { ...common, ...dirOption, days: { type: 'string' }, cn: { type: 'string' }, 'key-algorithm': { type: 'string' }, force: { type: 'boolean' } },
    help: [
      HELP_DIR,
      ['--days N', `lifetime of the CA in days (default ${CERTS_DEFAULTS.caDays})`],
      ['--cn NAME', `subject CN of the CA (default "${CERTS_DEFAULTS.caCommonName}")`],
      HELP_KEY,
      ['--force', 'replace an existing CA (every certificate it issued must then be reissued)'],
    ],
    run: runInit,
  },
  issue: {
    usage: 'naaccord-ipc certs issue server|client --name NAME [--name NAME...] [--dir DIR] [--days N] [--file BASENAME] [--key-algorithm ALG] [--spiffe-id ID] [--force]',
    summary: 'issue a server or client certificate signed by the CA: <name>.crt (0644), <name>.key (0600)',
    options: {
      ...common,
      ...dirOption,
      name: { type: 'string', multiple: true },
      days: { type: 'string' },
      file: { type: 'string' },
      'key-algorithm': { type: 'string' },
      'spiffe-id': { type: 'string' },
      force: { type: 'boolean' },
    },
    help: [
      ['--name NAME', 'a DNS name or IP address, repeatable; the first is the subject CN and names the files'],
      HELP_DIR,
      ['--days N', `lifetime in days (default ${CERTS_DEFAULTS.leafDays})`],
      ['--file BASENAME', 'write BASENAME.crt and BASENAME.key instead of <first name>.crt/.key'],
      ['--spiffe-id ID', 'a SPIFFE ID (spiffe://<trust-domain>/<workload>) as the one URI SAN (replaces urn:naaccord:client:<name>)'],
      HELP_KEY,
      ['--force', 'replace an existing certificate and key of that name'],
      ['', 'server: SANs for every name (localhost also gets IP 127.0.0.1 and ::1), EKU serverAuth'],
      ['', 'client: SANs for every name plus URI urn:naaccord:client:<first name>, EKU clientAuth'],
    ],
    run: runIssue,
  },
  inspect: {
    usage: 'naaccord-ipc certs inspect FILE [--json]',
    summary: 'show subject, SANs, issuer, validity, days to expiry, SHA-256 fingerprint and SPKI pin',
    options: { ...common, json: { type: 'boolean' } },
    help: [['--json', 'print one JSON object (dates as ISO 8601)']],
    run: runInspect,
  },
  rotate: {
    usage: 'naaccord-ipc certs rotate [--dir DIR] [--within-days N] [--days N] [--all] [--json]',
    summary: 'reissue, with new keys, the server/client certificates that expire soon',
    options: { ...common, ...dirOption, 'within-days': { type: 'string' }, days: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' } },
    help: [
      HELP_DIR,
      ['--within-days N', `reissue certificates that expire within N days, or have expired (default ${CERTS_DEFAULTS.rotateWithinDays})`],
      ['--days N', `lifetime of the new certificates in days (default ${CERTS_DEFAULTS.leafDays})`],
      ['--all', 'reissue every certificate the CA issued, due or not (e.g. after a key leak)'],
      ['--json', 'print the result as JSON'],
    ],
    run: runRotate,
  },
}

function table(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([a]) => a.length)) + 2
  return rows.map(([a, b]) => `  ${a.padEnd(width)}${b}`).join('\n')
}

/**
 * The text of `naaccord-ipc certs --help`.
 *
 * @example
 * process.stdout.write(usage())
 */
export function usage(): string {
  return `Usage: naaccord-ipc certs <command> [options]
       naaccord-ipc run [options] -- <program> [args...]   (run --help: the socket-holding supervisor)
       naaccord-ipc reload [--socket PATH] [--pid-file PATH]   (signals only the proven supervisor)

Make and manage the internal CA and the mutual-TLS certificates of naaccord-ipc.

Commands:
${table(Object.entries(COMMANDS).map(([name, c]) => [name === 'issue' ? 'issue server|client' : name === 'inspect' ? 'inspect FILE' : name, c.summary]))}

${Object.values(COMMANDS)
  .map((c) => `  ${c.usage}`)
  .join('\n')}

Run "naaccord-ipc certs <command> --help" for a command's options.

Operator commands (exit 0 ok, 1 warning, 2 critical; --json; --help for options):
  naaccord-ipc check-tls (--socket PATH | --host HOST --port N) --ca FILE [--cert FILE --key FILE]
  naaccord-ipc doctor [--socket PATH] [--ca FILE --cert FILE --key FILE]

Exit codes: 0 done, 1 unexpected failure, 2 bad usage or refused (the message says what to do).

Examples:
  naaccord-ipc certs init
  naaccord-ipc certs issue server --name localhost --name services.internal
  naaccord-ipc certs issue client --name web-server
  naaccord-ipc certs inspect certs/localhost.crt
  naaccord-ipc certs rotate --within-days 30
`
}

function commandUsage(c: Command): string {
  return `Usage: ${c.usage}\n\n${c.summary}.\n\nOptions:\n${table([...c.help, ['-h, --help', 'show this help']])}\n`
}

/** A mistake on the command line: printed with a pointer to --help, exit code 2. */
class UsageError extends Error {}

/**
 * Run `naaccord-ipc <argv...>` and resolve to its exit code. Prints results on stdout and
 * problems on stderr; user errors (bad flags, unsafe folders, existing files, unreadable
 * certificates) print one line with the fix and return 2, never a stack trace.
 *
 * @example
 * process.exitCode = await main(process.argv.slice(2))
 * await main(['certs', 'issue', 'server', '--name', 'localhost', '--dir', dir]) // 0
 */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const [group, name, ...rest] = argv
  try {
    if (group === undefined || group === '--help' || group === '-h' || group === 'help') {
      io[group === undefined ? 'stderr' : 'stdout'](usage())
      return group === undefined ? EXIT.usage : EXIT.ok
    }
    if (group === 'check-tls' || group === 'doctor') {
      // Loaded on use: doctor pulls in the server package, which certs commands never need.
      const ops = await import('./ops-cli.js')
      return await (group === 'doctor' ? ops.runDoctor : ops.runCheckTls)(argv.slice(1), io)
    }
    if (group === 'run' || group === 'reload') return await runSupervisor(group, argv.slice(1), io)
    if (group !== 'certs') throw new UsageError(`unknown command "${group}"; use "certs", "check-tls", "doctor", "run" or "reload"`)
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      io[name === undefined ? 'stderr' : 'stdout'](usage())
      return name === undefined ? EXIT.usage : EXIT.ok
    }
    const command = COMMANDS[name]
    if (command === undefined) throw new UsageError(`unknown command "certs ${name}"; use one of ${Object.keys(COMMANDS).join(', ')}`)
    let parsed: Parsed
    try {
      parsed = parseArgs({ args: [...rest], options: command.options, allowPositionals: true, strict: true })
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      const message = e.message.replace(/\. To specify a positional argument.*$/s, '').replace(/\.$/, '')
      const flags = Object.keys(command.options).map((f) => `--${f}`)
      throw new UsageError(`certs ${name}: ${message}${e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? `; it takes ${flags.join(', ')}` : ''}`)
    }
    if (parsed.values.help === true) {
      io.stdout(commandUsage(command))
      return EXIT.ok
    }
    return await command.run(parsed, io)
  } catch (err) {
    return report(err, io)
  }
}

/**
 * `run` and `reload` belong to the server package (the socket-holding supervisor): imported
 * only for these commands, so the certs commands never load it.
 */
async function runSupervisor(command: 'run' | 'reload', args: readonly string[], io: CliIo): Promise<number> {
  let mod: typeof import('@naaccord/ipc-server/supervisor')
  try {
    mod = await import('@naaccord/ipc-server/supervisor')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err
    throw new UsageError(`"${command}" needs @naaccord/ipc-server (the supervisor lives there), which is not installed`)
  }
  return await mod.supervisorCli(command, args, io)
}

function report(err: unknown, io: CliIo): number {
  if (err instanceof UsageError) {
    io.stderr(`naaccord-ipc: ${err.message}\nRun "naaccord-ipc certs --help" for usage.\n`)
    return EXIT.usage
  }
  if (err instanceof InvalidOptionError) {
    io.stderr(`naaccord-ipc: ${err.message}\n`)
    return EXIT.usage
  }
  if (err instanceof IpcError) {
    io.stderr(`naaccord-ipc: ${err.code}: ${err.message}\n`)
    return EXIT.usage
  }
  const e = err as NodeJS.ErrnoException
  const detail = process.env.NAACCORD_DEBUG ? `\n${e?.stack ?? String(err)}` : ' (set NAACCORD_DEBUG=1 for a stack trace)'
  io.stderr(`naaccord-ipc: unexpected failure: ${e?.message ?? String(err)}${detail}\n`)
  return EXIT.failure
}

function noPositionals(cmd: string, args: Parsed, expected = 0): void {
  if (args.positionals.length > expected) {
    throw new UsageError(`certs ${cmd}: unexpected argument "${args.positionals[expected]}"`)
  }
}

function str(args: Parsed, flag: string): string | undefined {
  const v = args.values[flag]
  return typeof v === 'string' ? v : undefined
}

function days(args: Parsed): number | undefined {
  const v = str(args, 'days')
  return v === undefined ? undefined : parseDays('--days', v)
}

function keyAlgorithm(args: Parsed) {
  const v = str(args, 'key-algorithm')
  return v === undefined ? undefined : parseEnum('--key-algorithm', v, KEY_ALGORITHMS)
}

function mode(m: number): string {
  return m.toString(8).padStart(4, '0')
}

function rel(file: string): string {
  const r = path.relative(process.cwd(), file)
  return r === '' || r.startsWith('..') || path.isAbsolute(r) ? file : r
}

async function runInit(args: Parsed, io: CliIo): Promise<number> {
  noPositionals('init', args)
  const cn = str(args, 'cn')
  const dir = str(args, 'dir') ?? CERTS_DEFAULTS.dir
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

async function runIssue(args: Parsed, io: CliIo): Promise<number> {
  const [kindArg] = args.positionals
  if (kindArg === undefined) throw new UsageError('certs issue: say which kind: "certs issue server --name localhost" or "certs issue client --name web-server"')
  const kind = parseEnum('certs issue <kind>', kindArg, CERT_KINDS)
  noPositionals('issue', args, 1)
  const names = (args.values.name as string[] | undefined) ?? []
  if (names.length === 0) throw new UsageError(`certs issue ${kind}: give at least one --name (the first becomes the subject CN), e.g. --name ${kind === 'server' ? 'localhost' : 'web-server'}`)
  const file = str(args, 'file')
  const d = days(args)
  const alg = keyAlgorithm(args)
  const spiffeId = str(args, 'spiffe-id')
  const cert = await issueToDir({
    dir: str(args, 'dir') ?? CERTS_DEFAULTS.dir,
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

async function runInspect(args: Parsed, io: CliIo): Promise<number> {
  const [file] = args.positionals
  if (file === undefined) throw new UsageError('certs inspect: give the certificate file, e.g. "certs inspect certs/localhost.crt"')
  noPositionals('inspect', args, 1)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'error'
    throw new CertsFileError(file, `cannot be read (${code}); ${code === 'ENOENT' ? 'check the path' : 'check its permissions'}`, { cause })
  }
  let info: CertificateInfo
  try {
    info = inspectCertificate(text)
  } catch (cause) {
    throw new CertsFileError(file, (cause as Error).message.replace(/^pem: /, ''), { cause })
  }
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

async function runRotate(args: Parsed, io: CliIo): Promise<number> {
  noPositionals('rotate', args)
  const within = str(args, 'within-days')
  const d = days(args)
  const result = await rotate({
    dir: str(args, 'dir') ?? CERTS_DEFAULTS.dir,
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

function sanList(info: CertificateInfo): string {
  return [...info.sans.dns.map((v) => `DNS:${v}`), ...info.sans.ip.map((v) => `IP:${v}`), ...info.sans.uri.map((v) => `URI:${v}`)].join(', ')
}

// Run when this file is the program (`node dist/cli.js`, `node --import tsx src/cli.ts`), not when imported.
function isProgram(): boolean {
  const entry = process.argv[1]
  if (entry === undefined) return false
  try {
    return pathToFileURL(realpathSync(entry)).href === import.meta.url
  } catch {
    return false
  }
}

if (isProgram()) process.exitCode = await main(process.argv.slice(2))
