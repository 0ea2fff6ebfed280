import { parseArgs, type ParseArgsConfig } from 'node:util'

/**
 * One command-line flag, declared once: its parseArgs config and its help row both derive from
 * this (a second declaration would be a second place to drift).
 */
export interface Flag {
  /** The long name, without the dashes: `socket-mode`. */
  readonly name: string
  readonly type: 'string' | 'boolean'
  /** The placeholder in the help (`--socket PATH`); none for a boolean. */
  readonly value?: string
  readonly multiple?: boolean
  readonly short?: string
  /** The default, for the help only: the library the command calls applies it. */
  readonly default?: string | number
  /** The environment variable the library reads when the flag is not given, for the help only. */
  readonly env?: string
  readonly description: string
}

/** The flags of one command, in the order the help lists them. */
export type FlagTable = readonly Flag[]

/** Every command takes -h/--help. */
export const HELP_FLAG: Flag = { name: 'help', type: 'boolean', short: 'h', description: 'show this help' }

/** The parsed values, by long name. */
export type FlagValues = Record<string, string | boolean | (string | boolean)[] | undefined>

/** parseArgs' `options` for a table (help included). */
export function parseArgsOptions(table: FlagTable): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = {}
  for (const f of [...table, HELP_FLAG]) {
    options[f.name] = { type: f.type, ...(f.multiple ? { multiple: true } : {}), ...(f.short === undefined ? {} : { short: f.short }) }
  }
  return options
}

/** `--name`s of a table, help first, as an error message lists them. */
export function flagNames(table: FlagTable): string[] {
  return [HELP_FLAG, ...table].map((f) => `--${f.name}`)
}

/** The help row of a flag: `--socket PATH`, `socket path (env NAACCORD_SOCKET_PATH; default ...)`. */
function helpRow(f: Flag): [string, string] {
  const where = [f.env === undefined ? '' : `env ${f.env}`, f.default === undefined ? '' : `default ${f.default}`].filter(Boolean).join('; ')
  return [`--${f.name}${f.value === undefined ? '' : ` ${f.value}`}`, `${f.description}${where ? ` (${where})` : ''}`]
}

/** Two columns, the first padded to its widest cell. */
export function columns(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([a]) => a.length)) + 2
  return rows.map(([a, b]) => `  ${a.padEnd(width)}${b}`).join('\n')
}

/**
 * The options part of a command's --help, from its table: one row a flag, then `notes` (lines
 * of their own), then -h/--help.
 *
 * @example
 * `Options:\n${optionsHelp(RELOAD_FLAGS)}\n`
 */
export function optionsHelp(table: FlagTable, notes: readonly string[] = []): string {
  return columns([...table.map(helpRow), ...notes.map((n): [string, string] => ['', n]), ['-h, --help', HELP_FLAG.description]])
}

/**
 * parseArgs over a table, strict. Its error message is kept without Node's hint about
 * positionals; the caller turns it into its own usage error.
 *
 * @example
 * const { values, positionals } = parseFlags(RELOAD_FLAGS, ['--socket', '/run/naaccord/service.sock'], true)
 */
export function parseFlags(table: FlagTable, args: readonly string[], allowPositionals: boolean): { values: FlagValues; positionals: string[] } {
  return parseArgs({ args: [...args], options: parseArgsOptions(table), allowPositionals, strict: true }) as { values: FlagValues; positionals: string[] }
}

/** parseArgs' message, without its hint about positionals and its final period. */
export function parseErrorMessage(err: unknown): string {
  return (err as Error).message.replace(/\. To specify a positional argument.*$/s, '')
}

/** A string flag's value, or undefined. */
export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined
}
