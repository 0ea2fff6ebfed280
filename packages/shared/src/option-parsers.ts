import { SUN_PATH_MAX } from './constants.js'
import { InvalidOptionError, SocketPathTooLongError } from './errors.js'

/**
 * Small validators shared by the options resolvers of server and client. Each takes the option's
 * name so that a refusal names it: `socketMode must be an octal mode such as 0o600, got "rw"`.
 * Strings are accepted wherever a value may come from an environment variable.
 */

export type Env = Readonly<Record<string, string | undefined>>

/**
 * Where a resolved value came from: an explicit option, an environment variable (by name), or
 * the default. The start-up security report names it beside every setting.
 */
export type SettingSource = 'option' | `env:${string}` | 'default'

/**
 * `pick`, keeping where the value came from: `{ value: undefined, source: 'default' }` when
 * neither the option nor the variable gives one (the caller's default applies).
 *
 * @example
 * pickWithSource(undefined, { NAACCORD_SOCKET_MODE: '666' }, 'NAACCORD_SOCKET_MODE')
 * // { value: '666', source: 'env:NAACCORD_SOCKET_MODE' }
 */
export function pickWithSource<T>(explicit: T | undefined, env: Env, envName: string): { value: T | string | undefined; source: SettingSource } {
  if (explicit !== undefined) return { value: explicit, source: 'option' }
  const raw = env[envName]
  return raw === undefined || raw.trim() === '' ? { value: undefined, source: 'default' } : { value: raw.trim(), source: `env:${envName}` }
}

/** The explicit value when given, else the environment variable's text when set and non-empty. */
export function pick<T>(explicit: T | undefined, env: Env, envName: string): T | string | undefined {
  return pickWithSource(explicit, env, envName).value
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value)
}

/** A file mode: a number, or a string of octal digits ("600", "0600", "0o600"). */
export function parseMode(name: string, value: unknown): number {
  let mode: number | undefined
  if (typeof value === 'number' && Number.isInteger(value)) mode = value
  else if (typeof value === 'string' && /^(0o|0)?[0-7]{3,4}$/.test(value.trim())) {
    mode = Number.parseInt(value.trim().replace(/^0o/, ''), 8)
  }
  if (mode === undefined || mode < 0 || mode > 0o7777) {
    throw new InvalidOptionError(name, `must be an octal mode such as 0o600, got ${show(value)}`)
  }
  return mode
}

/** A whole number within [min, max]; strings of digits accepted. */
export function parseInteger(name: string, value: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new InvalidOptionError(name, `must be a whole number from ${min} to ${max}, got ${show(value)}`)
  }
  return n
}

/** true/false, or the strings 1/0, true/false, yes/no, on/off. */
export function parseBoolean(name: string, value: unknown): boolean {
  if (typeof value === 'boolean') return value
  if (typeof value === 'string') {
    const v = value.trim().toLowerCase()
    if (['1', 'true', 'yes', 'on'].includes(v)) return true
    if (['0', 'false', 'no', 'off'].includes(v)) return false
  }
  throw new InvalidOptionError(name, `must be true or false, got ${show(value)}`)
}

/** A non-empty string. */
export function parseString(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidOptionError(name, `must be a non-empty string, got ${show(value)}`)
  }
  return value
}

/** A list of ids: an array of whole numbers, or a comma-separated string ("1000,1001"). */
export function parseIdList(name: string, value: unknown): number[] {
  const items = typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value
  if (!Array.isArray(items)) throw new InvalidOptionError(name, `must be a list of numeric ids, got ${show(value)}`)
  return items.map((item, i) => parseInteger(`${name}[${i}]`, item, 0, 0xffffffff))
}

/** A list of strings: an array, or a comma-separated string. */
export function parseStringList(name: string, value: unknown): string[] {
  const items = typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value
  if (!Array.isArray(items)) throw new InvalidOptionError(name, `must be a list of strings, got ${show(value)}`)
  return items.map((item, i) => parseString(`${name}[${i}]`, item))
}

/** One of a fixed set of strings. */
export function parseEnum<const T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T
  throw new InvalidOptionError(name, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${show(value)}`)
}

/** Refuse keys that are not part of the options object's shape (a typo must not pass silently). */
export function rejectUnknown(scope: string, given: object | undefined, known: readonly string[]): void {
  if (given === undefined || given === null) return
  if (typeof given !== 'object') throw new InvalidOptionError(scope, `must be an object, got ${show(given)}`)
  for (const key of Object.keys(given)) {
    if (!known.includes(key)) {
      throw new InvalidOptionError(
        scope === 'options' ? key : `${scope}.${key}`,
        `is not a known option; known options are ${known.join(', ')}`,
      )
    }
  }
}

/**
 * A server binds its socket at `<dir>/.<name>.XXXXXX/s` (a private folder beside the final path,
 * see bindSocket), 10 bytes longer than `<dir>/<name>`: every path it binds must fit sun_path.
 */
export const BIND_PATH_EXTRA_BYTES = 10

/** The longest socket path a server can bind here: sun_path (107 on Linux, 103 on macOS/BSD) less the private bind folder. */
export const SERVER_SOCKET_PATH_MAX = SUN_PATH_MAX - BIND_PATH_EXTRA_BYTES

/**
 * Refuse a socket path that does not fit: `limit` is SUN_PATH_MAX for a path we connect to,
 * SERVER_SOCKET_PATH_MAX for one a server binds.
 *
 * @example
 * assertSocketPathFits('/run/naaccord/service.sock', SERVER_SOCKET_PATH_MAX)
 */
export function assertSocketPathFits(socketPath: string, limit: number): void {
  if (Buffer.byteLength(socketPath) <= limit) return
  const why =
    limit === SERVER_SOCKET_PATH_MAX
      ? ` for a server (sun_path holds ${SUN_PATH_MAX} bytes, and the socket is bound ${BIND_PATH_EXTRA_BYTES} bytes deeper, in a private folder beside it)`
      : ''
  throw new SocketPathTooLongError(socketPath, limit, why)
}

/**
 * `parseInteger` with its bounds, as an option-table parser.
 *
 * @example
 * maxConnections: option<number | string>()({ default: 512, parse: integer(1) })
 */
export function integer(min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (name: string, value: unknown): number => parseInteger(name, value, min, max)
}

/**
 * `parseEnum` with its choices, as an option-table parser.
 *
 * @example
 * minVersion: option<'TLSv1.3' | 'TLSv1.2'>()({ default: 'TLSv1.3', parse: oneOf(['TLSv1.3', 'TLSv1.2']) })
 */
export function oneOf<const T extends string>(allowed: readonly T[]) {
  return (name: string, value: unknown): T => parseEnum(name, value, allowed)
}

/** Any value, unchecked (an object the next layer checks, e.g. a logger). */
export function anyValue<T>(_name: string, value: T): T {
  return value
}
