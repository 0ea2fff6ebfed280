import type { ReadyMessage } from '@naaccord/ipc-shared'

// The app's side of readiness (send the message, close the channel, clear the variable) is a
// process-wide effect: notifySupervisorReady in shared process-effects.ts. What stays here is the
// supervisor's side.
export { READY_ENV, notifySupervisorReady, type ReadyMessage } from '@naaccord/ipc-shared'

/**
 * True for the ready message (and nothing else an app might send).
 *
 * @example
 * child.on('message', (m) => { if (isReadyMessage(m)) markReady() })
 */
export function isReadyMessage(m: unknown): m is ReadyMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'naaccord-ipc:ready'
}
