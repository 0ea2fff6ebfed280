import fs from 'node:fs'
import type { Server } from 'node:net'
import path from 'node:path'
import { inspectSocketFd, type SocketFacts } from '@naaccord/ipc-peercred'
import { InheritedSocketError, checkFolderChain, clearActivationEnv, modeText, myUid, trustedUids, type Env, type SafePathSubject } from '@naaccord/ipc-shared'
import { isPrivateBindPath } from './bind-socket.js'
import type { ResolvedServerOptions } from '../options.js'

/** sd_listen_fds(3): inherited descriptors start at 3. */
export const SD_LISTEN_FDS_START = 3

export interface InheritedFd {
  readonly fd: number
  /** From LISTEN_FDNAMES (systemd FileDescriptorName=, default the socket unit's name). */
  readonly name: string | undefined
}

/**
 * The descriptors handed to this process by socket activation, exactly as sd_listen_fds(3)
 * reads them: only when LISTEN_PID is this process's pid (a variable inherited by a grandchild
 * is not meant for it), LISTEN_FDS descriptors from fd 3, named by LISTEN_FDNAMES (colon
 * separated) when given. Malformed values count as no activation, like sd_listen_fds.
 *
 * @example
 * parseListenFds({ LISTEN_PID: String(process.pid), LISTEN_FDS: '1' }) // [{ fd: 3, name: undefined }]
 */
export function parseListenFds(env: Env, pid = process.pid): InheritedFd[] {
  const pidText = env.LISTEN_PID
  const countText = env.LISTEN_FDS
  if (pidText === undefined || countText === undefined) return []
  if (!/^\d+$/.test(pidText) || Number(pidText) !== pid) return []
  if (!/^\d+$/.test(countText)) return []
  const count = Number(countText)
  if (count < 1 || count > 1024) return []
  const names = env.LISTEN_FDNAMES === undefined ? [] : env.LISTEN_FDNAMES.split(':')
  return Array.from({ length: count }, (_, i) => ({ fd: SD_LISTEN_FDS_START + i, name: names[i] === '' ? undefined : names[i] }))
}

let inherited: InheritedFd[] | undefined
const taken = new Set<number>()

/**
 * Read the activation variables once per process and, unless `clearEnv` is false, remove them
 * from `process.env` (the `clearActivationEnv` process effect: see process-effects.ts).
 */
function inheritedFds(clearEnv: boolean): InheritedFd[] {
  if (inherited === undefined) {
    inherited = parseListenFds(process.env)
    if (clearEnv) clearActivationEnv()
  }
  return inherited
}

function describe(facts: SocketFacts): string {
  return `a ${facts.listening === false ? 'non-listening ' : ''}${facts.family} ${facts.type} socket${facts.path ? ` bound to ${facts.path}` : ''}`
}

/**
 * What the adopted socket must be besides its path: the socket options of serve(); and whether
 * the activation variables are removed from process.env once read (`clearActivationEnv`, default true).
 */
export type AdoptionExpectations = Pick<ResolvedServerOptions, 'socketMode' | 'socketGid'> & { readonly clearActivationEnv?: boolean }

const SUBJECT: SafePathSubject = { kind: 'socket', label: 'the socket handed over (LISTEN_FDS)', option: 'socketPath' }
const FIX_PATH = 'make ListenStream= (or naaccord-ipc run --socket) and socketPath name the same absolute path'
/** unix(7): connecting to a stream socket needs write permission on its file; read and execute grant nothing. */
const CONNECT_BITS = 0o222

/** The real path of `socketPath` (its folder chain walked through the safe-path rules). */
function realSocketPath(socketPath: string): string {
  const real = checkFolderChain(socketPath, SUBJECT, trustedUids())
  if (typeof real !== 'string') {
    throw new InheritedSocketError(socketPath, undefined, `${real.missing} does not exist, so no socket handed over can be at this path; ${FIX_PATH}`)
  }
  return path.join(real, path.basename(socketPath))
}

/**
 * How the socket's bound path (as the kernel reports it) names `realSocket`: `'path'` when it is
 * that path (after `.`/`..` are resolved lexically and the folders' trusted symlinks through the
 * safe-path walk, which also checks the bound path's folder chain), `'private'` when it is exactly
 * the supervisor's private bind name beside it; undefined otherwise. A relative bound path names
 * nothing: the kernel resolved it against the binder's working folder, unknown here.
 */
function boundTo(bound: string | undefined, realSocket: string): 'path' | 'private' | undefined {
  if (bound === undefined || !path.isAbsolute(bound)) return undefined
  const normal = path.posix.normalize(bound)
  if (normal === realSocket) return 'path'
  if (isPrivateBindPath(normal, realSocket)) return 'private'
  if (path.basename(normal) !== path.basename(realSocket)) return undefined
  const real = checkFolderChain(normal, SUBJECT, trustedUids())
  return typeof real === 'string' && path.join(real, path.basename(normal)) === realSocket ? 'path' : undefined
}

function refuser(socketPath: string, entry: InheritedFd): (reason: string) => never {
  return (reason) => {
    throw new InheritedSocketError(socketPath, entry.fd, reason)
  }
}

/** Refuse anything but a listening AF_UNIX stream socket bound to an absolute path; returns that path. */
function verifyKind(socketPath: string, entry: InheritedFd, facts: SocketFacts): string {
  const refuse = refuser(socketPath, entry)
  if (facts.family !== 'unix' || facts.type !== 'stream') {
    refuse(`is ${describe(facts)}, not a Unix stream socket; use ListenStream= with a path in the .socket unit`)
  }
  if (facts.listening === false) {
    refuse(`is ${describe(facts)}; listen(2) was never called on it (Accept=no sockets are handed over listening)`)
  }
  const bound = facts.path ?? refuse(`is ${describe(facts)} with no path (unnamed or abstract); ${FIX_PATH}`)
  if (!path.isAbsolute(bound)) {
    refuse(
      `is bound to the relative path "${bound}", which the kernel resolved against the working folder of whoever bound it, not ours; ` +
        `its place is unknown, so it is not adopted. Give ListenStream= an absolute path`,
    )
  }
  return bound
}

/**
 * Refuse a socket not bound to `realSocket` (or under the supervisor's private name beside it),
 * whose file at `realSocket` is not that very socket, not owned by a trusted uid, or more
 * connectable than socketMode (and socketGroup) allow.
 */
function verifyPlace(socketPath: string, realSocket: string, entry: InheritedFd, facts: SocketFacts, bound: string, expected: AdoptionExpectations): void {
  const refuse = refuser(socketPath, entry)
  const how = boundTo(bound, realSocket)
  if (how === undefined) {
    const normal = path.posix.normalize(bound)
    refuse(`is ${describe(facts)}${normal !== bound ? ` (that is ${normal})` : ''}, not at the configured socketPath (${realSocket}); ${FIX_PATH}`)
  }
  let st: fs.BigIntStats
  try {
    st = fs.lstatSync(realSocket, { bigint: true })
  } catch (err) {
    return refuse(`nothing can be reached at ${realSocket} (${(err as NodeJS.ErrnoException).code}): the socket file was removed or never published; restart the activator (systemctl restart <name>.socket)`)
  }
  const mode = Number(st.mode) & 0o7777
  const stText = `owned by uid ${st.uid}, group ${st.gid}, mode ${modeText(mode)}`
  if (!st.isSocket()) refuse(`${realSocket} is not a socket (${stText}); give socketPath the real path of the socket`)
  const trust = trustedUids()
  if (!trust.has(Number(st.uid))) {
    refuse(`${realSocket} is ${stText}, not owned by this process (uid ${myUid()}) or root, so another user may have placed it; set SocketUser= to root or this user`)
  }
  if (facts.file !== undefined && (Number(st.dev) !== facts.file.dev || Number(st.ino & 0xffffffffn) !== facts.file.ino)) {
    refuse(
      `the file at ${realSocket} (inode ${st.ino}) is another socket than the one inherited (bound as ${bound}, inode ${facts.file.ino} on device ${facts.file.dev}); ` +
        `whatever answers there is not this process. Remove the stray socket if it is yours and restart the activator`,
    )
  }
  const wider = mode & CONNECT_BITS & ~expected.socketMode
  if (wider !== 0) {
    refuse(
      `${realSocket} has mode ${modeText(mode)} (${stText}), which lets more users connect than socketMode ${modeText(expected.socketMode)} does ` +
        `(the peer check still applies to each). Set SocketMode=${modeText(expected.socketMode).slice(2).padStart(4, '0')} in the .socket unit ` +
        `(naaccord-ipc run: --socket-mode), or accept the wider mode by naming it: socketMode / NAACCORD_SOCKET_MODE=${modeText(mode).slice(2).padStart(4, '0')}`,
    )
  }
  if (expected.socketGid !== undefined && mode & 0o020 && Number(st.gid) !== expected.socketGid) {
    refuse(`${realSocket} (${stText}) lets group ${st.gid} connect, not socketGroup ${expected.socketGid}; set SocketGroup= in the .socket unit to that group`)
  }
}

/**
 * When this process was started by socket activation (systemd, `systemd-socket-activate`, or
 * `naaccord-ipc run`), the inherited listening socket for `socketPath`, checked with the kernel
 * and the filesystem before it is used:
 *
 * - a listening AF_UNIX stream socket, bound (getsockname) to an absolute path that is
 *   `socketPath` once `.`/`..` are resolved and the folders' trusted symlinks followed
 *   (/var/run -> /run), or exactly the private name `naaccord-ipc run` binds under beside it
 *   (`<folder>/.<name>.XXXXXX/s`); a relative bound path is refused;
 * - the folder chain of `socketPath` passes the safe-path check (trusted owners, no foreign write);
 * - the file at `socketPath` is a socket owned by this uid or root, and is this very socket: the
 *   kernel's record of the bound file (sock_diag) has its device and inode, where available;
 * - its mode lets no more users connect than `socketMode` (write bits, unix(7)), and its group is
 *   `socketGid` when the group may connect.
 *
 * Chosen by LISTEN_FDNAMES when a name equals the path or its file name, else by the path each
 * socket is bound to. Returns undefined when this process was not socket-activated; throws when
 * it was but no inherited socket fits, since binding our own beside the activator's would fail or
 * confuse.
 *
 * @throws {InheritedSocketError} (`IPC_INHERITED_SOCKET`) naming the fd, what it is, and the fix.
 * @throws {UnsafeSocketPathError} (`IPC_UNSAFE_SOCKET_PATH`) when a folder or link on the way is unsafe.
 * @example
 * const fd = takeInheritedSocket('/run/naaccord/service.sock', { socketMode: 0o660, socketGid: 990 })
 * if (fd !== undefined) server.listen({ fd })
 */
export function takeInheritedSocket(socketPath: string, expected: AdoptionExpectations): number | undefined {
  const all = inheritedFds(expected.clearActivationEnv ?? true)
  if (all.length === 0) return undefined
  const free = all.filter((e) => !taken.has(e.fd))
  const byName = free.find((e) => e.name !== undefined && (e.name === socketPath || e.name === path.basename(socketPath)))
  const inspect = (entry: InheritedFd): SocketFacts => {
    try {
      return inspectSocketFd(entry.fd)
    } catch (err) {
      const code = (err as { code?: unknown }).code
      if (code === 'IPC_PEER_CREDENTIALS_UNAVAILABLE') throw err
      throw new InheritedSocketError(socketPath, entry.fd, `is not an open socket (${typeof code === 'string' ? code : String(err)})`, { cause: err })
    }
  }
  let chosen: InheritedFd | undefined = byName
  let facts: SocketFacts | undefined
  let realSocket: string
  if (chosen !== undefined) {
    facts = inspect(chosen)
    verifyKind(socketPath, chosen, facts) // first: a relative or non-Unix socket is refused as such
    realSocket = realSocketPath(socketPath)
  } else {
    realSocket = realSocketPath(socketPath)
    const seen: string[] = []
    for (const entry of free) {
      const f = inspect(entry)
      seen.push(`fd ${entry.fd}${entry.name ? ` (${entry.name})` : ''}: ${describe(f)}`)
      let how: ReturnType<typeof boundTo>
      try {
        how = boundTo(f.path, realSocket)
      } catch {
        how = undefined // a socket bound through an unsafe folder is not ours to pick
      }
      if (how !== undefined) {
        chosen = entry
        facts = f
        break
      }
    }
    if (chosen === undefined) {
      throw new InheritedSocketError(
        socketPath,
        undefined,
        `this process was socket-activated (LISTEN_FDS=${all.length}) but no inherited socket is at this path (${seen.join('; ') || 'all already in use'}); ${FIX_PATH}`,
      )
    }
  }
  verifyPlace(socketPath, realSocket, chosen, facts!, verifyKind(socketPath, chosen, facts!), expected)
  taken.add(chosen.fd)
  return chosen.fd
}

/**
 * Accept on an inherited listening descriptor (Node's `server.listen({ fd })`); rejects on the
 * listen error.
 *
 * @example
 * await listenOnFd(server, 3)
 */
export function listenOnFd(server: Server, fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ fd }, () => {
      server.off('error', reject)
      resolve()
    })
  })
}
