/** W3C Trace Context (https://www.w3.org/TR/trace-context/) headers. */
export const TRACEPARENT_HEADER = 'traceparent'
export const TRACESTATE_HEADER = 'tracestate'

// version-traceid-parentid-flags, lower-case hex; version ff is invalid; all-zero ids are invalid.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/

export interface Traceparent {
  readonly version: string
  readonly traceId: string
  readonly parentId: string
  readonly flags: string
}

/**
 * Parse a `traceparent` header; undefined when it is missing or malformed (then it must be
 * neither trusted nor forwarded).
 *
 * @example
 * parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')?.traceId // '4bf92f3577b34da6a3ce929d0e0e4736'
 */
export function parseTraceparent(value: unknown): Traceparent | undefined {
  if (typeof value !== 'string' || value.length > 512) return undefined
  const m = TRACEPARENT.exec(value.trim())
  if (!m) return undefined
  const [, version, traceId, parentId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined]
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined
  if (/^0+$/.test(traceId) || /^0+$/.test(parentId)) return undefined
  return { version, traceId, parentId, flags }
}

/** A `tracestate` worth forwarding: printable, at most 512 bytes (the spec's floor for carriers). */
export function validTracestate(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 512 && /^[\x20-\x7e]+$/.test(value)
}
