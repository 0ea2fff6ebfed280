import os from 'node:os'
import path from 'node:path'
import {
  ENV,
  InvalidOptionError,
  SERVER_SOCKET_PATH_MAX,
  assertSocketPathFits,
  group,
  option,
  orFalse,
  parseIdList,
  parseInteger,
  parseMode,
  parseString,
  rejectUnknown,
  renderDefault,
  type Env,
} from '@naaccord/ipc-shared'

/**
 * The checks behind the server's option tables (options.ts, metrics/metrics-options.ts): one
 * function per kind of value, each naming the option it refuses.
 */

/** Validate a socket path: absolute after resolution, no NUL, fits in sun_path. */
export function resolveSocketPath(name: string, value: unknown): string {
  const raw = parseString(name, value)
  if (raw.includes('\0')) throw new InvalidOptionError(name, 'must not contain a NUL byte (abstract sockets are not supported)')
  const resolved = path.resolve(raw)
  assertSocketPathFits(resolved, SERVER_SOCKET_PATH_MAX)
  return resolved
}

/** A socket file mode: octal, read/write bits only (the kernel checks them at connect(2)). */
export function resolveSocketMode(name: string, value: unknown): number {
  const mode = parseMode(name, value)
  if (mode & ~0o666) {
    throw new InvalidOptionError(name, `must only grant read/write bits (at most 0o666), got 0o${mode.toString(8)}`)
  }
  return mode
}

/** The mode of a socket folder we create: never writable by group or others (they could replace the socket). */
export function resolveDirMode(name: string, value: unknown): number {
  const mode = parseMode(name, value)
  if (mode & 0o022) {
    throw new InvalidOptionError(name, `must not let group or others write the folder, got 0o${mode.toString(8)}`)
  }
  return mode
}

/** The modes of a socket and of a folder we create: alone, and widened for a socket group. */
export const GROUP_MODES = Object.freeze({
  socket: Object.freeze({ alone: 0o600, withGroup: 0o660 }),
  dir: Object.freeze({ alone: 0o700, withGroup: 0o750 }),
})

/**
 * A socket or folder mode entry: `alone` without a socket group, `withGroup` with one (for a
 * table whose `socketGroup` entry comes first).
 *
 * @example
 * socketMode: groupMode(GROUP_MODES.socket, resolveSocketMode, ENV.socketMode)
 */
export function groupMode(modes: { alone: number; withGroup: number }, parse: (name: string, value: unknown) => number, env?: string) {
  return option<number | string>()({
    ...(env === undefined ? {} : { env }),
    default: modes.alone,
    fallback: (resolved) => (resolved.socketGroup === undefined ? modes.alone : modes.withGroup),
    parse,
    docs: { default: `${renderDefault('mode', modes.alone)} (${renderDefault('mode', modes.withGroup)} with \`socketGroup\`)` },
  })
}

const CHECK_INTERVAL_MIN_MS = 50
const CHECK_INTERVAL_MAX_MS = 30_000

/**
 * How often Node should check headersTimeout/requestTimeout for the shortest of them: a quarter
 * of it, between 50 ms and 30 s, so a timeout fires within 25% of its value instead of on Node's
 * 30 s cycle.
 */
export function checkIntervalFor(shortestTimeoutMs: number): number {
  return Math.min(CHECK_INTERVAL_MAX_MS, Math.max(CHECK_INTERVAL_MIN_MS, Math.floor(shortestTimeoutMs / 4)))
}

/** The resolved peer policy: who may connect, or `false` for no check. */
export type ResolvedAllow = { readonly uids: readonly number[]; readonly gids: readonly number[] } | false

/** The entries of an allow policy (`allow`, `metrics.listen.allow`). */
export const ALLOW_OPTIONS = {
  /** User ids allowed to connect. Default: only the server's own uid. */
  uids: option<readonly number[]>()({ env: ENV.allowUids, parse: (name: string, v: unknown) => (v === undefined ? undefined : parseIdList(name, v)) }),
  /** Group ids allowed to connect (the peer's primary gid, as the kernel reports it). */
  gids: option<readonly number[]>()({ env: ENV.allowGids, parse: (name: string, v: unknown) => (v === undefined ? undefined : parseIdList(name, v)) }),
}

/**
 * The parser of an allow policy: `{ uids, gids }` or `false`. An explicit policy is taken whole
 * (a stray NAACCORD_ALLOW_GIDS must not widen it); only when none is given are the environment
 * variables read, and then the default is this process's own uid.
 */
export const parseAllow = orFalse(
  group(ALLOW_OPTIONS, {
    shape: '{ uids, gids } or false',
    finish: ({ uids = [process.getuid?.() ?? os.userInfo().uid], gids = [] }, name): ResolvedAllow => {
      if (uids.length === 0 && gids.length === 0) {
        throw new InvalidOptionError(name, 'allows nobody (empty uids and gids); list who may connect, or pass allow: false to turn the check off')
      }
      return Object.freeze({ uids: Object.freeze(uids), gids: Object.freeze(gids) })
    },
  }),
)

/**
 * Validate an allow policy: `{ uids, gids }` or `false`. An explicit policy is taken whole; only
 * when none is given are the environment variables read (pass `{}` for no environment), and
 * then the default is this process's own uid. Errors name the option as `name`.
 *
 * @example
 * resolveAllow({ gids: [998] }, {}, 'metrics.listen.allow') // { uids: [], gids: [998] }
 */
export function resolveAllow(value: unknown, env: Env, name = 'allow'): ResolvedAllow {
  return parseAllow(name, value, { env, resolved: {} })
}

export type ResolvedListenTarget =
  | { kind: 'socket'; socketPath: string }
  | { kind: 'tcp'; host: string; port: number }

/** `listen`: the Unix socket at `socketPath` unless given; each target checked by name (`listen[1].port`). */
export function resolveListen(value: unknown, socketPath: string): readonly ResolvedListenTarget[] {
  if (value === undefined) return Object.freeze([{ kind: 'socket', socketPath }])
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidOptionError('listen', 'must be a non-empty list of { socketPath } or { host, port }')
  }
  return Object.freeze(
    value.map((target: unknown, i): ResolvedListenTarget => {
      const name = `listen[${i}]`
      if (target && typeof target === 'object' && 'socketPath' in target) {
        rejectUnknown(name, target, ['socketPath'])
        return { kind: 'socket', socketPath: resolveSocketPath(`${name}.socketPath`, (target as { socketPath: unknown }).socketPath) }
      }
      if (target && typeof target === 'object' && 'port' in target) {
        rejectUnknown(name, target, ['host', 'port'])
        const t = target as { host?: unknown; port: unknown }
        return {
          kind: 'tcp',
          host: t.host === undefined ? '127.0.0.1' : parseString(`${name}.host`, t.host),
          port: parseInteger(`${name}.port`, t.port, 0, 65535),
        }
      }
      throw new InvalidOptionError(name, 'must be { socketPath } or { host, port }')
    }),
  )
}

/** A URL path for the health report: starts with "/", no query string, no spaces. */
export function parseUrlPath(name: string, value: unknown): string {
  const p = parseString(name, value)
  if (!/^\/[\x21-\x7e]*$/.test(p) || p.includes('?')) {
    throw new InvalidOptionError(name, `must be a URL path such as "/healthz" (no query string, no spaces), got ${JSON.stringify(p)}`)
  }
  return p
}
