import type net from 'node:net'
import {
  ENV,
  PeerRejectedError,
  UnsafeSocketPathError,
  group,
  integer,
  myUid,
  option,
  optional,
  parseBoolean,
  resolveSafeEntry,
  trustedUids,
  type Env,
  type IpcError,
  type OptionsInput,
  type SafePathSubject,
} from '@naaccord/ipc-shared'
import type { ReadPeerCredentials } from './peer-credentials-loader.js'

/** Who the client expects at the other end of the socket (`expectServer`), declared once. */
export const EXPECT_SERVER_OPTIONS = {
  /**
   * The uid the services server runs as, when it is not this process's uid or root: its socket,
   * and the folders and links on the way to it, may then also belong to that uid, and the
   * server process (read from the kernel after connecting) must run as that uid, or as root.
   * Root stays accepted because a socket handed over by systemd reports systemd (uid 0) to
   * connections made before the service's own listen(2) on it, and the service's uid after.
   */
  uid: option<number>()({ env: ENV.expectServerUid, parse: optional(integer(0, 0xffffffff)) }),
  /** The gid the server process must run as. */
  gid: option<number>()({ parse: optional(integer(0, 0xffffffff)) }),
  /** With `uid`: the socket file itself must be owned by that uid or root (not by this process's own uid). */
  checkSocketFile: option<boolean>()({ default: true, parse: parseBoolean }),
}

export type ExpectServer = OptionsInput<typeof EXPECT_SERVER_OPTIONS>

const parseExpectServer = group(EXPECT_SERVER_OPTIONS, {
  shape: '{ uid, gid, checkSocketFile } or false',
  envWhenGiven: true,
  finish: (values, _name, { sources }) => ({ values, sources }),
})

/**
 * Who the client trusts at the other end of the socket, resolved once. Checked on every new
 * connection, before a byte is sent (never per request: keep-alive connections are reused).
 */
export interface ResolvedServerCheck {
  /** Owners trusted for the folders, links and socket file on the way: us, root, `expectServer.uid`. */
  readonly pathOwners: ReadonlySet<number>
  /** With `expectServer.uid` and `checkSocketFile`: the owners the socket file may have (that uid, root). */
  readonly fileOwners: ReadonlySet<number> | undefined
  /** The uids the server process may run as (kernel credentials), or undefined with `expectServer: false`. */
  readonly processUids: ReadonlySet<number> | undefined
  /** The gid the server process must run as, when asked. */
  readonly processGid: number | undefined
  /** Where each part of the policy came from, for the start-up report. */
  readonly source: 'default' | 'option' | `env:${string}`
}

/**
 * Resolve `expectServer` (explicit, then NAACCORD_EXPECT_SERVER_UID for `uid`, then the default):
 *
 * - default: the server must run as this process's uid or root, and its socket and every folder
 *   and link on the way must belong to one of them;
 * - `{ uid }`: the server runs as `uid` or root (its socket and folders may belong to it too);
 * - `false`: no kernel check of the server process (the path check stays): said by name, and
 *   logged at every creation.
 *
 * @example
 * resolveServerCheck({ uid: 998 }, {}).processUids // Set { 998 }
 */
export function resolveServerCheck(value: ExpectServer | false | undefined, env: Env): ResolvedServerCheck {
  const me = myUid()
  if (value === false) {
    return Object.freeze({ pathOwners: trustedUids(), fileOwners: undefined, processUids: undefined, processGid: undefined, source: 'option' as const })
  }
  const { values, sources } = parseExpectServer('expectServer', value, { env, resolved: {} })
  const { uid, gid, checkSocketFile } = values
  const source = value?.uid !== undefined || value?.gid !== undefined ? 'option' : sources.uid
  return Object.freeze({
    pathOwners: trustedUids(uid),
    fileOwners: uid !== undefined && checkSocketFile ? new Set([uid, 0]) : undefined,
    // Root is always accepted: it owns every process's fate on the host anyway, and systemd (uid
    // 0) is the listener a socket-activated service's first callers see.
    processUids: new Set([uid ?? me, 0]),
    processGid: gid,
    source,
  })
}

const SUBJECT: SafePathSubject = { kind: 'socket', label: 'the socket', option: 'socketPath' }

/**
 * Before connecting: walk the socket path with the shared safe-path rules (every folder and link
 * owned by us, root or the expected server uid and writable by nobody else; the socket file owned
 * by one of them, or by `expectServer.uid` or root with `checkSocketFile`). Returns the real path to connect to (links
 * resolved, so nothing is followed again), or `{ missing }` (no socket yet: retried like ENOENT).
 *
 * @throws {UnsafeSocketPathError} IPC_UNSAFE_SOCKET_PATH naming the component and its owner.
 * @example
 * const where = checkSocketPath('/run/naaccord/service.sock', check)
 */
export function checkSocketPath(socketPath: string, check: ResolvedServerCheck): { realPath: string } | { missing: string } {
  const entry = resolveSafeEntry(socketPath, 'socket', SUBJECT, check.pathOwners)
  if ('missing' in entry) return entry
  if (check.fileOwners !== undefined && !check.fileOwners.has(entry.stat.uid)) {
    throw new UnsafeSocketPathError(
      entry.realPath,
      `is owned by uid ${entry.stat.uid}, but expectServer.uid is ${[...check.fileOwners][0]} (or root); refusing to connect, nothing was sent. ` +
        'Check which process made the socket, or set expectServer.checkSocketFile: false when the socket file legitimately belongs to another trusted uid (systemd SocketUser=)',
      undefined,
      entry.stat.uid,
    )
  }
  return { realPath: entry.realPath }
}

/**
 * After connecting, before TLS or HTTP: the kernel's credentials of the server process (the
 * process that called listen(2) on the socket) must match the policy.
 *
 * @example
 * const err = checkServerProcess(rawSocket, check, read, '/run/naaccord/service.sock')
 */
export function checkServerProcess(socket: net.Socket, check: ResolvedServerCheck, read: ReadPeerCredentials, target: string): IpcError | undefined {
  if (check.processUids === undefined) return undefined
  const creds = read(socket)
  if (!check.processUids.has(creds.uid)) {
    const expected = [...check.processUids].map((u) => `uid ${u}`).join(' or ')
    return new PeerRejectedError(
      `the server on ${target} runs as uid ${creds.uid} (pid ${creds.pid}), expected ${expected}; nothing was sent. ` +
        (check.source === 'default'
          ? `If the services server legitimately runs as uid ${creds.uid}, name it: expectServer: { uid: ${creds.uid} } (or ${ENV.expectServerUid}=${creds.uid})`
          : 'Check which process owns the socket'),
    )
  }
  if (check.processGid !== undefined && creds.gid !== check.processGid) {
    return new PeerRejectedError(`the server on ${target} runs as gid ${creds.gid} (pid ${creds.pid}), expected gid ${check.processGid}; nothing was sent`)
  }
  return undefined
}
