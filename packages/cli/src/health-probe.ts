import type { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { isIP } from 'node:net'
import net from 'node:net'
import tls from 'node:tls'

/** Where the probe connects: a socket path already checked by the caller, or a TCP host and port. */
export type ProbeTarget = { readonly path: string } | { readonly host: string; readonly port: number | undefined }

/** TLS with full verification (chain to `ca`, the name `servername`); there is no unverified mode. */
export interface ProbeTls {
  readonly ca: string
  readonly cert?: string | undefined
  readonly key?: string | undefined
  /** The name checked against the certificate; sent as SNI too when it is not an IP address (RFC 6066). */
  readonly servername: string
}

export interface ProbeOptions {
  readonly target: ProbeTarget
  readonly tls?: ProbeTls | undefined
  /** HEAD reads the status line only; GET reads the whole answer (at most 64 KiB). */
  readonly method: 'HEAD' | 'GET'
  /** The Host header. */
  readonly host: string
  /** The whole probe (connect, handshake, answer), ms. */
  readonly timeoutMs: number
  /**
   * Called once connected, before a byte is written (not even a TLS ClientHello): false ends the
   * probe with nothing sent (doctor's check of the listening process, from the kernel).
   */
  readonly admit?: (socket: net.Socket) => boolean
}

/** What the TLS handshake showed, once verified. */
export interface ProbeHandshake {
  readonly peer: X509Certificate
  readonly version: string
  readonly cipher: string
}

/** The server's answer, read as latin1 (so every byte of the status line shows, control bytes included). */
export interface ProbeAnswer {
  /** The first line, as sent. */
  readonly statusLine: string
  /** The status code; undefined when the answer is not HTTP. */
  readonly status: number | undefined
  /** The body (GET), decoded as UTF-8, chunked transfer decoded. */
  readonly body: string
}

export interface ProbeResult {
  /** False when `admit` refused the connection: nothing was sent. */
  readonly admitted: boolean
  readonly handshake?: ProbeHandshake
  readonly answer?: ProbeAnswer
  /** Why the probe stopped early (connect, TLS verification, no answer); the code says which. */
  readonly error?: NodeJS.ErrnoException
}

const MAX_ANSWER = 65_536

const failure = (message: string, code: string): NodeJS.ErrnoException => Object.assign(new Error(message), { code })

/**
 * The one `/healthz` probe of `naaccord-ipc doctor` and `check-tls`: connect, let the caller
 * check the connection before anything is written, verify TLS, send `HEAD` or `GET /healthz`
 * by hand and read the raw answer. Never throws: what went wrong is `error`, with what was
 * learnt before it (a handshake, then a refused client certificate, for instance).
 *
 * @example
 * const r = await probeHealth({ target: { path: realPath }, method: 'GET', host: 'localhost', timeoutMs: 3000 })
 * r.answer?.status // 200
 */
export async function probeHealth(o: ProbeOptions): Promise<ProbeResult> {
  const socket = 'path' in o.target ? net.connect(o.target.path) : net.connect({ host: o.target.host, port: o.target.port ?? 0 })
  let stream: net.Socket = socket
  let handshake: ProbeHandshake | undefined
  let phase = 'connection'
  const timer = setTimeout(() => stream.destroy(failure(`no ${phase} within ${o.timeoutMs} ms`, 'ETIMEDOUT')), o.timeoutMs)
  try {
    await once(socket, 'connect')
    if (o.admit && !o.admit(socket)) return { admitted: false }
    phase = 'answer'
    if (o.tls) {
      stream = secure(socket, o.tls)
      await once(stream, 'secureConnect')
      const t = stream as tls.TLSSocket
      handshake = { peer: t.getPeerX509Certificate()!, version: t.getProtocol() ?? '', cipher: t.getCipher().standardName }
    }
    const answer = await exchange(stream, o)
    return { admitted: true, ...(handshake ? { handshake } : {}), answer }
  } catch (error) {
    return { admitted: true, ...(handshake ? { handshake } : {}), error: error as NodeJS.ErrnoException }
  } finally {
    clearTimeout(timer)
    stream.destroy()
    socket.destroy()
  }
}

/** TLS over the connected socket; verification stays on (rejectUnauthorized is Node's default and is set here by name). */
function secure(socket: net.Socket, t: ProbeTls): tls.TLSSocket {
  const stream = tls.connect({
    socket,
    servername: isIP(t.servername) === 0 ? t.servername : undefined, // SNI carries names only (RFC 6066)
    ca: t.ca,
    cert: t.cert,
    key: t.key,
    rejectUnauthorized: true,
    checkServerIdentity: (_host, c) => tls.checkServerIdentity(t.servername, c),
    minVersion: 'TLSv1.2',
  })
  // An error of the socket under TLS is the TLS socket's too; keep it from being unhandled.
  socket.on('error', () => {})
  return stream
}

/** Write the request, then read until the answer is complete (or the server closes). */
function exchange(stream: net.Socket, o: ProbeOptions): Promise<ProbeAnswer> {
  return new Promise((resolve, reject) => {
    let raw = ''
    const done = (answer: ProbeAnswer | undefined) => {
      stream.removeAllListeners('data')
      if (answer) resolve(answer)
      else reject(failure('connection closed without an answer', 'ECONNRESET'))
    }
    stream.on('data', (d: Buffer) => {
      raw += d.toString('latin1')
      if (isComplete(raw, o.method)) done(parseAnswer(raw))
    })
    stream.once('error', reject)
    stream.once('close', () => done(raw ? parseAnswer(raw) : undefined))
    stream.write(`${o.method} /healthz HTTP/1.1\r\nHost: ${o.host}\r\nConnection: close\r\n\r\n`)
  })
}

/** HEAD: the status line has come. GET: the body is whole (Content-Length, the last chunk) or the limit is reached. */
function isComplete(raw: string, method: ProbeOptions['method']): boolean {
  if (method === 'HEAD') return raw.includes('\r\n')
  if (raw.length >= MAX_ANSWER) return true
  const end = raw.indexOf('\r\n\r\n')
  if (end === -1) return false
  const head = raw.slice(0, end)
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)
  if (length) return raw.length - end - 4 >= Number(length[1])
  return /\r\ntransfer-encoding:[^\r]*chunked/i.test(head) && raw.endsWith('0\r\n\r\n')
}

function parseAnswer(raw: string): ProbeAnswer {
  const eol = raw.indexOf('\r\n')
  const statusLine = eol === -1 ? raw : raw.slice(0, eol)
  const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine)
  const end = raw.indexOf('\r\n\r\n')
  const head = end === -1 ? raw : raw.slice(0, end)
  let body = end === -1 ? '' : raw.slice(end + 4)
  if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) body = dechunk(body)
  return { statusLine, status: status ? Number(status[1]) : undefined, body: Buffer.from(body, 'latin1').toString('utf8').slice(0, MAX_ANSWER) }
}

/** The data of a chunked body (RFC 9112 section 7.1); extensions and trailers ignored. */
function dechunk(body: string): string {
  let out = ''
  let at = 0
  for (;;) {
    const eol = body.indexOf('\r\n', at)
    const size = eol === -1 ? NaN : Number.parseInt(body.slice(at, eol), 16)
    if (!(size > 0)) return out
    out += body.slice(eol + 2, eol + 2 + size)
    at = eol + 2 + size + 2
  }
}
