import type { Socket } from 'node:net'
import { getPeerIds, peerPidfdAvailable, readPeerProcess, type PeerIds } from '@naaccord/ipc-peercred'
import { describeProcess, readProcessStartTime, type Logger } from '@naaccord/ipc-shared'
import { logBudget } from './log-budget.js'
import type { ResolvedServerOptions } from '../options.js'
import { setPeer, type Peer } from './peer.js'
import { publishRefused } from '../server-events.js'

const REFUSAL_LINGER_MS = 1000
// A refused peer that reconnects in a loop must not flood the log (or the event loop with procfs reads).
const REFUSALS_LOGGED_PER_SECOND = 10

const discard = () => {}
const REFUSAL_BODY = 'peer not allowed by the naaccord-ipc allow policy\n'
const REFUSAL = Buffer.from(
  'HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n' +
    `Content-Length: ${Buffer.byteLength(REFUSAL_BODY)}\r\n\r\n${REFUSAL_BODY}`,
)

/**
 * The peer entry of an admitted Unix socket connection. The start time costs a procfs read
 * (about two thirds of the check's cost when read at accept), so it is read on the first use of
 * `req.peer.startTime` (or `req.peer.gone`), once per connection, and never for a peer that is
 * refused. Where SO_PEERPIDFD works (`pidfd: true`) that read is checked against a pidfd for the
 * connecting process, taken and closed within the read: a process that has exited is reported
 * `gone`, never the one that got its pid (see readPeerProcess). Nothing is held per connection.
 */
function admittedPeer(ids: PeerIds, socket: Socket): Peer {
  let facts: { startTime: number | undefined; gone: boolean | undefined } | undefined
  const read = () => {
    if (facts === undefined) {
      const found = readPeerProcess(socket, ids.pid, readProcessStartTime)
      facts = { startTime: found.value, gone: found.gone }
    }
    return facts
  }
  return {
    transport: 'unix',
    pid: ids.pid,
    uid: ids.uid,
    gid: ids.gid,
    pidfd: peerPidfdAvailable(),
    get startTime(): number | undefined {
      return read().startTime
    },
    get gone(): boolean | undefined {
      return read().gone
    },
  }
}

/** Decides, once per accepted connection, whether it may go on to TLS or HTTP; refused sockets are dealt with by the gate. */
export type ConnectionGate = (socket: Socket) => boolean

/** The gate for TCP listeners: nothing to ask the kernel; the remote address is noted for req.peer. */
export const tcpGate: ConnectionGate = (socket) => {
  setPeer(socket, { transport: 'tcp', remoteAddress: socket.remoteAddress })
  return true
}

/**
 * The Unix peer of an admitted TLS connection, for req.peer: the TLS socket is a new object
 * over the same descriptor, so its credentials are read once more (same answer: the kernel
 * records them at connect(2)). Returns undefined, failing closed, when they cannot be read.
 */
export function unixPeerOf(socket: Socket, allow: ResolvedServerOptions['allow'], log: Logger): Peer | undefined {
  if (allow === false) return { transport: 'unix' }
  try {
    return admittedPeer(getPeerIds(socket), socket)
  } catch (err) {
    log.error({ err }, 'cannot read peer credentials; closing the connection')
    return undefined
  }
}

/**
 * The gate for Unix socket listeners: read the peer's uid/gid/pid from the kernel (SO_PEERCRED)
 * once per connection, before a byte of HTTP is parsed, and refuse peers that the `allow` policy
 * does not name. A refused plaintext peer gets a fixed 403 and the connection is closed; a
 * refused TLS peer is disconnected before the handshake (it could not read a plaintext 403).
 */
export function createPeerCheck(allow: ResolvedServerOptions['allow'], log: Logger, tls: boolean): ConnectionGate {
  if (allow === false) {
    return (socket) => {
      setPeer(socket, { transport: 'unix' })
      return true
    }
  }
  const refusalLog = logBudget(REFUSALS_LOGGED_PER_SECOND)
  const uids = new Set(allow.uids)
  const gids = new Set(allow.gids)
  return (socket) => {
    let creds
    try {
      // The kernel's uid/gid/pid only: nothing from procfs before the decision.
      creds = getPeerIds(socket)
    } catch (err) {
      // Fail closed: a connection whose peer we cannot read is not served.
      log.error({ err }, 'cannot read peer credentials; closing the connection')
      publishRefused('credentials_unreadable', socket)
      socket.destroy()
      return false
    }
    if (uids.has(creds.uid) || gids.has(creds.gid)) {
      setPeer(socket, admittedPeer(creds, socket))
      return true
    }
    publishRefused('allow_policy', socket)
    if (log.isLevelEnabled('warn') && refusalLog.take()) {
      // procfs is read for a refused peer only to write this (rate-limited) line, and (pidfd)
      // only while the connecting process is proven alive: never another process's exe.
      const proc = readPeerProcess(socket, creds.pid, describeProcess)
      log.warn(
        {
          peer: { uid: creds.uid, gid: creds.gid, pid: creds.pid, exe: proc.value?.exe, comm: proc.value?.comm, ...(proc.gone ? { gone: true } : {}) },
          allow,
          suppressed: refusalLog.suppressed(),
        },
        `refused connection from uid ${creds.uid} gid ${creds.gid} pid ${creds.pid}: not in the allow policy`,
      )
    }
    if (tls) {
      socket.on('error', discard)
      socket.destroy()
    } else {
      // Nothing of the request is parsed or handed on: incoming bytes are discarded unread (a
      // Unix socket closed with unread data makes the peer's read fail with ECONNRESET before it
      // sees the 403), the fixed answer is sent, and the connection is cut soon after regardless.
      // The peer may already have hung up: a write error must not become an unhandled 'error'.
      socket.on('error', discard)
      socket.on('data', discard)
      socket.end(REFUSAL)
      setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref()
    }
    return false
  }
}
