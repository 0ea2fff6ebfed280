import { InvalidOptionError, parseInteger } from '@naaccord/ipc-shared'
import { CERTS_DEFAULTS } from './defaults.js'

const DAY_MS = 24 * 60 * 60 * 1000

/** A certificate's validity window. */
export interface Validity {
  readonly notBefore: Date
  readonly notAfter: Date
}

export interface ValidityInput {
  readonly days: number
  readonly notBefore?: Date | undefined
  readonly notAfter?: Date | undefined
  readonly now?: Date | undefined
}

/**
 * The validity window of a new certificate. Without explicit dates it starts
 * `CERTS_DEFAULTS.clockSkewMs` (5 minutes) in the past, so a peer whose clock is a little
 * behind does not see a "not yet valid" certificate, and ends `days` days from now. Explicit
 * `notBefore`/`notAfter` are used as given (tests use them to make expired certificates).
 * Dates are truncated to whole seconds, the precision of X.509 times.
 *
 * @example
 * validityWindow({ days: 90 }) // { notBefore: now - 5 min, notAfter: now + 90 days }
 */
export function validityWindow(input: ValidityInput): Validity {
  const now = (input.now ?? new Date()).getTime()
  const notBefore = seconds(input.notBefore?.getTime() ?? now - CERTS_DEFAULTS.clockSkewMs)
  const notAfter = seconds(input.notAfter?.getTime() ?? now + input.days * DAY_MS)
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new InvalidOptionError('notAfter', `must be later than notBefore (${notBefore.toISOString()}), got ${notAfter.toISOString()}`)
  }
  return { notBefore, notAfter }
}

/**
 * Whole days from `now` until `date`, rounded down; negative once `date` has passed.
 *
 * @example
 * daysUntil(cert.notAfter) // 89
 */
export function daysUntil(date: Date, now = new Date()): number {
  return Math.floor((date.getTime() - now.getTime()) / DAY_MS)
}

/**
 * A lifetime in days, from 1 to `CERTS_DEFAULTS.maxDays`.
 *
 * @example
 * parseDays('--days', '90') // 90; parseDays('--days', '0') throws IPC_INVALID_OPTION
 */
export function parseDays(option: string, value: unknown): number {
  return parseInteger(option, value, 1, CERTS_DEFAULTS.maxDays)
}

/**
 * An optional Date option: a valid Date, or undefined.
 *
 * @example
 * parseDate('notAfter', new Date(Date.now() - 1000)) // that Date
 */
export function parseDate(option: string, value: unknown): Date | undefined {
  if (value === undefined) return undefined
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value
  throw new InvalidOptionError(option, `must be a valid Date, got ${String(value)}`)
}

function seconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000)
}
