import { InvalidOptionError } from './errors.js'
import { pickWithSource, rejectUnknown, type Env, type SettingSource } from './option-parsers.js'

/**
 * Each option of an options object is declared once, as one entry of a table (fastify's
 * schema-first options, without a schema language):
 *
 *     export const SERVER_OPTIONS = {
 *       // JSDoc here: what an editor shows on `ServerOptions.shutdownTimeoutMs`, and the
 *       // meaning cell of its row in the docs.
 *       shutdownTimeoutMs: option<number | string>()({ env: ENV.shutdownTimeoutMs, default: 10_000, parse: integer(0) }),
 *     }
 *     export type ServerOptions = OptionsInput<typeof SERVER_OPTIONS>
 *
 * From the table follow: the options type users write (`OptionsInput`: each property keeps its
 * entry's JSDoc), the resolved type (`OptionsResolved`: what the parsers return), the frozen
 * defaults (`defaultsOf`), the environment variables (`envOf`), the refusal of unknown keys and
 * the precedence (explicit option, then environment variable, then fallback or default:
 * `resolveOptions`), and the docs rows (`docRows`, rendered by scripts/options-doc.ts).
 *
 * Adding an option is one entry in its table: a JSDoc (the meaning), then `option<InputType>()({
 * env?, default?, fallback?, parse, docs? })`. `parse(name, value, ctx)` validates and normalises
 * one value and throws `InvalidOptionError(name, ...)` (IPC_INVALID_OPTION naming the option and
 * the bad value); the shared parsers (`integer`, `parseBoolean`, `oneOf`, `optional`, `orFalse`,
 * `group` for a nested object) do that already. Entries are resolved in table order, so a parser
 * or fallback may use `ctx.resolved` of the entries before it. Then render the docs row:
 * `pnpm exec tsx --conditions=@naaccord/source scripts/options-doc.ts --write`; the drift test
 * (test/readme-api.test.ts) fails until the docs show it.
 */

/** What a parser sees besides the value: the environment, and the options of the same table resolved before it (table order). */
export interface OptionContext {
  readonly env: Env
  readonly resolved: Readonly<Record<string, unknown>>
}

/** One option: how it is read, checked, defaulted and documented. */
export interface Option<In = unknown, Out = unknown, Req extends boolean = boolean> {
  /** Environment variable read when the option is not given. */
  readonly env?: string
  /** The default, in DEFAULTS and in the docs; it goes through `parse` like a given value. */
  readonly default?: unknown
  /** A default that depends on options resolved before this one (e.g. a mode widened with a group). */
  readonly fallback?: (resolved: Readonly<Record<string, unknown>>) => unknown
  /** Validate and normalise; throws `InvalidOptionError` naming `name`. Called with `undefined` only when `parseAbsent` or `required`. */
  readonly parse: (name: string, value: any, ctx: OptionContext) => Out // eslint-disable-line @typescript-eslint/no-explicit-any -- the input was checked by the caller's type, the parser checks it again at run time
  /** Call `parse` even when there is no value (required options, groups that resolve from their own defaults). */
  readonly parseAbsent?: boolean
  /** Refuse the options object without it (type and run time). */
  readonly required?: Req
  /** A nested options object: its entries, shown as `name.key` rows when `expand`. */
  readonly table?: OptionTable
  /** Further variants of a nested object (`listen: { socketPath } | { host, port }`). */
  readonly tables?: readonly OptionTable[]
  /** How the docs show it when the value alone does not say it: the default cell, the env cell, whether a nested table gets a row per entry. */
  readonly docs?: { readonly default?: string; readonly env?: string; readonly expand?: boolean }
  /** Type only: what users may write. */
  readonly '~input'?: In
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a table holds options of any input and output
export type OptionTable = Readonly<Record<string, Option<any, any, boolean>>>

type InputOf<O> = O extends Option<infer In, unknown, boolean> ? In : never
type OutputOf<O> = O extends Option<unknown, infer Out, boolean> ? Out : never
type RequiredKeys<T> = { [K in keyof T]: T[K] extends { readonly required?: true } ? K : never }[keyof T]
type AllOptional<T> = { [K in keyof T]?: InputOf<T[K]> }

/** The options object users write: every entry optional unless `required`; each keeps its entry's JSDoc. */
export type OptionsInput<T extends OptionTable> = [RequiredKeys<T>] extends [never]
  ? AllOptional<T>
  : Omit<AllOptional<T>, RequiredKeys<T>> & Required<Pick<AllOptional<T>, RequiredKeys<T>>>

/** The resolved options: what each entry's parser returns. */
export type OptionsResolved<T extends OptionTable> = { readonly [K in keyof T]: OutputOf<T[K]> }

/**
 * Declare one option; the input type is given, the resolved type follows from `parse`.
 *
 * @example
 * const entry = option<number | string>()({ env: 'NAACCORD_RETRIES', default: 20, parse: integer(0, 100) })
 */
export function option<In>() {
  return <Out, Req extends boolean = false>(spec: Omit<Option<In, Out, Req>, '~input'>): Option<In, Out, Req> => spec
}

/** A parser that lets `undefined` through (an option without default that may stay unset). */
export function optional<Out>(parse: (name: string, value: any, ctx: OptionContext) => Out) { // eslint-disable-line @typescript-eslint/no-explicit-any
  return (name: string, value: unknown, ctx: OptionContext): Out | undefined => (value === undefined ? undefined : parse(name, value, ctx)) // null is parsed (and refused)
}

/** The name an option is refused under: `maxConnections` at the top, `limits.maxBodyBytes` below. */
export function optionName(scope: string, key: string): string {
  return scope === 'options' ? key : `${scope}.${key}`
}

/** How `resolveOptions` reads one table: the scope names errors; `env` is where variables come from ({} for none). */
export interface ResolveScope {
  readonly scope: string
  readonly env: Env
}

/**
 * Resolve a table: refuse unknown keys, then for each entry in order the explicit option, else
 * its environment variable, else its fallback or default, through its parser. Returns the values
 * (not frozen: the caller adds what it derives, then freezes) and where each came from.
 *
 * @example
 * resolveOptions(LIMITS, { maxBodyBytes: 1024 }, { scope: 'limits', env: {} }).values.maxBodyBytes // 1024
 */
export function resolveOptions<T extends OptionTable>(
  table: T,
  given: object | undefined,
  { scope, env }: ResolveScope,
): { values: { -readonly [K in keyof T]: OutputOf<T[K]> }; sources: Record<keyof T, SettingSource> } {
  rejectUnknown(scope, given, Object.keys(table))
  const input = (given ?? {}) as Record<string, unknown>
  const values: Record<string, unknown> = {}
  const sources: Record<string, SettingSource> = {}
  const ctx: OptionContext = { env, resolved: values }
  for (const [key, entry] of Object.entries(table)) {
    const picked = entry.env === undefined ? { value: input[key], source: input[key] === undefined ? ('default' as const) : ('option' as const) } : pickWithSource(input[key], env, entry.env)
    // An explicit null is a value, not an absence: the parser refuses it (it never falls back to the
    // environment or the default, which could widen what the caller asked for).
    const raw = picked.value === null ? null : (picked.value ?? entry.fallback?.(values) ?? entry.default)
    values[key] = raw === undefined && !entry.parseAbsent && !entry.required ? undefined : entry.parse(optionName(scope, key), raw, ctx)
    sources[key] = picked.source
  }
  return { values: values as { -readonly [K in keyof T]: OutputOf<T[K]> }, sources: sources as Record<keyof T, SettingSource> }
}

/** The defaults of a table, nested tables as nested objects, frozen: the `*_DEFAULTS` objects. */
export function defaultsOf(table: OptionTable): Readonly<Record<string, unknown>> {
  const out: Record<string, unknown> = {}
  for (const [key, entry] of Object.entries(table)) {
    if (entry.default !== undefined) out[key] = entry.default
    else if (entry.table && entry.docs?.expand) out[key] = defaultsOf(entry.table)
  }
  return Object.freeze(out)
}

/** The environment variables a table reads, nested tables included, by option path. */
export function envOf(table: OptionTable, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, entry] of Object.entries(table)) {
    if (entry.env !== undefined) out[prefix + key] = entry.env
    for (const sub of [entry.table, ...(entry.tables ?? [])]) if (sub) Object.assign(out, envOf(sub, `${prefix}${key}.`))
  }
  return out
}

/** One row of an options table in the docs. */
export interface DocRow {
  readonly name: string
  readonly env: readonly string[]
  readonly envNote: string | undefined
  readonly default: string
}

/** How a default reads in the docs: modes in octal, strings as they are, numbers plain. */
export function renderDefault(key: string, value: unknown): string {
  if (value === undefined) return ''
  if (typeof value === 'number' && /mode/i.test(key)) return `\`0o${value.toString(8)}\``
  return `\`${String(value)}\``
}

/**
 * The docs rows of a table: one per entry, nested tables marked `expand` one per nested entry
 * (`limits.maxBodyBytes`) after their own row if they have docs of their own.
 */
export function docRows(table: OptionTable, prefix = ''): DocRow[] {
  return Object.entries(table).flatMap(([key, entry]) => {
    const name = prefix + key
    const subs = [entry.table, ...(entry.tables ?? [])].filter((t): t is OptionTable => t !== undefined)
    if (entry.docs?.expand) {
      const own = entry.docs.default === undefined ? [] : [row(name, entry, [])]
      return [...own, ...subs.flatMap((t) => docRows(t, `${name}.`))]
    }
    return [row(name, entry, subs.flatMap((t) => Object.values(envOf(t))))]
  })
}

function row(name: string, entry: Option, nestedEnv: readonly string[]): DocRow {
  const env = entry.env === undefined ? nestedEnv : [entry.env, ...nestedEnv]
  return { name, env, envNote: entry.docs?.env, default: entry.docs?.default ?? renderDefault(name, entry.default) }
}

/**
 * A nested options object: its entries resolved like the top level's, under `name.`; `false`
 * allowed when `orFalse`. `finish` checks what spans entries and adds what derives from them.
 */
export interface GroupSpec<T extends OptionTable, Out> {
  /** The shape, for the refusal of a non-object: `{ uids, gids }`. */
  readonly shape: string
  /** Read the nested entries' environment variables even when the object is given (default: only when it is not, an explicit object is taken whole). */
  readonly envWhenGiven?: boolean
  readonly finish: (values: { -readonly [K in keyof T]: OutputOf<T[K]> }, name: string, ctx: OptionContext & { given: boolean; sources: Record<keyof T, SettingSource> }) => Out
}

/**
 * The parser of a nested options object (not `false`): refuses a non-object, resolves the
 * entries, hands them to `finish`.
 *
 * @example
 * health: option<{ path?: string } | false>()({ parse: group(HEALTH, { shape: '{ path }', finish: (v) => v }), parseAbsent: true })
 */
export function group<T extends OptionTable, Out>(table: T, spec: GroupSpec<T, Out>) {
  return (name: string, value: unknown, ctx: OptionContext): Out => {
    if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) {
      throw new InvalidOptionError(name, `must be ${spec.shape}`)
    }
    const env = value === undefined || spec.envWhenGiven ? ctx.env : {}
    const { values, sources } = resolveOptions(table, value as object | undefined, { scope: name, env })
    return spec.finish(values, name, { ...ctx, given: value !== undefined, sources })
  }
}

/**
 * Where each entry of a nested table came from, without resolving it (for the start-up security
 * report): `false` or a given key is "option"; else the entry's variable when the environment is
 * read; else "default".
 *
 * @example
 * sourcesOf(ALLOW, undefined, { NAACCORD_ALLOW_GIDS: '100' }) // { uids: 'default', gids: 'env:NAACCORD_ALLOW_GIDS' }
 */
export function sourcesOf<T extends OptionTable>(table: T, given: unknown, env: Env): Record<keyof T, SettingSource> {
  const out: Record<string, SettingSource> = {}
  const input = given !== null && typeof given === 'object' ? (given as Record<string, unknown>) : {}
  for (const [key, entry] of Object.entries(table)) {
    if (given === false) out[key] = 'option'
    else out[key] = entry.env === undefined ? (input[key] === undefined ? 'default' : 'option') : pickWithSource(input[key], env, entry.env).source
  }
  return out as Record<keyof T, SettingSource>
}

/** A parser that takes `false` as itself (an option turned off by name), anything else to `parse`. */
export function orFalse<Out>(parse: (name: string, value: any, ctx: OptionContext) => Out) { // eslint-disable-line @typescript-eslint/no-explicit-any
  return (name: string, value: unknown, ctx: OptionContext): Out | false => (value === false ? false : parse(name, value, ctx))
}

/**
 * Some entries of another table, as they are (same variable, default, check and JSDoc): an
 * options object that shares options with another declares them by reference, not again.
 *
 * @example
 * const SUPERVISOR_OPTIONS = { ...OWN, ...pickOptions(SERVER_OPTIONS, ['socketPath', 'socketMode']) }
 */
export function pickOptions<T extends OptionTable, const K extends keyof T>(table: T, keys: readonly K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((k) => [k, table[k]])) as Pick<T, K>
}
