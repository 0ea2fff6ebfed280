import { SystemdNotifyError } from '@naaccord/ipc-shared'
import { loadAddon, type NativeBinding } from './addon.js'

type NotifyBinding = Required<Pick<NativeBinding, 'notify' | 'notifyListen' | 'notifyReceive' | 'notifyClose'>>

function notifyBinding(what: string): NotifyBinding {
  const addon = loadAddon()
  if (!addon.ok) throw new SystemdNotifyError(`${what}: ${addon.reason}`, { cause: addon.cause })
  const b = addon.binding
  if (typeof b.notify !== 'function' || typeof b.notifyListen !== 'function' || typeof b.notifyReceive !== 'function' || typeof b.notifyClose !== 'function') {
    throw new SystemdNotifyError(`${what}: the addon ${addon.file} has no sd_notify support (an older build); rebuild @naaccord/ipc-peercred`)
  }
  return b as NotifyBinding
}

/**
 * Sends one sd_notify(3) message (e.g. "READY=1", "STATUS=serving", "WATCHDOG=1", several joined
 * by "\n") as a datagram to the AF_UNIX socket named by `socketPath`, by default NOTIFY_SOCKET: an
 * absolute path, or an abstract name written with a leading "@". Returns false, sending nothing,
 * when there is no socket to send to (not started by systemd, or not Type=notify).
 *
 * @throws {SystemdNotifyError} when the addon is missing or the kernel refuses the datagram (the
 *   message names the socket and the errno, e.g. ECONNREFUSED when nothing listens there).
 * @example
 * sdNotify('READY=1\nSTATUS=serving on /run/naaccord/services.sock')
 */
export function sdNotify(state: string, socketPath: string | undefined = process.env.NOTIFY_SOCKET): boolean {
  if (socketPath === undefined || socketPath === '') return false
  const binding = notifyBinding(`sd_notify to ${socketPath}`)
  try {
    return binding.notify(socketPath, state)
  } catch (err) {
    const code = (err as { code?: unknown }).code
    throw new SystemdNotifyError(`sd_notify to ${socketPath} failed: ${String(code ?? (err as Error).message)}; check NOTIFY_SOCKET names a listening datagram socket`, {
      cause: err,
    })
  }
}

/** The receiving end of the sd_notify protocol (what systemd or a supervisor does). */
export interface NotifyListener {
  /** The next pending message, or null when none is waiting. Never blocks. */
  receive(): string | null
  /** Closes the socket (a path socket's file is the caller's to remove). Idempotent. */
  close(): void
}

/**
 * Binds a datagram socket at `socketPath` ("/path" or "@abstract") to receive sd_notify messages:
 * for tests, and for a supervisor that sets NOTIFY_SOCKET for its child.
 *
 * @throws {SystemdNotifyError} when the addon is missing or bind(2) fails (e.g. EADDRINUSE).
 * @example
 * const listener = listenNotifySocket('@naaccord-test')
 * // child started with NOTIFY_SOCKET=@naaccord-test ... later:
 * listener.receive() // 'READY=1\nSTATUS=...'
 */
export function listenNotifySocket(socketPath: string): NotifyListener {
  const binding = notifyBinding(`listening for sd_notify on ${socketPath}`)
  let fd: number | undefined
  try {
    fd = binding.notifyListen(socketPath)
  } catch (err) {
    const code = (err as { code?: unknown }).code
    throw new SystemdNotifyError(`cannot listen for sd_notify on ${socketPath}: ${String(code ?? (err as Error).message)}`, { cause: err })
  }
  return {
    receive() {
      return fd === undefined ? null : binding.notifyReceive(fd)
    },
    close() {
      if (fd !== undefined) binding.notifyClose(fd)
      fd = undefined
    },
  }
}

