import type { IncomingMessage, ServerResponse } from 'node:http'
import { parseIdList, parseStringList, rejectUnknown } from '@naaccord/ipc-shared'
import { clientAllowed } from './tls-context.js'
import './peer.js'

export interface RequirePeerOptions {
  /** Allowed user ids (kernel credentials, Unix socket). */
  uids?: readonly number[]
  /** Allowed group ids. */
  gids?: readonly number[]
  /** Allowed client certificates (CN, SAN DNS/URI, or SHA-256 fingerprint). */
  clients?: readonly string[]
}

/**
 * Per-route middleware that narrows access beyond the server-wide `allow` policy. A request passes
 * when its peer matches any of the listed uids, gids or client certificates; otherwise 403.
 *
 * @example
 * app.delete('/reports/:id', requirePeer({ uids: [1001] }), deleteReport)
 */
export function requirePeer(options: RequirePeerOptions) {
  rejectUnknown('requirePeer', options, ['uids', 'gids', 'clients'])
  const uids = new Set(options.uids === undefined ? [] : parseIdList('requirePeer.uids', options.uids))
  const gids = new Set(options.gids === undefined ? [] : parseIdList('requirePeer.gids', options.gids))
  const clients = options.clients === undefined ? [] : parseStringList('requirePeer.clients', options.clients)
  return (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void => {
    const peer = req.peer
    const ok =
      peer !== undefined &&
      ((peer.uid !== undefined && uids.has(peer.uid)) ||
        (peer.gid !== undefined && gids.has(peer.gid)) ||
        (peer.certificate !== undefined && clients.length > 0 && clientAllowed(peer.certificate, clients)))
    if (ok) return next()
    res.writeHead(403, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: 'forbidden', reason: 'this route is limited to other peers' }))
  }
}
