import type { Peer } from '../gate/peer.js'
import type { SecuritySetting } from '../security-report.js'
import { sendHealth, type ListenerHealth } from './health.js'
import { pathOnly, type RequestListener } from './request-context.js'

/** What the health report says besides the request: the listeners (filled as each opens), the start time, the security report. */
export interface HealthRouteState {
  readonly listeners: readonly ListenerHealth[]
  readonly startedAt: number
  readonly security: readonly SecuritySetting[]
}

/**
 * Whether a request's peer passed the same policy as the app: every connection a Unix listener
 * admitted (the allow policy, or allow: false said by name), and any connection with a verified
 * client certificate. A TCP peer without a certificate (clientAuth "optional" or "none") has
 * passed no check of ours.
 */
function authenticated(peer: Peer | undefined): boolean {
  return peer !== undefined && (peer.transport === 'unix' || peer.certificate !== undefined)
}

/**
 * The app with the built-in health report in front: `GET <health.path>` from an authenticated
 * peer is answered with the report, everything else goes to `app`. With `health: false`, `app`
 * itself (nothing added to the request path).
 *
 * @example
 * const listener = withHealthRoute(app, { path: '/healthz' }, { listeners, startedAt: Date.now(), security })
 */
export function withHealthRoute(app: RequestListener, health: { readonly path: string } | false, state: HealthRouteState): RequestListener {
  if (health === false) return app
  return (req, res) => {
    if (req.method === 'GET' && pathOnly(req.url) === health.path && authenticated(req.peer)) sendHealth(req, res, state.listeners, state.startedAt, state.security)
    else app(req, res)
  }
}
