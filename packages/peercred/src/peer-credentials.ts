import { closeSync } from 'node:fs'
import type net from 'node:net'
import { isIpcError, PeerCredentialsUnavailableError, readProcessStartTime } from '@naaccord/ipc-shared'
import { firstLine, loadAddon, type NativeBinding } from './addon.js'

/**
 * Who is at the other end of a Unix domain socket, as the kernel recorded it when the connection
 * was made (unix(7) SO_PEERCRED; getpeereid(3) on macOS and the BSDs). The peer cannot forge
 * these, unlike anything it sends over the socket. The native addon is native/peercred.c, loaded by addon.ts.
 */
export interface PeerCredentials {
  /** -1 when the platform does not report it, or the peer sits in a pid namespace we cannot see. */
  pid: number
  uid: number
  gid: number
  /**
   * Process start time, /proc/<pid>/stat field 22 (clock ticks since boot), read at accept;
   * undefined where unreadable. Tells a reused pid apart (SPIRE does this).
   */
  startTime: number | undefined
  /**
   * How the pid-based facts (`startTime`) are tied to the process that connected: true, through
   * a pidfd for that process (Linux 6.5+ SO_PEERPIDFD: read, then checked to be still alive, so
   * a reused pid is never described); false, by the pid alone (older kernels, macOS, BSD).
   */
  pidfd?: boolean
  /**
   * True when the process that connected had exited before its facts were read (then
   * `startTime` is undefined): proven by its pidfd. Undefined where that cannot be told (no
   * pidfd, the pid unknown, or the connection already closed).
   */
  gone?: boolean | undefined
}

const OPT_OUT = 'pass allow: false to serve() to run without the peer check'
const REBUILD_HINT = 'rebuild @naaccord/ipc-peercred ("pnpm rebuild @naaccord/ipc-peercred"; needs make, a C compiler and Python 3)'

/**
 * Whether the kernel's peer credentials can be read here: the addon loaded and the platform has
 * SO_PEERCRED or getpeereid(3). Never throws; the first call loads the addon and caches the answer.
 *
 * @example
 * const status = peerCredentialsAvailable()
 * if (!status.available) log.warn(status.reason)
 */
export function peerCredentialsAvailable(): { available: true } | { available: false; reason: string } {
  const result = loadAddon()
  if (result.ok && !result.binding.support.supported) return { available: false, reason: unsupported(result.binding) }
  return result.ok ? { available: true } : { available: false, reason: result.reason }
}

/**
 * Throws unless peer credentials can be read, so that serve() fails closed at start rather than
 * refusing every connection later.
 *
 * @throws {PeerCredentialsUnavailableError} naming the addon path tried or the platform, and the opt-out.
 * @example
 * assertPeerCredentialsAvailable() // IPC_PEER_CREDENTIALS_UNAVAILABLE: ... pass allow: false to serve() ...
 */
export function assertPeerCredentialsAvailable(): void {
  requireBinding()
}

function unsupported(binding: NativeBinding): string {
  return `peer credentials are unsupported on ${process.platform} (the addon found no SO_PEERCRED or getpeereid; platform ${binding.support.platform})`
}

function requireBinding(): NativeBinding {
  const result = loadAddon()
  if (!result.ok) {
    // An override refused by the safe-path check is that refusal (IPC_UNSAFE_PATH), not a missing addon.
    if (isIpcError(result.cause, 'IPC_UNSAFE_PATH')) throw result.cause
    throw new PeerCredentialsUnavailableError(`${result.reason}; ${OPT_OUT}`, { cause: result.cause })
  }
  if (!result.binding.support.supported) throw new PeerCredentialsUnavailableError(`${unsupported(result.binding)}; ${OPT_OUT}`)
  return result.binding
}

interface HandleInternals {
  fd?: unknown
  _parent?: HandleInternals | null
}

interface SocketInternals {
  _handle?: HandleInternals | null
  _parent?: SocketInternals | null
}

/**
 * The file descriptor under a net.Socket, tls.TLSSocket or listening net.Server, from Node's
 * internal handles (no public API exposes it): the one place that reads them. On Node 20: a
 * net.Socket's (and a listening net.Server's) `_handle` is a Pipe whose `fd` getter calls
 * uv_fileno; a TLSSocket's `_handle` is a TLSWrap whose `fd` returns the fd of the stream it wraps,
 * both for the server side (wrapping the accepted net.Socket, also kept as `_parent`) and for
 * tls.connect({ path }) or tls.connect({ socket }). The other two look-ups are fallbacks for a
 * TLSWrap that stops forwarding `fd`. A destroyed socket has `_handle === null`; a TLSSocket over a
 * JS Duplex reports -1. Either way there is no fd and the caller fails closed.
 *
 * @example
 * const fd = descriptorOf(server) // undefined: not listening, or a Node that moved its handles
 */
export function descriptorOf(socket: net.Socket | net.Server): number | undefined {
  const s = socket as unknown as SocketInternals
  for (const fd of [s._handle?.fd, s._handle?._parent?.fd, s._parent?._handle?.fd]) {
    if (typeof fd === 'number' && Number.isInteger(fd) && fd >= 0) return fd
  }
  return undefined
}

/** The kernel's part of PeerCredentials: what SO_PEERCRED (or getpeereid) returns, nothing from procfs. */
export type PeerIds = Omit<PeerCredentials, 'startTime' | 'pidfd' | 'gone'>

/**
 * Reads the peer's pid/uid/gid from the kernel and nothing else: one getsockopt(2), no procfs
 * read. What an allow decision needs; the server's peer check calls this for every new
 * connection and reads the start time only later, for admitted peers that ask for it.
 *
 * @throws {PeerCredentialsUnavailableError} as getPeerCredentials.
 * @example
 * const { uid } = getPeerIds(socket)
 * if (!allowed.has(uid)) socket.destroy()
 */
export function getPeerIds(socket: net.Socket): PeerIds {
  const binding = requireBinding()
  const fd = descriptorOf(socket)
  if (fd === undefined) {
    throw new PeerCredentialsUnavailableError(
      socket.destroyed
        ? 'cannot read peer credentials: the socket is already destroyed'
        : 'cannot read peer credentials: the socket has no file descriptor (not backed by a Unix domain socket)',
    )
  }
  let creds: { pid: number; uid: number; gid: number }
  try {
    creds = binding.getPeerCredentials(fd)
  } catch (err) {
    const code = (err as { code?: unknown }).code
    throw new PeerCredentialsUnavailableError(
      `cannot read peer credentials of fd ${fd} (${binding.support.mechanism}): ${typeof code === 'string' ? code : firstLine(err)}`,
      { cause: err },
    )
  }
  return { pid: creds.pid, uid: creds.uid, gid: creds.gid }
}

/**
 * Reads the peer's pid/uid/gid from the kernel, plus its start time from procfs. Works on either
 * end of a Unix domain socket, plain or TLS: on the server it names the client process, on the
 * client the process that called listen(2). Costs one getsockopt(2) and one small procfs read
 * (getPeerIds skips the latter).
 *
 * The start time is read now, not at connect(2): if the peer has already exited and its pid been
 * reused, it is the new process's. Comparing it later against a fresh read still catches reuse
 * after this point, which is what it is for.
 *
 * @throws {PeerCredentialsUnavailableError} when the addon is missing or the platform unsupported,
 *   when the socket has no fd (destroyed, or TLS over a non-socket stream), or when the kernel
 *   refuses (cause carries `code` such as 'EBADF', 'ENOTSOCK', or 'ENOTCONN' for a TCP socket).
 * @example
 * server.on('connection', (socket) => {
 *   const { pid, uid, gid } = getPeerCredentials(socket)
 *   if (uid !== process.getuid?.()) socket.destroy()
 * })
 */
export function getPeerCredentials(socket: net.Socket): PeerCredentials {
  const { pid, uid, gid } = getPeerIds(socket)
  const facts = readPeerProcess(socket, pid, readProcessStartTime)
  return { pid, uid, gid, startTime: facts.value, pidfd: facts.pidfd, gone: facts.gone }
}

let pidfdWorks: boolean | undefined

/**
 * Whether this process reads peer facts through pidfds: the addon has SO_PEERPIDFD and the kernel
 * answers it (Linux 6.5+). Probed once per process on a socketpair of our own; never throws.
 *
 * @example
 * peerPidfdAvailable() // true on Linux 6.5+, false on older kernels, macOS and the BSDs
 */
export function peerPidfdAvailable(): boolean {
  if (pidfdWorks === undefined) {
    const result = loadAddon()
    pidfdWorks = false
    if (result.ok && typeof result.binding.pidfdProbe === 'function') {
      try {
        pidfdWorks = result.binding.pidfdProbe()
      } catch {}
    }
  }
  return pidfdWorks
}

/** What readPeerProcess found: the value read, and how far it is known to be the peer's. */
export interface PeerProcessFacts<T> {
  /** What `read` returned; undefined when the peer had gone (or could not be read). */
  value: T | undefined
  /** The read was checked against a pidfd for the connecting process. */
  pidfd: boolean
  /** The connecting process had exited (pidfd only; undefined where that cannot be told). */
  gone: boolean | undefined
}

/**
 * Reads facts about the process at the other end of `socket` by its `pid` (from procfs: start
 * time, executable...) so that they are that process's, never a later one's that got the pid.
 * Where SO_PEERPIDFD works, it takes a pidfd for the process the kernel recorded at connect(2)
 * (the same one whenever it is asked), calls `read(pid)`, then checks the pidfd still names a
 * live process: a process that exists after the read held its pid throughout (a pid is freed only when its
 * process is reaped), so the read was its own. A process gone by then gives
 * `{ value: undefined, gone: true }`. The pidfd is closed before returning. Elsewhere `read(pid)`
 * is called as is (`pidfd: false`): a pid reused before the read goes unseen.
 *
 * Costs, with a pidfd, a getsockopt, one pidfd_send_signal and a close on top of `read`.
 *
 * @example
 * const { value: startTime, gone } = readPeerProcess(socket, pid, readProcessStartTime)
 */
export function readPeerProcess<T>(socket: net.Socket, pid: number, read: (pid: number) => T | undefined): PeerProcessFacts<T> {
  if (!(pid > 0)) return { value: undefined, pidfd: peerPidfdAvailable(), gone: undefined }
  if (!peerPidfdAvailable()) return { value: read(pid), pidfd: false, gone: undefined }
  const binding = requireBinding()
  const fd = descriptorOf(socket)
  // The connection is closed: no pidfd to be had, and the pid alone proves nothing.
  if (fd === undefined) return { value: undefined, pidfd: true, gone: undefined }
  const pidfd = binding.peerPidfd!(fd)
  if (typeof pidfd === 'string') {
    // ESRCH/EINVAL: the kernel has no process left behind the recorded pid (reaped).
    return { value: undefined, pidfd: true, gone: pidfd === 'ESRCH' || pidfd === 'EINVAL' ? true : undefined }
  }
  try {
    // One check, after the read, suffices: a process alive then was alive (and held its pid)
    // from connect(2) through the read, since a pidfd never comes back to life.
    const value = read(pid)
    if (!binding.pidfdAlive!(pidfd)) return { value: undefined, pidfd: true, gone: true }
    return { value, pidfd: true, gone: false }
  } finally {
    closeSync(pidfd)
  }
}

/** What an inherited descriptor is, from the kernel (see inspectSocket in native/peercred.c). */
export interface SocketFacts {
  family: 'unix' | 'inet' | 'inet6' | 'other'
  type: 'stream' | 'dgram' | 'seqpacket' | 'other'
  /** SO_ACCEPTCONN: listen(2) was called; undefined where the platform cannot tell. */
  listening: boolean | undefined
  /** The path it is bound to (getsockname), for a Unix socket with a path: as written at bind(2), maybe relative. */
  path: string | undefined
  /**
   * The file the socket is bound to, as the kernel keeps it (Linux sock_diag UNIX_DIAG_VFS):
   * `dev` as stat's `dev`, `ino` the low 32 bits of stat's `ino`. Compare with an lstat of the
   * path to know that the file there is this very socket. Undefined where the kernel does not say
   * (not Linux, unix_diag unavailable, an older addon, an unnamed socket).
   */
  file?: { dev: number; ino: number } | undefined
}

/**
 * Ask the kernel what the descriptor `fd` is: family, type, whether it listens, and the path it
 * is bound to. Used before adopting a socket handed over by systemd or the supervisor.
 *
 * @throws {PeerCredentialsUnavailableError} when the addon is missing or predates inspectSocket;
 *   a system error with `code` (EBADF, ENOTSOCK) when `fd` is not an open socket.
 * @example
 * const facts = inspectSocketFd(3)
 * // { family: 'unix', type: 'stream', listening: true, path: '/run/naaccord/service.sock', file: { dev: 26, ino: 1234 } }
 */
export function inspectSocketFd(fd: number): SocketFacts {
  const binding = requireBinding()
  if (typeof binding.inspectSocket !== 'function') {
    throw new PeerCredentialsUnavailableError(`the peer-credential addon has no inspectSocket (built from an older source); ${REBUILD_HINT}`)
  }
  return binding.inspectSocket(fd)
}

/**
 * A copy of descriptor `fd` (fcntl F_DUPFD_CLOEXEC): the same open socket under a new number that
 * is closed on exec. Close it with `fs.closeSync`.
 *
 * @throws {PeerCredentialsUnavailableError} when the addon is missing or predates dupCloexec.
 * @example
 * const copy = dupCloexec(fd)
 */
export function dupCloexec(fd: number): number {
  const binding = requireBinding()
  if (typeof binding.dupCloexec !== 'function') {
    throw new PeerCredentialsUnavailableError(`the peer-credential addon has no dupCloexec (built from an older source); ${REBUILD_HINT}`)
  }
  return binding.dupCloexec(fd)
}
