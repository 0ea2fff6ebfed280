import type { IncomingMessage } from 'node:http'
import {
  InvalidOptionError,
  defaultsOf,
  envOf,
  group,
  option,
  parseIdList,
  parseString,
  sourcesOf,
  type Env,
  type OptionsInput,
  type SettingSource,
} from '@naaccord/ipc-shared'

// RFC 9110 field-name token, lower case as Node presents it.
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/

function parseProxyUids(name: string, value: unknown): readonly number[] {
  if (value === undefined) throw new InvalidOptionError(name, 'is required: the uids of the proxy processes whose identity header is believed (e.g. id -u haproxy)')
  const uids = parseIdList(name, value)
  if (uids.length === 0) throw new InvalidOptionError(name, 'is empty; list the proxy uids, or leave trustedProxy out')
  return Object.freeze(uids)
}

function parseHeaderName(name: string, value: unknown): string {
  const header = parseString(name, value).toLowerCase()
  if (!HEADER_NAME.test(header)) throw new InvalidOptionError(name, `must be an HTTP header name, got "${header}"`)
  return header
}

/**
 * A reverse proxy (HAProxy, nginx) that terminates mutual TLS and forwards to the socket, passing
 * the verified client certificate's subject in a header. The header is believed only on Unix
 * socket connections whose peer uid (from the kernel, SO_PEERCRED) is one of `uids`; from anyone
 * else it is removed before the app sees the request. Declared once; the variables are read only
 * when `trustedProxy` is not given.
 */
export const TRUSTED_PROXY_OPTIONS = {
  /** Uids of the proxy processes (e.g. the `haproxy` user). Required. */
  uids: option<readonly number[] | string>()({ env: 'NAACCORD_TRUSTED_PROXY_UIDS', parse: parseProxyUids, parseAbsent: true }),
  /** Lower-case header name carrying the verified client subject. */
  identityHeader: option<string>()({ env: 'NAACCORD_TRUSTED_PROXY_HEADER', default: 'x-client-cert-subject', parse: parseHeaderName }),
}

export type TrustedProxyOptions = OptionsInput<typeof TRUSTED_PROXY_OPTIONS>

export interface ResolvedTrustedProxy {
  readonly uids: readonly number[]
  readonly identityHeader: string
}

/** Environment variables of `trustedProxy` (read only when the option is not given). */
export const TRUSTED_PROXY_ENV = Object.freeze(envOf(TRUSTED_PROXY_OPTIONS) as { readonly uids: string; readonly identityHeader: string })
export const TRUSTED_PROXY_DEFAULTS = Object.freeze(defaultsOf(TRUSTED_PROXY_OPTIONS) as { readonly identityHeader: string })

/** Where `trustedProxy.uids` and `.identityHeader` came from (for the start-up security report). */
export interface TrustedProxySources {
  readonly uids: SettingSource
  readonly identityHeader: SettingSource
}

const parseTrustedProxy = group(TRUSTED_PROXY_OPTIONS, { shape: '{ uids, identityHeader }', finish: (v): ResolvedTrustedProxy => Object.freeze(v) })

/**
 * `resolveTrustedProxy`, keeping where each value came from.
 *
 * @example
 * resolveTrustedProxyWithSources(undefined, { NAACCORD_TRUSTED_PROXY_UIDS: '108' }).sources
 * // { uids: 'env:NAACCORD_TRUSTED_PROXY_UIDS', identityHeader: 'default' }
 */
export function resolveTrustedProxyWithSources(
  value: TrustedProxyOptions | undefined,
  env: Env = process.env,
): { proxy: ResolvedTrustedProxy | undefined; sources: TrustedProxySources } {
  // Off unless given or NAACCORD_TRUSTED_PROXY_UIDS is set (a stray _HEADER alone turns nothing on).
  if (value === undefined && !env[TRUSTED_PROXY_ENV.uids]?.trim()) return { proxy: undefined, sources: { uids: 'default', identityHeader: 'default' } }
  const proxy = parseTrustedProxy('trustedProxy', value, { env, resolved: {} })
  return { proxy, sources: Object.freeze(sourcesOf(TRUSTED_PROXY_OPTIONS, value, value === undefined ? env : {})) }
}

/**
 * Normalise `trustedProxy`: off unless given (or NAACCORD_TRUSTED_PROXY_UIDS is set).
 *
 * @example
 * resolveTrustedProxy({ uids: [108] }) // { uids: [108], identityHeader: 'x-client-cert-subject' }
 */
export function resolveTrustedProxy(value: TrustedProxyOptions | undefined, env: Env = process.env): ResolvedTrustedProxy | undefined {
  return resolveTrustedProxyWithSources(value, env).proxy
}

/**
 * Take the identity header off the request; when the connection is the trusted proxy's (Unix
 * socket, uid in `uids`), return its value as the forwarded identity. Called once per request,
 * after `req.peer` is set; the header never reaches the app either way.
 */
export function takeForwardedIdentity(req: IncomingMessage, proxy: ResolvedTrustedProxy): string | undefined {
  // rawHeaders is what decides, not req.headers: Node fills req.headers from at most its
  // maxHeadersCount (1000) pairs, while rawHeaders keeps them all, so a header past the 1000th is
  // in rawHeaders only.
  const raw = req.rawHeaders
  let present = false
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === proxy.identityHeader.length && raw[i]!.toLowerCase() === proxy.identityHeader) {
      present = true
      break
    }
  }
  if (!present) return undefined
  // Node builds `headersDistinct` lazily from `rawHeaders` with the count it parsed: build it now,
  // before rawHeaders shrinks (a later first read would run past the end and throw), and take the
  // header out of it as well.
  const distinct = req.headersDistinct
  delete distinct[proxy.identityHeader]
  delete req.headers[proxy.identityHeader]
  // rawHeaders too: frameworks that rebuild headers from it must not see the value either.
  const values: string[] = []
  for (let i = req.rawHeaders.length - 2; i >= 0; i -= 2) {
    if (req.rawHeaders[i]!.toLowerCase() === proxy.identityHeader) values.push(...req.rawHeaders.splice(i, 2).slice(1))
  }
  const peer = req.peer
  if (peer?.transport !== 'unix' || peer.uid === undefined || !proxy.uids.includes(peer.uid)) return undefined
  // Exactly one value: two mean the proxy appended to a header the client sent instead of replacing it.
  if (values.length !== 1 || values[0]!.length === 0 || values[0]!.length > 1024) return undefined
  return values[0]
}

/**
 * Keep the identity header out of a chunked request's trailer section too: a trailer is never
 * an identity (a proxy replaces the header, and forwards the client's trailers as they came).
 * Trailers are known only once the body is read: Node's parser sets `rawTrailers` when the
 * message completes and then ends the body with `push(null)` (lib/_http_common.js,
 * parserOnMessageComplete), so the trailer is removed there, before 'end' reaches the app,
 * from `rawTrailers`, `trailers` and `trailersDistinct`; an 'end' listener would come too late
 * for an app that reads `req.trailers` once `req.complete` is set. The wrapper sits on the
 * request object for the reason given at limitBody (body-limit.ts: Express replaces the
 * prototype of `req`); test/reverse-proxy.test.ts ("the identity header in a chunked trailer")
 * pins it. Install it after any other wrapper of `push` (the body limit): it must see the end
 * first.
 *
 * @example
 * if (req.headers['transfer-encoding'] !== undefined) dropIdentityTrailer(req, proxy)
 */
export function dropIdentityTrailer(req: IncomingMessage, proxy: ResolvedTrustedProxy): void {
  const push = req.push
  req.push = function (this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null && this.rawTrailers.length > 0) {
      const name = proxy.identityHeader
      // The getters are built (once) before rawTrailers shrinks: Node builds them from
      // rawTrailers with the count it had when the trailers arrived.
      delete this.trailers[name]
      delete this.trailersDistinct[name]
      const raw = this.rawTrailers
      for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === name) raw.splice(i, 2)
    }
    return Reflect.apply(push, this, [chunk, encoding]) as boolean
  }
}
