import express, { type Express, type NextFunction, type Request, type Response } from 'express'
import { randomUUID } from 'node:crypto'
import { isIpcError, type IpcClient } from '@naaccord/ipc-client'
import type { Logger } from '@naaccord/ipc-shared'

/**
 * Map an error from the services client to the public answer: each IpcError carries the status
 * a gateway should answer with (`statusCode`: 503 unavailable, 504 timeout, 502 for the rest,
 * the services' own 4xx passed through), so there is no table to keep here.
 */
export function publicError(err: unknown): { status: number; body: Record<string, unknown> } {
  if (isIpcError(err, 'IPC_HTTP_STATUS') && err.statusCode < 500) {
    return { status: err.statusCode, body: (err.body as Record<string, unknown> | undefined) ?? { error: 'error' } }
  }
  if (isIpcError(err)) return { status: err.statusCode, body: { error: LABELS[err.statusCode] ?? 'services_error', code: err.code } }
  return { status: 500, body: { error: 'internal_error' } }
}

const LABELS: Record<number, string> = { 503: 'services_unavailable', 504: 'services_timeout' }

/**
 * The public web app: forwards /api/* to the services server through the client, carries the
 * request id through, and answers with sensible statuses when services are down or slow.
 */
export function createWebApp(services: IpcClient, log: Logger): Express {
  const app = express()
  app.disable('x-powered-by')
  app.use(express.json({ limit: '100kb' }))
  app.use((req: Request, res: Response, next: NextFunction) => {
    const given = req.get('x-request-id')
    const id = given && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : randomUUID()
    res.locals.requestId = id
    res.setHeader('x-request-id', id)
    next()
  })
  const forward = (fn: (req: Request, headers: Record<string, string>) => Promise<unknown>, status = 200) =>
    async (req: Request, res: Response) => {
      try {
        const body = await fn(req, { 'x-request-id': res.locals.requestId as string })
        res.status(status).json(body)
      } catch (err) {
        const { status: code, body } = publicError(err)
        log.warn({ reqId: res.locals.requestId, code: (err as { code?: string }).code, err: (err as Error).message }, 'services call failed')
        res.status(code).json({ ...body, requestId: res.locals.requestId })
      }
    }

  app.get('/', (_req, res) => {
    res.type('text').send('naaccord-ipc example web server. Try: GET /api/reports, GET /api/reports/1, POST /api/reports, GET /api/whoami, GET /healthz\n')
  })
  app.get('/api/reports', forward((_req, headers) => services.get('/reports', { headers })))
  app.get('/api/reports/:id', forward((req, headers) => services.get(`/reports/${encodeURIComponent(String(req.params.id))}`, { headers })))
  app.post('/api/reports', forward((req, headers) => services.post('/reports', req.body, { headers }), 201))
  app.get('/api/whoami', forward((_req, headers) => services.get('/whoami', { headers })))
  app.get('/healthz', forward((_req, headers) => services.get('/healthz', { headers, retries: 0 }).then((s) => ({ web: 'ok', services: s }))))
  return app
}
