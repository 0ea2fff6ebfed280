import type { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import { addonOverride, getPeerIds, type PeerIds } from '@naaccord/ipc-peercred'
import { describeProcess, readProcessStartTime, type Logger } from '@naaccord/ipc-shared'
import type { ResolvedServerOptions } from './options.js'
import { setPeer, type Peer } from './peer.js'
import { publishRefused } from './server-events.js'

const REFUSAL_LINGER_MS = 1000
// A refused peer that reconnects in a loop must not flood the log (or the event loop with procfs reads).
const REFUSALS_LOGGED_PER_SECOND = 10

/** At most `perSecond` log lines a second; counts what it held back, reported with the next line. */
function logBudget(perSecond: number): { take(): boolean; suppressed(): number | undefined } {
  let windowStart = 0
  let used = 0
  let held = 0
  return {
    take() {
      const now = Date.now()
      if (now - windowStart >= 1000) {
        windowStart = now
        used = 0
      }
      if (used < perSecond) {
        used++
        return true
      }
      held++
      return false
    },
    suppressed() {
      const n = held
      held = 0
      return n === 0 ? undefined : n
    },
  }
}
const discard = () => {}
const REFUSAL_BODY = 'peer not allowed by the naaccord-ipc allow policy\n'
const REFUSAL = Buffer.from(
  'HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n' +
    `Content-Length: ${Buffer.byteLength(REFUSAL_BODY)}\r\n\r\n${REFUSAL_BODY}`,
)

/**
 * The peer entry of an admitted Unix socket connection. The start time costs a procfs read
 * (about two thirds of the check's cost when read at accept), so it is read on the first use of
 * `req.peer.startTime`, once per connection, and never for a peer that is refused.
 */
function admittedPeer(ids: PeerIds): Peer {
  let startTime: number | undefined | null = null
  return {
    transport: 'unix',
    pid: ids.pid,
    uid: ids.uid,
    gid: ids.gid,
    get startTime(): number | undefined {
      if (startTime === null) startTime = ids.pid > 0 ? readProcessStartTime(ids.pid) : undefined
      return startTime
    },
  }
}

/** Decides, once per accepted connection, whether it may reach the HTTP (or TLS) server. */
export type ConnectionGate = (socket: Socket) => boolean

/**
 * Put `gate` in front of the server's own connection handling: Node's http/https servers attach
 * their parser (or TLS layer) in their 'connection' listeners (https: the HTTP parser in its
 * 'secureConnection' listener), so those are moved behind the gate and called only for admitted
 * sockets. A refused socket is never read by them.
 */
export function gateConnections(server: EventEmitter, gate: ConnectionGate, event: 'connection' | 'secureConnection' = 'connection'): void {
  const inner = server.listeners(event) as Array<(socket: Socket) => void>
  server.removeAllListeners(event)
  server.on(event, function (this: EventEmitter, socket: Socket) {
    if (!gate(socket)) return
    for (const listener of inner) listener.call(this, socket)
  })
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
  const override = addonOverride()
  if (override) {
    log.warn({ addon: override }, 'NAACCORD_PEERCRED_ADDON is set: the peer check uses this addon file instead of the packaged one (a test hook; never set it in production)')
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
      setPeer(socket, admittedPeer(creds))
      return true
    }
    publishRefused('allow_policy', socket)
    if (log.isLevelEnabled('warn') && refusalLog.take()) {
      // procfs is read for a refused peer only to write this (rate-limited) line.
      const proc = describeProcess(creds.pid)
      log.warn(
        { peer: { uid: creds.uid, gid: creds.gid, pid: creds.pid, exe: proc.exe, comm: proc.comm }, allow, suppressed: refusalLog.suppressed() },
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
