import fs from 'node:fs'
import path from 'node:path'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import { createClient } from '@naaccord/ipc-client'
import { flushLogger, serve, type IpcServer } from '@naaccord/ipc-server'
import { createServicesApp } from '../examples/services/app.js'
import { createWebApp } from '../examples/web/app.js'
import { deferCleanup, exited, freePort, memoryLogger, ROOT, tempDir, waitForLine } from './helpers.js'
import { spawn } from 'node:child_process'

const defer = deferCleanup()

describe('services app routes (supertest)', () => {
  const app = createServicesApp()

  it('GET /reports/:id answers the report, 404 for an unknown id', async () => {
    const ok = await request(app).get('/reports/1').expect(200)
    expect(ok.body).toMatchObject({ id: '1', site: 'site-a', patients: 1204 })
    expect(ok.headers['x-powered-by']).toBeDefined() // plain Express here; serve() turns it off
    await request(app).get('/reports/999').expect(404, { error: 'not_found', message: 'no report 999' })
  })

  it('POST /reports validates input: 422 with every problem, 201 with a location', async () => {
    const bad = await request(app).post('/reports').send({ site: 'Site A', patients: -1, extra: true }).expect(422)
    expect(bad.body.error).toBe('invalid_report')
    expect(bad.body.errors).toHaveLength(4)
    const good = await request(app).post('/reports').send({ site: 'site-c', cohort: 'hiv-2025', patients: 42 }).expect(201)
    expect(good.headers.location).toBe(`/reports/${good.body.id}`)
    await request(app).get(`/reports/${good.body.id}`).expect(200)
  })

  it('DELETE is limited to the admin peer (no peer over plain supertest -> 403)', async () => {
    await request(app).delete('/reports/1').expect(403)
  })
})

describe('the example pair end to end', () => {
  async function pair() {
    const t = tempDir()
    defer(t.cleanup)
    const socketPath = path.join(t.dir, 'service.sock')
    const services = memoryLogger()
    const ipc: IpcServer = await serve(createServicesApp(), { socketPath, logger: services.logger, handleSignals: false })
    const client = createClient({ socketPath, logger: false, retries: 0 })
    const web = createWebApp(client, memoryLogger().logger)
    defer(() => client.destroy())
    defer(() => ipc.close())
    return { ipc, web, services }
  }

  it('HTTP -> web -> socket -> services, with the request id carried through', async () => {
    const { web, services } = await pair()
    const res = await request(web).get('/api/reports/2').set('x-request-id', 'e2e-42').expect(200)
    expect(res.body).toMatchObject({ id: '2', site: 'site-b' })
    expect(res.headers['x-request-id']).toBe('e2e-42')
    // The request log is written in batches: flushLogger() writes what it holds.
    await flushLogger(services.logger)
    const line = services.lines.find((l) => l.msg === 'request' && l.reqId === 'e2e-42')
    expect(line).toMatchObject({ method: 'GET', path: '/reports/2', status: 200 })
    const who = await request(web).get('/api/whoami').expect(200)
    expect(who.body.peer).toMatchObject({ transport: 'unix', pid: process.pid, uid: process.getuid!() })
  })

  it('passes 4xx through, and answers 503 when services are down', async () => {
    const { web, ipc } = await pair()
    await request(web).get('/api/reports/404').expect(404)
    const bad = await request(web).post('/api/reports').send({ site: '' }).expect(422)
    expect(bad.body.errors.length).toBeGreaterThan(0)
    await ipc.close()
    const down = await request(web).get('/api/reports/1').expect(503)
    expect(down.body).toMatchObject({ error: 'services_unavailable', code: 'IPC_SERVICE_UNAVAILABLE' })
  })

  it('`pnpm start` runs both processes (services under the supervisor): curl-able on the web port, a SIGHUP reload answers every call 200, clean stop on SIGTERM', async () => {
    const t = tempDir()
    defer(t.cleanup)
    const socketPath = path.join(t.dir, 'service.sock')
    const port = await freePort()
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@naaccord/source', path.join(ROOT, 'examples', 'start.ts')], {
      cwd: ROOT,
      env: { ...process.env, NAACCORD_SOCKET_PATH: socketPath, NAACCORD_WEB_PORT: String(port), NAACCORD_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    defer(async () => {
      child.kill('SIGKILL')
      await exited(child)
    })
    const first = waitForLine(child, 'naaccord-ipc example: socket')
    expect(await first).toContain(socketPath)
    const hupLine = waitForLine(child, 'kill -HUP ', 20_000)
    await waitForLine(child, 'Ready.', 20_000)
    const res = await fetch(`http://127.0.0.1:${port}/api/reports/1`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ id: '1' })
    expect(fs.lstatSync(socketPath).mode & 0o777).toBe(0o600)
    // A monitoring check built on doctor is quiet on the default pair: exit 0, every finding ok.
    const doctor = spawn(process.execPath, ['--import', 'tsx', '--conditions=@naaccord/source', path.join(ROOT, 'packages', 'cli', 'src', 'cli.ts'), 'doctor', '--socket', socketPath, '--json'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let doctorOut = ''
    doctor.stdout!.on('data', (d: Buffer) => (doctorOut += d.toString()))
    const doctorCode = await new Promise<number | null>((r) => doctor.once('exit', r))
    const notOk = (JSON.parse(doctorOut) as { findings: Array<{ severity: string }> }).findings.filter((f) => f.severity !== 'ok')
    expect(notOk).toEqual([])
    expect(doctorCode).toBe(0)
    // The services server runs under the supervisor: SIGHUP replaces it while calls go on, and
    // every call through the web server is answered 200.
    const hup = await hupLine
    const supervisorPid = Number(/kill -HUP (\d+)/.exec(hup)![1])
    const probe = createClient({ socketPath, logger: false })
    defer(() => probe.destroy())
    const before = (await probe.get<{ pid: number }>('/healthz')).pid
    const statuses = new Map<number, number>()
    let stop = false
    const loop = (async () => {
      while (!stop) {
        const r = await fetch(`http://127.0.0.1:${port}/api/reports/1`)
        await r.arrayBuffer()
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
      }
    })()
    process.kill(supervisorPid, 'SIGHUP')
    const until = Date.now() + 30_000
    let after = before
    while (after === before && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100))
      after = (await probe.get<{ pid: number }>('/healthz')).pid
    }
    await new Promise((r) => setTimeout(r, 300))
    stop = true
    await loop
    expect(after).not.toBe(before)
    expect([...statuses.keys()]).toEqual([200])
    expect(statuses.get(200)).toBeGreaterThan(5)
    child.kill('SIGTERM')
    await exited(child)
    expect(fs.existsSync(socketPath)).toBe(false)
  })
})
