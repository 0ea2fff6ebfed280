import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * Watch the request body as it is received (Content-Length or chunked): once more than
 * `maxBodyBytes` arrived, call `onExceeded` once and hand nothing more to the app.
 *
 * Every byte of a Readable enters through its `push()` (the implementer's side of the stream
 * API, https://nodejs.org/api/stream.html#readablepushchunk-encoding): Node's HTTP parser pushes
 * each body chunk and then `null` (lib/_http_common.js, parserOnBody, parserOnMessageComplete).
 * The wrapper sits on the request object itself, as on-headers (used by morgan and compression)
 * wraps `res.writeHead`: the documented alternative, a subclass handed to
 * `http.createServer({ IncomingMessage })`, does not survive Express, which replaces the
 * prototype of every `req` with its own (`Object.setPrototypeOf(req, app.request)` in
 * app.handle; header-policy.test.ts checks that this still holds). test/network.test.ts pins
 * the behaviour (a chunked body past the limit: 413, and the app never sees the rest).
 *
 * @example
 * limitBody(req, 1024, () => res.writeHead(413).end())
 */
export function limitBody(req: IncomingMessage, maxBodyBytes: number, onExceeded: () => void): void {
  const push = req.push
  let received = 0
  let exceeded = false
  req.push = function (this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding): boolean {
    // Dropped, not buffered: the rest of an oversized body (and its end: the app must not take
    // a cut body for a whole one) is read and discarded until the connection closes.
    if (exceeded) return true
    if (chunk === null || chunk === undefined) return Reflect.apply(push, this, [chunk, encoding]) as boolean
    received += (chunk as Buffer).length
    if (received > maxBodyBytes) {
      exceeded = true
      onExceeded()
      return true
    }
    return Reflect.apply(push, this, [chunk, encoding]) as boolean
  }
}

function tooLarge(res: ServerResponse, maxBodyBytes: number): void {
  res.writeHead(413, { 'content-type': 'application/json', connection: 'close' })
  res.end(JSON.stringify({ error: 'payload_too_large', limit: maxBodyBytes }))
}

/**
 * Refuse a body declared larger than `maxBodyBytes` before the app sees the request (413), and
 * cut a chunked one as soon as it passes the limit, handing the app nothing beyond it.
 *
 * @returns false when the request was answered here (the app must not be called)
 * @example
 * if (admitBody(req, res, 1024 * 1024)) app(req, res)
 */
export function admitBody(req: IncomingMessage, res: ServerResponse, maxBodyBytes: number): boolean {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > maxBodyBytes) {
    tooLarge(res, maxBodyBytes)
    return false
  }
  // A Content-Length body is delivered by Node's parser to exactly its declared length, which
  // was just checked; only a chunked body (Transfer-Encoding) can grow past the limit unseen,
  // so only that one is counted: no per-request wrapper for GETs and sized bodies.
  if (req.headers['transfer-encoding'] === undefined) return true
  limitBody(req, maxBodyBytes, () => {
    // Answered by us when the app has not answered yet; once the answer is out (or at once
    // when the app had answered), the request is aborted: the app's body reader sees
    // 'aborted' and the connection closes. The rest of the body never reaches the app.
    if (res.headersSent) req.destroy()
    else {
      res.once('finish', () => req.destroy())
      tooLarge(res, maxBodyBytes)
    }
  })
  return true
}
