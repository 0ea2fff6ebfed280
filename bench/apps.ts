import { randomUUID } from 'node:crypto'
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

/** One report, as the example services app keeps them: what every whole-hop request fetches. */
export const REPORT = Object.freeze({ id: '42', site: 'site-a', cohort: 'hiv-2024', patients: 1204, createdAt: '2026-01-15T09:00:00.000Z' })

/**
 * The services app of the whole hop, shaped like examples/services: `GET /reports/:id` answers a
 * report as JSON. The same instance serves every way of calling it.
 */
export function createServicesApp(): Express {
  const app = express()
  app.disable('x-powered-by')
  app.get('/reports/:id', (req, res) => {
    res.json({ ...REPORT, id: req.params.id })
  })
  return app
}

/** How a web app fetches one report from services, carrying the request id. */
export type FetchReport = (id: string, requestId: string) => Promise<unknown>

const VALID_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * The public web app of the whole hop, shaped like examples/web: takes or makes a request id,
 * forwards `GET /api/reports/:id` to services through `fetchReport`, answers its JSON (502 on
 * failure). Only `fetchReport` differs between the hops.
 */
export function createWebApp(fetchReport: FetchReport): Express {
  const app = express()
  app.disable('x-powered-by')
  app.get('/api/reports/:id', async (req, res) => {
    const given = req.get('x-request-id')
    const requestId = given && VALID_ID.test(given) ? given : randomUUID()
    res.setHeader('x-request-id', requestId)
    try {
      res.json(await fetchReport(req.params.id, requestId))
    } catch (err) {
      res.status(502).json({ error: 'services_error', message: (err as Error).message })
    }
  })
  return app
}
