// Whom the doctor trusts, as the client does (this user, root, --owner): the folders, links and
// socket file on the way (the shared safe-path walk), and the process that listens (the kernel's word).
import { lstatSync, type Stats } from 'node:fs'
import type net from 'node:net'
import path from 'node:path'
import { checkFolderChain, isIpcError, myUid, resolveSafeEntry, type Finding, type SafeEntry, type SafePathSubject } from '@naaccord/ipc-shared'
import { getPeerIds } from '@naaccord/ipc-peercred'

const SUBJECT: SafePathSubject = { kind: 'socket', label: 'the socket', option: 'socketPath' }

/** "root, uid 1000 (this user) or uid 998 (--owner)": who the path and the server may belong to. */
export function trustedNames(trust: ReadonlySet<number>): string {
  const me = myUid()
  const names = [...trust].map((u) => (u === 0 ? `root${me === 0 ? ' (this user)' : ''}` : u === me ? `uid ${u} (this user)` : `uid ${u} (--owner)`))
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names.at(-1)}` : names.join('')
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p)
  } catch {
    return undefined
  }
}

/** What to do about a component the safe-path walk refused, from its owner and what it is. */
function refusalFix(at: string, owner: number | undefined, trust: ReadonlySet<number>): string {
  if (owner !== undefined && !trust.has(owner)) {
    return (
      `if uid ${owner} is legitimately the services user, name it: --owner ${owner} (its clients need expectServer: { uid: ${owner} } too); ` +
      `otherwise another user could have placed or redirected the socket: find out who made ${at}. Nothing was sent to it`
    )
  }
  const st = lstatOrUndefined(at)
  if (st?.isDirectory() && st.mode & 0o022) {
    return st.mode & 0o1000
      ? 'a shared sticky folder (like /tmp) cannot hold the socket itself: give socketPath in a private folder (e.g. /run/naaccord)'
      : `anyone who can write it can replace the socket: chmod go-w ${at}`
  }
  if (st && !st.isDirectory() && !st.isSymbolicLink() && !st.isSocket()) {
    return 'the server refuses to replace it: remove it by hand after checking what it is, then restart the server'
  }
  return `the socket must be reached through folders and links owned by ${trustedNames(trust)} that nobody else may write: change the component named, or socketPath`
}

/**
 * The folders, links and socket file, walked by the shared safe-path module with the client's
 * trust (this user, root, `--owner`). A refusal is critical and ends the diagnosis: nothing is
 * connected to, as the client would not.
 */
export function checkPath(socketPath: string, trust: ReadonlySet<number>, findings: Finding[]): SafeEntry | undefined {
  let entry: SafeEntry | { missing: string }
  try {
    entry = resolveSafeEntry(socketPath, 'socket', SUBJECT, trust)
  } catch (err) {
    const e = err as Error & { path?: string; owner?: number }
    if (isIpcError(err, 'IPC_SOCKET_PATH_TOO_LONG')) {
      findings.push({ check: 'path', severity: 'critical', message: e.message, fix: 'choose a shorter socketPath: its real path, links resolved, must fit too' })
    } else if (isIpcError(err, 'IPC_SOCKET_PATH_ACCESS')) {
      findings.push({ check: 'access', severity: 'critical', message: e.message, fix: 'run the doctor as root or as a user that may search every folder above the socket' })
    } else {
      const at = e.path ?? socketPath
      const st = lstatOrUndefined(at)
      const check = !st || st.isDirectory() || st.isSymbolicLink() ? 'folder' : 'socket'
      findings.push({ check, severity: 'critical', message: `${e.message}${isIpcError(err) ? '' : ` (${(err as NodeJS.ErrnoException).code ?? 'error'})`}`, fix: refusalFix(at, e.owner, trust) })
    }
    return undefined
  }
  if ('missing' in entry) {
    const folder = checkFolderChainQuiet(socketPath, trust)
    if (folder !== undefined && path.join(folder, path.basename(socketPath)) === entry.missing) {
      findings.push({ check: 'socket', severity: 'critical', message: `${socketPath}: ENOENT (no socket${entry.missing === socketPath ? '' : ` at ${entry.missing}`})`, fix: 'no socket: is the server running (systemctl status, its log)? Is socketPath the same on both sides?' })
    } else {
      findings.push({ check: 'folder', severity: 'critical', message: `${entry.missing}: ENOENT, on the way to ${socketPath}`, fix: 'the socket folder is missing: start the server (it creates the folder), or check socketPath' })
    }
    return undefined
  }
  const through = entry.realPath === socketPath ? '' : ` (${entry.realPath}, through links)`
  findings.push({ check: 'folder', severity: 'ok', message: `every folder and link on the way to ${socketPath}${through} is owned by ${trustedNames(trust)} and writable by nobody else` })
  return entry
}

/** The socket's real folder, or undefined when a folder is missing (the walk already passed). */
function checkFolderChainQuiet(socketPath: string, trust: ReadonlySet<number>): string | undefined {
  try {
    const r = checkFolderChain(socketPath, SUBJECT, trust)
    return typeof r === 'string' ? r : undefined
  } catch {
    return undefined
  }
}

/**
 * After connecting, before a byte is written: the kernel's credentials of the process that
 * listens must be a trusted uid (the client's check of the server process). Not ok: the caller
 * closes the connection unused.
 */
export function checkServerProcess(socket: net.Socket, socketPath: string, trust: ReadonlySet<number>): Finding {
  let creds: { pid: number; uid: number; gid: number }
  try {
    creds = getPeerIds(socket)
  } catch (err) {
    return {
      check: 'process',
      severity: 'critical',
      message: `cannot read which uid runs the server on ${socketPath}, so nothing was sent: ${(err as Error).message}`,
      fix: 'the doctor checks the server process from the kernel before asking it, as the client does: reinstall @naaccord/ipc-server with its dependency @naaccord/ipc-peercred',
    }
  }
  if (!trust.has(creds.uid)) {
    return {
      check: 'process',
      severity: 'critical',
      message: `the server on ${socketPath} runs as uid ${creds.uid} (pid ${creds.pid}), not ${trustedNames(trust)}; nothing was sent`,
      fix:
        `if uid ${creds.uid} is legitimately the services user, name it: --owner ${creds.uid}; ` +
        `otherwise another user's process holds the socket (a passed descriptor, a moved socket): find out which (ps -p ${creds.pid}, ss -xlp)`,
    }
  }
  return { check: 'process', severity: 'ok', message: `the server process (pid ${creds.pid}) runs as uid ${creds.uid}, gid ${creds.gid}` }
}

