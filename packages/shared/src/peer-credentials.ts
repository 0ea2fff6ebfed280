import { readFileSync, readlinkSync } from 'node:fs'
import { createRequire } from 'node:module'
import type net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ENV } from './constants.js'
import { PeerCredentialsUnavailableError } from './errors.js'

/**
 * Who is at the other end of a Unix domain socket, as the kernel recorded it when the connection
 * was made (unix(7) SO_PEERCRED; getpeereid(3) on macOS and the BSDs). The peer cannot forge
 * these, unlike anything it sends over the socket. The native addon is native/peercred.c.
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
}

interface NativeBinding {
  getPeerCredentials(fd: number): { pid: number; uid: number; gid: number }
  support: { supported: boolean; mechanism: string; pid: boolean; platform: string }
}

type Loaded = { ok: true; binding: NativeBinding; file: string } | { ok: false; reason: string; cause: unknown }

const OPT_OUT = 'pass allow: false to serve() to run without the peer check'
const BUILD_HINT = 'build it with "pnpm --filter @naaccord/ipc-shared run install" (needs a C toolchain and Python 3)'

const require = createRequire(import.meta.url)
// src/ and dist/ both sit directly under the package root, where binding.gyp and prebuilds/ live.
const packageRoot = fileURLToPath(new URL('..', import.meta.url))

let loaded: Loaded | undefined

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  return text.split('\n', 1)[0]?.trim() ?? text
}

function loadFrom(file: string, label: string): Loaded {
  let binding: NativeBinding
  try {
    binding = require(file) as NativeBinding
  } catch (err) {
    return { ok: false, reason: `the peer-credential addon could not be loaded from ${label}: ${firstLine(err)}`, cause: err }
  }
  if (typeof binding?.getPeerCredentials !== 'function' || typeof binding.support !== 'object') {
    return { ok: false, reason: `${label} is not the peer-credential addon (no getPeerCredentials export)`, cause: undefined }
  }
  if (!binding.support.supported) {
    return {
      ok: false,
      reason: `peer credentials are unsupported on ${process.platform} (addon ${label} has no SO_PEERCRED or getpeereid)`,
      cause: undefined,
    }
  }
  return { ok: true, binding, file }
}

// Once per process: the answer cannot change without a restart, and a failure is remembered so
// that a missing addon costs one stat walk, not one per connection.
function load(): Loaded {
  if (loaded) return loaded
  const explicit = process.env[ENV.peerAddon]
  if (explicit !== undefined && explicit.trim() !== '') {
    const file = path.resolve(explicit.trim())
    const label = `${file} (from ${ENV.peerAddon})`
    // require() would run a .js file as code; only a native addon is wanted here.
    loaded =
      path.extname(file) === '.node'
        ? loadFrom(file, label)
        : { ok: false, reason: `${label} is not a .node file`, cause: undefined }
    return loaded
  }
  let file: string
  try {
    // node-gyp-build looks in build/Release, build/Debug, then prebuilds/<platform>-<arch>/.
    const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string }
    file = nodeGypBuild.path(packageRoot)
  } catch (err) {
    const tried = `${path.join(packageRoot, 'build', 'Release')} and ${path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`)}`
    loaded = {
      ok: false,
      reason: `the peer-credential addon was not found in ${tried} (${firstLine(err)}); ${BUILD_HINT}`,
      cause: err,
    }
    return loaded
  }
  loaded = loadFrom(file, file)
  return loaded
}

/**
 * The native addon as loaded once per process (module object), or why it could not be loaded.
 * For the other native functions of the addon (flock in file-lock.ts); not part of the API.
 *
 * @example
 * const addon = loadNativeAddon()
 * if (addon.ok && typeof addon.binding.flock === 'function') addon.binding.flock(fd, true, true)
 */
export function loadNativeAddon(): { ok: true; binding: Record<string, unknown>; file: string } | { ok: false; reason: string } {
  const result = load()
  return result.ok ? { ok: true, binding: result.binding as unknown as Record<string, unknown>, file: result.file } : { ok: false, reason: result.reason }
}

/**
 * Whether the kernel's peer credentials can be read here: the addon loaded and the platform has
 * SO_PEERCRED or getpeereid(3). Never throws; the first call loads the addon and caches the answer.
 *
 * @example
 * const status = peerCredentialsAvailable()
 * if (!status.available) log.warn(status.reason)
 */
export function peerCredentialsAvailable(): { available: true } | { available: false; reason: string } {
  const result = load()
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

function requireBinding(): NativeBinding {
  const result = load()
  if (!result.ok) {
    throw new PeerCredentialsUnavailableError(`${result.reason}; ${OPT_OUT}`, { cause: result.cause })
  }
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
 * The file descriptor under a net.Socket or tls.TLSSocket, from Node's internal handles (no public
 * API exposes it). On Node 20: a net.Socket's `_handle` is a Pipe whose `fd` getter calls
 * uv_fileno; a TLSSocket's `_handle` is a TLSWrap whose `fd` returns the fd of the stream it wraps,
 * both for the server side (wrapping the accepted net.Socket, also kept as `_parent`) and for
 * tls.connect({ path }) or tls.connect({ socket }). The other two look-ups are fallbacks for a
 * TLSWrap that stops forwarding `fd`. A destroyed socket has `_handle === null`; a TLSSocket over a
 * JS Duplex reports -1. Either way there is no fd and the caller fails closed.
 */
function socketFd(socket: net.Socket): number | undefined {
  const s = socket as unknown as SocketInternals
  for (const fd of [s._handle?.fd, s._handle?._parent?.fd, s._parent?._handle?.fd]) {
    if (typeof fd === 'number' && Number.isInteger(fd) && fd >= 0) return fd
  }
  return undefined
}

/** The kernel's part of PeerCredentials: what SO_PEERCRED (or getpeereid) returns, nothing from procfs. */
export type PeerIds = Omit<PeerCredentials, 'startTime'>

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
  const fd = socketFd(socket)
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
  return { pid, uid, gid, startTime: pid > 0 ? readProcessStartTime(pid) : undefined }
}

/**
 * Parses the text of /proc/<pid>/stat. proc(5): field 2, comm, is the command name in parentheses
 * and may itself contain spaces and ')' (a process may call itself "a) b"), so the fields after it
 * are found after the LAST ')'; field 22 is starttime, in clock ticks since boot.
 * Returns undefined for text that does not have that shape.
 *
 * @example
 * parseProcStat('42 (a) b) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 9001 0 0')
 * // { pid: 42, comm: 'a) b', state: 'S', startTime: 9001 }
 */
export function parseProcStat(
  text: string,
): { pid: number; comm: string; state: string; startTime: number } | undefined {
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  if (open < 1 || close < open) return undefined
  const pidText = text.slice(0, open).trim()
  if (!/^\d+$/.test(pidText)) return undefined
  // After ")" come fields 3 (state) onwards, so field 22 is at index 22 - 3.
  // proc(5): fields are separated by single spaces; only the first 20 after comm are needed.
  const rest = text.slice(close + 1).trimStart().split(' ', 20)
  const state = rest[0]
  const startText = rest[22 - 3]
  if (state === undefined || startText === undefined || !/^\d+$/.test(startText)) return undefined
  const startTime = Number(startText)
  if (!Number.isSafeInteger(startTime)) return undefined
  return { pid: Number(pidText), comm: text.slice(open + 1, close), state, startTime }
}

function isPid(pid: number): boolean {
  return Number.isSafeInteger(pid) && pid > 0
}

/**
 * The start time of a process (proc(5) /proc/<pid>/stat field 22, clock ticks since boot), or
 * undefined where unreadable: no such process, no procfs (macOS, BSD), or a malformed line.
 * Together with the pid it names one process for the life of the system, since a reused pid has
 * a later start time.
 *
 * @example
 * const started = readProcessStartTime(process.pid) // e.g. 1234567
 * // later: readProcessStartTime(pid) !== started means the pid now belongs to another process
 */
export function readProcessStartTime(pid: number): number | undefined {
  if (!isPid(pid)) return undefined
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.startTime
  } catch {
    return undefined
  }
}

/**
 * Best-effort facts for a refusal log line: the executable (proc(5) /proc/<pid>/exe, which ends
 * in " (deleted)" when the file was replaced since) and the command name (/proc/<pid>/comm, at
 * most 15 bytes, settable by the process itself, so only a hint). Fields are undefined where
 * unreadable: not Linux, the process has gone, or reading exe needs ptrace access to it.
 * Never throws.
 *
 * @example
 * const { exe, comm } = describeProcess(creds.pid)
 * log.warn({ pid: creds.pid, exe, comm }, 'refused connection')
 */
export function describeProcess(pid: number): { exe: string | undefined; comm: string | undefined } {
  if (!isPid(pid)) return { exe: undefined, comm: undefined }
  let exe: string | undefined
  let comm: string | undefined
  try {
    exe = readlinkSync(`/proc/${pid}/exe`)
  } catch {}
  try {
    comm = readFileSync(`/proc/${pid}/comm`, 'utf8').replace(/\n$/, '')
  } catch {}
  return { exe, comm }
}

/** What an inherited descriptor is, from the kernel (see inspectSocket in native/peercred.c). */
export interface SocketFacts {
  family: 'unix' | 'inet' | 'inet6' | 'other'
  type: 'stream' | 'dgram' | 'seqpacket' | 'other'
  /** SO_ACCEPTCONN: listen(2) was called; undefined where the platform cannot tell. */
  listening: boolean | undefined
  /** The path it is bound to (getsockname), for a Unix socket with a path. */
  path: string | undefined
}

/**
 * Ask the kernel what the descriptor `fd` is: family, type, whether it listens, and the path it
 * is bound to. Used before adopting a socket handed over by systemd or the supervisor.
 *
 * @throws {PeerCredentialsUnavailableError} when the addon is missing or predates inspectSocket;
 *   a system error with `code` (EBADF, ENOTSOCK) when `fd` is not an open socket.
 * @example
 * const facts = inspectSocketFd(3) // { family: 'unix', type: 'stream', listening: true, path: '/run/naaccord/service.sock' }
 */
export function inspectSocketFd(fd: number): SocketFacts {
  const binding = requireBinding() as NativeBinding & { inspectSocket?: (fd: number) => SocketFacts }
  if (typeof binding.inspectSocket !== 'function') {
    throw new PeerCredentialsUnavailableError(`the peer-credential addon has no inspectSocket (built from an older source); ${BUILD_HINT}`)
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
  const binding = requireBinding() as NativeBinding & { dupCloexec?: (fd: number) => number }
  if (typeof binding.dupCloexec !== 'function') {
    throw new PeerCredentialsUnavailableError(`the peer-credential addon has no dupCloexec (built from an older source); ${BUILD_HINT}`)
  }
  return binding.dupCloexec(fd)
}
