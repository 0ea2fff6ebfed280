import { InvalidOptionError, parseInteger, printable, type Finding } from '@naaccord/ipc-shared'
import { parseErrorMessage, parseFlags, type Flag, type FlagTable, type FlagValues } from './flags.js'

/** The TLS flags check-tls and doctor share. */
export const TLS_FLAGS: readonly Flag[] = [
  { name: 'ca', type: 'string', value: 'FILE', description: 'the CA the server certificate must chain to' },
  { name: 'cert', type: 'string', value: 'FILE', description: 'client certificate, when the server requires mutual TLS (with --key)' },
  { name: 'key', type: 'string', value: 'FILE', description: 'its key' },
  { name: 'servername', type: 'string', value: 'NAME', description: 'the name checked against the certificate (default --host, or localhost over a socket)' },
  { name: 'pin', type: 'string', value: 'PIN', multiple: true, description: 'an expected SPKI pin (sha256//...), repeatable; any one must match' },
]

export const JSON_FLAG: Flag = { name: 'json', type: 'boolean', description: 'print one JSON object' }

// Every field printed goes through printable(): a server or the filesystem supplied part of it
// (health warnings, certificate subjects, the HTTP answer, paths, error messages).
export function findingLines(findings: readonly Finding[]): string {
  return findings.map((f) => `  [${f.severity}] ${printable(f.check)}: ${printable(f.message)}${f.fix ? `\n      -> ${printable(f.fix)}` : ''}`).join('\n')
}

/** parseArgs over a command's table, no positionals; a mistake is IPC_INVALID_OPTION naming the command. */
export function parseOperatorFlags(command: string, table: FlagTable, argv: readonly string[]): FlagValues {
  try {
    return parseFlags(table, argv, false).values
  } catch (err) {
    throw new InvalidOptionError(command, parseErrorMessage(err))
  }
}

/** An integer flag's value, or undefined when not given. */
export const int = (name: string, v: unknown, min = 0): number | undefined => (v === undefined ? undefined : parseInteger(name, v, min))
