import { FlockUnavailableError } from '@naaccord/ipc-shared'
import { loadNativeAddon } from './addon.js'

type FlockFn = (fd: number, exclusive: boolean, nonblocking: boolean) => boolean

function flockFn(): FlockFn | string {
  const addon = loadNativeAddon()
  if (!addon.ok) return addon.reason
  const fn = addon.binding.flock
  return typeof fn === 'function' ? (fn as FlockFn) : 'the native addon has no flock export (an older build); rebuild it'
}

/**
 * Whether flock(2) is available here (it comes from the native addon, like the peer check).
 * Never throws.
 *
 * @example
 * const f = flockAvailable()
 * if (!f.available) log.warn(f.reason)
 */
export function flockAvailable(): { available: true } | { available: false; reason: string } {
  const fn = flockFn()
  return typeof fn === 'function' ? { available: true } : { available: false, reason: fn }
}

/**
 * Take an exclusive flock(2) on an open file, without waiting: true when taken, false when another
 * open file holds it. The kernel releases it when the descriptor is closed, including when the
 * process dies, so a crash never leaves a lock behind.
 *
 * @throws {FlockUnavailableError} IPC_FLOCK_UNAVAILABLE: the addon is missing or has no flock
 *   (check `flockAvailable()` first).
 * @throws the kernel's own errno error when flock(2) refuses the descriptor (`code` 'EBADF',
 *   'ENOLCK', `syscall` 'flock'): a caller's programming error or a kernel limit, kept as the
 *   kernel said it.
 *
 * @example
 * const fd = fs.openSync('/run/naaccord/service.sock.lock', fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600)
 * if (!tryLockExclusive(fd)) throw new SocketInUseError('/run/naaccord/service.sock', undefined, 'another server holds the lock for')
 */
export function tryLockExclusive(fd: number): boolean {
  const fn = flockFn()
  if (typeof fn !== 'function') throw new FlockUnavailableError(`flock is unavailable: ${fn}`)
  return fn(fd, true, true)
}
