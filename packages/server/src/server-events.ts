import diagnostics_channel from 'node:diagnostics_channel'
import type { Socket } from 'node:net'

/**
 * Why a connection was refused before the app saw it: the peer check (`allow_policy`,
 * `credentials_unreadable`), the client-certificate policy, or its listener's budget
 * (`max_connections`, `max_unauthenticated`).
 */
export type RefusalReason = 'allow_policy' | 'credentials_unreadable' | 'client_certificate' | 'max_connections' | 'max_unauthenticated'

export interface RefusedConnection {
  readonly reason: RefusalReason
  readonly socket: Socket
}

/**
 * Published once per refused connection, process-wide (`node:diagnostics_channel`), so that
 * metrics or audits can count refusals without the refusing code knowing about them.
 *
 * @example
 * diagnostics_channel.subscribe(REFUSED_CHANNEL, (m) => console.log((m as RefusedConnection).reason))
 */
export const REFUSED_CHANNEL = 'naaccord-ipc:server:refused'
const refused = diagnostics_channel.channel(REFUSED_CHANNEL)

/** Tell subscribers (if any) that `socket` was refused for `reason`. */
export function publishRefused(reason: RefusalReason, socket: Socket): void {
  if (refused.hasSubscribers) refused.publish({ reason, socket } satisfies RefusedConnection)
}
