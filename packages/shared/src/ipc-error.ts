import { ERROR_TABLE, type IpcErrorCode } from './error-table.js'

/**
 * The base of every naaccord-ipc error and the factory that makes one class per row of the code
 * table (error-table.ts): the classes themselves are in errors.ts.
 */

export interface IpcErrorOptions {
  cause?: unknown
}

/**
 * The brand every IpcError carries on its prototype. `Symbol.for` is shared across module copies,
 * so an error made by a second installed copy of this package is still recognised (the way
 * undici brands its errors in lib/core/errors.js).
 */
const kIpcError = Symbol.for('naaccord.ipc.error')

/**
 * The base of every naaccord-ipc error. `instanceof` works across two installed copies of the
 * package (branded, see `Symbol.hasInstance` below), `code` is stable and narrows in a `switch`,
 * and `statusCode` is the HTTP status a gateway should answer when this error ends a request.
 *
 * @example
 * try { await services.get('/reports/42') } catch (err) {
 *   if (isIpcError(err)) res.status(err.statusCode).json({ code: err.code })
 * }
 */
export abstract class IpcError extends Error {
  abstract readonly code: string
  /** The HTTP status a gateway should answer with (500 when nothing more precise fits). */
  readonly statusCode: number = 500
  /** Set by the client on the error it finally throws: how many attempts were made. */
  declare attempts?: number
  /** Set by the client on the error it finally throws: ms from the first attempt to giving up. */
  declare elapsedMs?: number

  constructor(message: string, options?: IpcErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
  }

  override toString(): string {
    return `${this.code}: ${this.message}`
  }

  /**
   * Branded check: any object carrying the brand is an IpcError; for a concrete class, its
   * `code` must also match the class's static `code`, so `err instanceof TimeoutError` holds
   * for a TimeoutError made by another copy of this module.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null || (value as { [kIpcError]?: unknown })[kIpcError] !== true) return false
    if (this === IpcError) return true
    const code = (this as unknown as { code?: unknown }).code
    if (typeof code === 'string') return (value as { code?: unknown }).code === code
    return Function.prototype[Symbol.hasInstance].call(this, value)
  }
}
Object.defineProperty(IpcError.prototype, kIpcError, { value: true })

/** What a class's constructor arguments make: the message, the cause, and the fields the instance carries. */
export interface ErrorParts<F extends object> {
  readonly message: string
  readonly options?: IpcErrorOptions | undefined
  /** Extra instance fields (`path`, `owner`, `option`...), set as own properties in this order. */
  readonly fields?: F
  /** Overrides the table's default, for a status that depends on the arguments. */
  readonly statusCode?: number
}

/** An instance of the class of `C`: an IpcError whose `code` is the literal `C`, with the fields `F`. */
export type IpcErrorInstance<C extends string, F extends object = object> = IpcError & { readonly code: C } & Readonly<F>

/** The class the factory makes: constructed with `new`, its static `code` the row's code. */
export interface IpcErrorClass<C extends string, A extends unknown[], F extends object> {
  new (...args: A): IpcErrorInstance<C, F>
  readonly code: C
  readonly prototype: IpcErrorInstance<C, F>
}

/**
 * Make the error class of one row of the code table: its name, `code` (static and on instances)
 * and default `statusCode` come from the table, so they are written once; `build` turns the
 * constructor's arguments into the message, cause and extra fields.
 *
 * @example
 * export const TimeoutError = defineIpcError('IPC_TIMEOUT', (target: string, timeoutMs: number) => ({
 *   message: `request to ${target} timed out after ${timeoutMs} ms`,
 *   fields: { target, timeoutMs },
 * }))
 * export type TimeoutError = InstanceType<typeof TimeoutError>
 */
export function defineIpcError<C extends IpcErrorCode, A extends unknown[], F extends object = object>(
  code: C,
  build: (...args: A) => ErrorParts<F>,
): IpcErrorClass<C, A, F> {
  const row = ERROR_TABLE[code]
  class Defined extends IpcError {
    static readonly code = code
    declare readonly code: C
    constructor(...args: A) {
      const parts = build(...args)
      super(parts.message, parts.options)
      const self = this as { statusCode: number; code: C }
      self.statusCode = parts.statusCode ?? row.statusCode
      if (parts.fields !== undefined) Object.assign(this, parts.fields)
      // Own properties in the order the hand-written classes had (a log line lists them so).
      self.code = code
    }
  }
  Object.defineProperty(Defined, 'name', { value: row.name })
  return Defined as unknown as IpcErrorClass<C, A, F>
}
