import { realpathSync } from 'node:fs'
import type { Server } from 'node:net'
import path from 'node:path'
import { inspectSocketFd, type SocketFacts } from '@naaccord/ipc-peercred'
import { InheritedSocketError, type Env } from '@naaccord/ipc-shared'

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
 * Read the activation variables once per process and remove them from `process.env`, so that
 * processes this one starts do not believe the sockets are theirs (sd_listen_fds(3) with
 * unset_environment = 1).
 */
function inheritedFds(): InheritedFd[] {
  if (inherited === undefined) {
    inherited = parseListenFds(process.env)
    delete process.env.LISTEN_PID
    delete process.env.LISTEN_FDS
    delete process.env.LISTEN_FDNAMES
  }
  return inherited
}

/** The same file, whatever symlinks the folder's path goes through (/var/run -> /run). */
function canonical(p: string): string {
  try {
    return path.join(realpathSync(path.dirname(p)), path.basename(p))
  } catch {
    return path.resolve(p)
  }
}

function realFolder(dir: string): string {
  try {
    return realpathSync(dir)
  } catch {
    return path.resolve(dir)
  }
}

function describe(facts: SocketFacts): string {
  return `a ${facts.listening === false ? 'non-listening ' : ''}${facts.family} ${facts.type} socket${facts.path ? ` bound to ${facts.path}` : ''}`
}

/** Refuse anything but a listening AF_UNIX stream socket bound to `socketPath`. */
function verify(socketPath: string, entry: InheritedFd, facts: SocketFacts, byName: boolean): void {
  const fix = 'make ListenStream= (or naaccord-ipc run --socket) and socketPath name the same path'
  if (facts.family !== 'unix' || facts.type !== 'stream') {
    throw new InheritedSocketError(socketPath, entry.fd, `is ${describe(facts)}, not a Unix stream socket; use ListenStream= with a path in the .socket unit`)
  }
  if (facts.listening === false) {
    throw new InheritedSocketError(socketPath, entry.fd, `is ${describe(facts)}; listen(2) was never called on it (Accept=no sockets are handed over listening)`)
  }
  if (facts.path !== undefined && canonical(facts.path) === canonical(socketPath)) return
  // A socket named for this path (LISTEN_FDNAMES) may have been bound under a private name in a
  // folder beside it and then published at the path by link(2), as naaccord-ipc run does (the
  // kernel keeps reporting the name it was bound to): accept it when that name is in a private
  // folder of the socket's own folder.
  if (byName && facts.path !== undefined) {
    const boundIn = realFolder(path.dirname(path.dirname(facts.path)))
    const folder = realFolder(path.dirname(socketPath))
    const privateDir = path.basename(path.dirname(facts.path))
    if (boundIn === folder && privateDir.startsWith('.')) return
  }
  throw new InheritedSocketError(socketPath, entry.fd, `is ${describe(facts)}, not at the configured socketPath; ${fix}`)
}

/**
 * When this process was started by socket activation (systemd, `systemd-socket-activate`, or
 * `naaccord-ipc run`), the inherited listening socket for `socketPath`, checked with the kernel:
 * a listening AF_UNIX stream socket bound to that very path. Chosen by LISTEN_FDNAMES when a
 * name equals the path or its file name, else by the path each socket is bound to. Returns
 * undefined when this process was not socket-activated; throws when it was but no inherited
 * socket fits, since binding our own beside the activator's would fail or confuse.
 *
 * @throws {InheritedSocketError} (`IPC_INHERITED_SOCKET`) naming the fd, what it is, and the fix.
 * @example
 * const fd = takeInheritedSocket('/run/naaccord/service.sock')
 * if (fd !== undefined) server.listen({ fd })
 */
export function takeInheritedSocket(socketPath: string): number | undefined {
  const all = inheritedFds()
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
  if (chosen !== undefined) {
    facts = inspect(chosen)
  } else {
    const seen: string[] = []
    for (const entry of free) {
      const f = inspect(entry)
      seen.push(`fd ${entry.fd}${entry.name ? ` (${entry.name})` : ''}: ${describe(f)}`)
      if (f.path !== undefined && canonical(f.path) === canonical(socketPath)) {
        chosen = entry
        facts = f
        break
      }
    }
    if (chosen === undefined) {
      throw new InheritedSocketError(
        socketPath,
        undefined,
        `this process was socket-activated (LISTEN_FDS=${all.length}) but no inherited socket is at this path (${seen.join('; ') || 'all already in use'}); ` +
          'make ListenStream= (or naaccord-ipc run --socket) and socketPath name the same path',
      )
    }
  }
  verify(socketPath, chosen, facts!, chosen === byName)
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
