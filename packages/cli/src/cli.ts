import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { CERTS_COMMANDS, type CertsArgs, type CertsCommand } from './certs-commands.js'
import { EXIT, UsageError, processIo, report, type CliIo } from './cli-io.js'
import { columns, flagNames, optionsHelp, parseErrorMessage, parseFlags } from './flags.js'

export { EXIT, type CliIo } from './cli-io.js'

const HELP_WORDS = new Set(['--help', '-h', 'help'])

/**
 * The text of `naaccord-ipc certs --help`.
 *
 * @example
 * process.stdout.write(usage())
 */
export function usage(): string {
  const names: Record<string, string> = { issue: 'issue server|client', inspect: 'inspect FILE' }
  return `Usage: naaccord-ipc certs <command> [options]
       naaccord-ipc run [options] -- <program> [args...]   (run --help: the socket-holding supervisor)
       naaccord-ipc reload [--socket PATH] [--pid-file PATH]   (signals only the proven supervisor)

Make and manage the internal CA and the mutual-TLS certificates of naaccord-ipc.

Commands:
${columns(Object.entries(CERTS_COMMANDS).map(([name, c]) => [names[name] ?? name, c.summary]))}

${Object.values(CERTS_COMMANDS)
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

function commandUsage(c: CertsCommand): string {
  return `Usage: ${c.usage}\n\n${c.summary}.\n\nOptions:\n${optionsHelp(c.flags, c.notes)}\n`
}

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
  const [group, ...rest] = argv
  try {
    if (group === undefined || HELP_WORDS.has(group)) return printUsage(group, io)
    // Loaded on use: the certs commands never load the server package.
    if (group === 'check-tls') return await (await import('./check-tls-command.js')).runCheckTls(rest, io)
    if (group === 'doctor') return await (await import('./doctor-command.js')).runDoctor(rest, io)
    if (group === 'run' || group === 'reload') return await (await import('./supervisor-commands.js')).supervisorCli(group, rest, io)
    if (group !== 'certs') throw new UsageError(`unknown command "${group}"; use "certs", "check-tls", "doctor", "run" or "reload"`)
    return await runCerts(rest, io)
  } catch (err) {
    return report(err, io)
  }
}

/** `naaccord-ipc` or `naaccord-ipc certs` alone is a usage error (stderr, 2); with --help, exit 0. */
function printUsage(word: string | undefined, io: CliIo): number {
  io[word === undefined ? 'stderr' : 'stdout'](usage())
  return word === undefined ? EXIT.usage : EXIT.ok
}

async function runCerts([name, ...rest]: readonly string[], io: CliIo): Promise<number> {
  if (name === undefined || HELP_WORDS.has(name)) return printUsage(name, io)
  const command = CERTS_COMMANDS[name]
  if (command === undefined) throw new UsageError(`unknown command "certs ${name}"; use one of ${Object.keys(CERTS_COMMANDS).join(', ')}`)
  let parsed: CertsArgs
  try {
    parsed = parseFlags(command.flags, rest, true)
  } catch (err) {
    const unknown = (err as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION'
    throw new UsageError(`certs ${name}: ${parseErrorMessage(err).replace(/\.$/, '')}${unknown ? `; it takes ${flagNames(command.flags).join(', ')}` : ''}`)
  }
  if (parsed.values.help === true) {
    io.stdout(commandUsage(command))
    return EXIT.ok
  }
  return await command.run(parsed, io)
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
