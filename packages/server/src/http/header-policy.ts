import http from 'node:http'

/** What the header policy reads of the server's state. */
export interface HeaderPolicyState {
  /** Set once close() starts: every answer from then on carries `Connection: close`. */
  closing: boolean
}

/**
 * Our header policy, applied when the head is written (Node writes every head through
 * `writeHead`, also for `res.end()` without it): no `X-Powered-By` ever leaves the server (we do
 * not change the app's own setting), and while the server drains every answer carries
 * `Connection: close`, so the client, not the server, ends its keep-alive connection and never
 * races a request into a connection being closed.
 *
 * Set on each response object (`res.writeHead = policy`), the idiom of on-headers (used by
 * Express's morgan and compression): Node has no public "head about to be written" event, and
 * the documented alternative, a ServerResponse subclass handed to
 * `http.createServer({ ServerResponse })`, is bypassed by Express, which replaces the prototype
 * of every `res` with its own (header-policy.test.ts fails when that stops being true; then the
 * subclass is the way). test/network.test.ts pins the behaviour (X-Powered-By, draining).
 *
 * @returns one function per server (no closure per response), to set as `res.writeHead`
 * @example
 * const policy = headerPolicy(state)
 * http.createServer((req, res) => { res.writeHead = policy; app(req, res) })
 */
export function headerPolicy(state: HeaderPolicyState): (this: http.ServerResponse) => http.ServerResponse {
  // Our server makes plain ServerResponse objects: the prototype's writeHead is the one to call.
  const writeHead = http.ServerResponse.prototype.writeHead
  return function (this: http.ServerResponse) {
    this.removeHeader('x-powered-by')
    if (state.closing) this.setHeader('connection', 'close')
    // writeHead(status, [message], [headers]): headers given here go out as given, after the
    // stored ones, so the policy applies to them too. Only when the app passes some (Express and
    // Node's implicit head pass none: the common path stays as it was).
    // Node's own choice of the headers argument (lib/_http_server.js): after a string message,
    // the third; otherwise the third, or the second when the third is null or undefined.
    const at = typeof arguments[1] === 'string' || (arguments[2] !== undefined && arguments[2] !== null) ? 2 : 1
    const given = arguments[at] as http.OutgoingHttpHeaders | unknown[] | undefined | null
    if (typeof given === 'object' && given !== null) {
      const kept = withoutPolicyHeaders(given, state.closing)
      if (kept !== given) {
        // eslint-disable-next-line prefer-rest-params -- copied only on this rare path
        const args = Array.prototype.slice.call(arguments) as unknown[]
        args[at] = kept
        return writeHead.apply(this, args as Parameters<typeof writeHead>)
      }
    }
    // eslint-disable-next-line prefer-rest-params -- forwarded as is, without an array per head
    return writeHead.apply(this, arguments as unknown as Parameters<typeof writeHead>)
  }
}

/** Whether a header name is one the policy decides: X-Powered-By always, Connection while draining. */
function decidedByPolicy(name: unknown, closing: boolean): boolean {
  if (typeof name !== 'string') return false
  const lower = name.toLowerCase()
  return lower === 'x-powered-by' || (closing && lower === 'connection')
}

/**
 * The headers an app handed to writeHead, without those the policy decides (a copy; the app's
 * object is left alone). Node takes an object, a flat array `[name, value, ...]` or an array of
 * `[name, value]` pairs.
 */
function withoutPolicyHeaders(headers: http.OutgoingHttpHeaders | unknown[], closing: boolean): http.OutgoingHttpHeaders | unknown[] {
  if (!Array.isArray(headers)) {
    const names = Object.keys(headers)
    if (!names.some((n) => decidedByPolicy(n, closing))) return headers
    return Object.fromEntries(Object.entries(headers).filter(([n]) => !decidedByPolicy(n, closing)))
  }
  if (headers.length > 0 && Array.isArray(headers[0])) {
    return headers.some((pair) => decidedByPolicy((pair as unknown[])[0], closing)) ? headers.filter((pair) => !decidedByPolicy((pair as unknown[])[0], closing)) : headers
  }
  // A flat array: left to Node as given when odd (Node refuses it) or when it holds nothing decided.
  if (headers.length % 2 === 1 || !headers.some((h, i) => i % 2 === 0 && decidedByPolicy(h, closing))) return headers
  const out: unknown[] = []
  for (let i = 0; i + 1 < headers.length; i += 2) if (!decidedByPolicy(headers[i], closing)) out.push(headers[i], headers[i + 1])
  return out
}
