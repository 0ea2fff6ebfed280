/**
 * Readiness between `naaccord-ipc run` and the app it starts: the supervisor starts the app with
 * a Node IPC channel and NAACCORD_SUPERVISOR_READY=ipc; serve() calls `notifySupervisorReady()`
 * once every listener accepts, which sends one message and closes the channel. Chosen over a
 * NOTIFY_SOCKET datagram because Node has both ends built in and nothing else can write to the
 * channel (it is a private socketpair); under systemd, READY=1 goes to NOTIFY_SOCKET instead.
 */
export const READY_ENV = 'NAACCORD_SUPERVISOR_READY'

/** The message the app sends once it serves. */
export interface ReadyMessage {
  type: 'naaccord-ipc:ready'
  pid: number
}

/** True for the ready message (and nothing else an app might send). */
export function isReadyMessage(m: unknown): m is ReadyMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'naaccord-ipc:ready'
}

/**
 * Tell the supervisor this process serves, once; a no-op when not started by it. The variable
 * is removed so that processes the app starts do not report for it.
 *
 * @example
 * const ipc = await serve(app) // calls notifySupervisorReady() itself
 */
export function notifySupervisorReady(): void {
  if (process.env[READY_ENV] !== 'ipc') return
  delete process.env[READY_ENV]
  if (typeof process.send !== 'function' || !process.connected) return
  const message: ReadyMessage = { type: 'naaccord-ipc:ready', pid: process.pid }
  process.send(message, undefined, {}, () => {
    if (process.connected) process.disconnect()
  })
}
