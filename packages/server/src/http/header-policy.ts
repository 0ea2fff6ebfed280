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
    // eslint-disable-next-line prefer-rest-params -- forwarded as is, without an array per head
    return writeHead.apply(this, arguments as unknown as Parameters<typeof writeHead>)
  }
}
