import type { IncomingMessage, ServerResponse } from 'node:http'
import express, { type Express } from 'express'

/** Every server answers GET / with this small JSON document. */
export const PAYLOAD = Object.freeze({ ok: true, service: 'bench' })

const BODY = JSON.stringify(PAYLOAD)
const HEADERS = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(BODY)) }

/** The bare `node:http` listener: no framework, no wrapping, the floor every other row is compared to. */
export function bareHandler(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, HEADERS)
  res.end(BODY)
}

/**
 * The Express app of every Express row, one instance shared by all of them ("the same Express
 * app"). x-powered-by is off from the start because serve() turns it off; the bare-Express row
 * then differs from serve() only in what serve() wraps around the app.
 */
export function createExpressApp(): Express {
  const app = express()
  app.disable('x-powered-by')
  app.get('/', (_req, res) => {
    res.json(PAYLOAD)
  })
  return app
}
