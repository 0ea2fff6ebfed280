import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { Logger } from '@naaccord/ipc-shared'
import { createConnectionTracker, type BudgetRefusal, type ConnectionTracker } from './connection-tracker.js'
import { logBudget } from './log-budget.js'
import type { ResolvedServerOptions } from '../options.js'
import { unixPeerOf, type ConnectionGate } from './peer-check.js'
import { publishRefused } from '../server-events.js'
import { createTlsStage, type TlsStage } from './tls-context.js'

export interface AcceptorOptions {
  /** The listener's gate (Unix: the peer check; TCP: note the address). */
  gate: ConnectionGate
  transport: 'unix' | 'tcp'
  /** What the listener is called in the log (its TCP address is known only once it listens). */
  where: () => string
  opts: ResolvedServerOptions
  log: Logger
  /** Where a socket past every check goes: the one HTTP server. */
  toHttp: (socket: Socket) => void
}

/** What one listener does with the raw sockets it accepts, and what it holds. */
export interface Acceptor {
  /** Hand every socket the listener accepts to this. */
  readonly onConnection: (socket: Socket) => void
  /** The listener's own connection budget. */
  readonly tracker: ConnectionTracker
  /** The listener's TLS step, with TLS. */
  readonly tlsStage: TlsStage | undefined
}

const BUDGET_LOG_LINES_PER_SECOND = 1

/**
 * The accept path of one listener: gate, count against the listener's own budget, (TLS), HTTP.
 * The gate decides first (a `getsockopt`, no I/O): a socket it admits and no TLS follows is
 * counted as authenticated; one it refused (a 403 on its way) or that still has a handshake to
 * make is counted as unauthenticated, then moved once the handshake and the certificate policy
 * passed. A socket beyond its budget is destroyed at once, the refusal published
 * (`max_connections`, `max_unauthenticated`) and logged (one line a second at most).
 *
 * @example
 * const a = createAcceptor({ gate, transport: 'unix', where: () => socketPath, opts, log, toHttp })
 * netServer.on('connection', a.onConnection)
 */
export function createAcceptor({ gate, transport, where, opts, log, toHttp }: AcceptorOptions): Acceptor {
  const tracker = createConnectionTracker(opts)
  const refusals = logBudget(BUDGET_LOG_LINES_PER_SECOND)
  const noteRefusal = (socket: Socket, reason: Exclude<BudgetRefusal, 'closing'>) => {
    publishRefused(reason, socket)
    if (!log.isLevelEnabled('warn') || !refusals.take()) return
    const limit = reason === 'max_connections' ? `maxConnections ${opts.maxConnections}` : `maxUnauthenticated ${opts.maxUnauthenticated}`
    log.warn(
      { listener: where(), reason, open: tracker.size, unauthenticated: tracker.unauthenticated, suppressed: refusals.suppressed() },
      `listener full (${limit}): new connections are closed as soon as accepted`,
    )
  }
  const admit = (socket: Socket, authenticated: boolean): boolean => {
    const refused = tracker.admit(socket, authenticated)
    if (refused === undefined) return true
    if (refused !== 'closing') noteRefusal(socket, refused)
    return false
  }

  if (!opts.tls) {
    const onConnection = (socket: Socket) => {
      // Until HTTP owns it, a reset must not become an uncaught 'error'.
      socket.on('error', discard)
      // A refused peer (its 403 and linger are the gate's) stays unauthenticated until it closes.
      const passed = gate(socket)
      if (socket.destroyed) return
      if (admit(socket, passed) && passed) toHttp(socket)
    }
    return { onConnection, tracker, tlsStage: undefined }
  }

  const allow = opts.allow
  const tlsStage = createTlsStage({
    tls: opts.tls,
    handshakeTimeoutMs: opts.limits.handshakeTimeoutMs,
    log,
    peerOf: (s: TLSSocket) => (transport === 'unix' ? unixPeerOf(s, allow, log) : { transport: 'tcp', remoteAddress: s.remoteAddress }),
    onSecure: (s, accepted) => {
      if (accepted !== undefined && tracker.authenticate(accepted)) {
        toHttp(s)
        return
      }
      // Cut meanwhile (shutdown), or a Node that no longer says which raw socket this is: fail closed.
      if (accepted === undefined) log.error('cannot find the accepted socket of a TLS connection (Node internals moved?); closing it')
      s.destroy()
    },
  })
  const onConnection = (socket: Socket) => {
    socket.on('error', discard)
    // A peer the gate refuses under TLS is destroyed by it, and never counted.
    if (gate(socket) && admit(socket, false)) tlsStage.accept(socket)
  }
  return { onConnection, tracker, tlsStage }
}

const discard = () => {}
