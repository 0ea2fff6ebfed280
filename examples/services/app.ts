import express, { type Express, type Request, type Response } from 'express'
import { requirePeer } from '@naaccord/ipc-server'

/** A cohort report as the services server keeps it (aggregate counts only, no patient rows). */
export interface Report {
  id: string
  site: string
  cohort: string
  patients: number
  createdAt: string
}

function seed(): Map<string, Report> {
  const reports = new Map<string, Report>()
  for (const [id, site, cohort, patients] of [
    ['1', 'site-a', 'hiv-2024', 1204],
    ['2', 'site-b', 'hiv-2024', 877],
    ['3', 'site-a', 'hcv-2023', 311],
  ] as const) {
    reports.set(id, { id, site, cohort, patients, createdAt: '2026-01-15T09:00:00.000Z' })
  }
  return reports
}

function validate(body: unknown): { ok: true; value: Omit<Report, 'id' | 'createdAt'> } | { ok: false; errors: string[] } {
  const errors: string[] = []
  const b = (body ?? {}) as Record<string, unknown>
  if (typeof b.site !== 'string' || !/^[a-z0-9-]{1,40}$/.test(b.site)) errors.push('site must be 1-40 lowercase letters, digits or dashes')
  if (typeof b.cohort !== 'string' || b.cohort.length === 0 || b.cohort.length > 80) errors.push('cohort must be a string of 1-80 characters')
  if (typeof b.patients !== 'number' || !Number.isInteger(b.patients) || b.patients < 0) errors.push('patients must be a whole number >= 0')
  const extra = Object.keys(b).filter((k) => !['site', 'cohort', 'patients'].includes(k))
  if (extra.length) errors.push(`unknown fields: ${extra.join(', ')}`)
  if (errors.length) return { ok: false, errors }
  return { ok: true, value: { site: b.site as string, cohort: b.cohort as string, patients: b.patients as number } }
}

/**
 * The internal services app: JSON routes for cohort reports. It knows nothing of sockets;
 * `serve()` binds it. `adminUid` limits DELETE to one peer uid (requirePeer).
 */
export function createServicesApp(options: { adminUid?: number } = {}): Express {
  const reports = seed()
  let nextId = reports.size + 1
  const app = express()
  app.use(express.json({ limit: '100kb' }))

  app.get('/reports', (_req: Request, res: Response) => {
    res.json({ reports: [...reports.values()] })
  })

  app.get('/reports/:id', (req: Request, res: Response) => {
    const report = reports.get(String(req.params.id))
    if (!report) return void res.status(404).json({ error: 'not_found', message: `no report ${req.params.id}` })
    res.json(report)
  })

  app.post('/reports', (req: Request, res: Response) => {
    const result = validate(req.body)
    if (!result.ok) return void res.status(422).json({ error: 'invalid_report', errors: result.errors })
    const report: Report = { id: String(nextId++), ...result.value, createdAt: new Date().toISOString() }
    reports.set(report.id, report)
    res.status(201).location(`/reports/${report.id}`).json(report)
  })

  app.delete('/reports/:id', requirePeer({ uids: [options.adminUid ?? process.getuid?.() ?? 0] }), (req: Request, res: Response) => {
    const existed = reports.delete(String(req.params.id))
    res.status(existed ? 204 : 404).end()
  })

  app.get('/whoami', (req: Request, res: Response) => {
    res.json({ peer: req.peer ?? null, requestId: req.headers['x-request-id'] })
  })

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'not_found' })
  })
  return app
}
