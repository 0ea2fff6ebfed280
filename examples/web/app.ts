import express, { type Express, type NextFunction, type Request, type Response } from 'express'
import { randomUUID } from 'node:crypto'
import type { IpcClient } from '@naaccord/ipc-client'
import { isIpcError, type Logger } from '@naaccord/ipc-shared'

/** Map an error from the services client to the public answer. */
export function publicError(err: unknown): { status: number; body: Record<string, unknown> } {
  if (isIpcError(err, 'IPC_HTTP_STATUS')) {
    const e = err as unknown as { status: number; body: unknown }
    // 4xx from services are the caller's problem and pass through; 5xx become 502.
    if (e.status >= 400 && e.status < 500) return { status: e.status, body: (e.body as Record<string, unknown>) ?? { error: 'error' } }
    return { status: 502, body: { error: 'services_error', code: err.code } }
  }
  if (isIpcError(err, 'IPC_SERVICE_UNAVAILABLE') || isIpcError(err, 'IPC_CONNECTION_LOST')) {
    return { status: 503, body: { error: 'services_unavailable', code: err.code } }
  }
  if (isIpcError(err, 'IPC_TIMEOUT')) return { status: 504, body: { error: 'services_timeout', code: err.code } }
  if (isIpcError(err)) return { status: 502, body: { error: 'services_refused', code: err.code } }
  return { status: 500, body: { error: 'internal_error' } }
}

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
