// deploy/docker/ on a real Docker daemon (Debian's docker.io 20.10, started here with
// --iptables=false --bridge=none unless one runs) and docker-compose 1.29: the image built from the
// Dockerfile's runtime stage as users get it, its build stage replaced by the staged artifacts
// (deploy/docker/stage.sh outside the image: the build cannot reach the registry here); the
// compose file as-is, plus an override that only adds the test's ledger folder. Shows a request
// through the web container, 20 reloads (SIGHUP to the supervisor) under load with nothing failed
// or executed twice, `restart services` counted, and a third uid refused.
// Root only, with docker.io, docker-compose and the cached root file system; skips otherwise.
import { execFileSync } from 'node:child_process'
import { chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { COMPOSE, DOCKER, dockerSkipReason, ensureDaemon, must, run, type Daemon } from './docker-daemon.js'
import { load, type Outcome } from './load-loop.js'
import { freePort, ROOT } from './helpers.js'

const skip = dockerSkipReason()
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'systemd')
const DOCKERFILE = path.join(ROOT, 'deploy', 'docker', 'Dockerfile')
const COMPOSE_FILE = path.join(ROOT, 'deploy', 'docker', 'docker-compose.yml')
const IMAGE = 'naaccord-ipc'

/** The user's Dockerfile with its build stage replaced by the staged folder: the runtime stage is byte for byte theirs. */
export function testDockerfile(): string {
  const text = readFileSync(DOCKERFILE, 'utf8')
  const at = text.indexOf('# ---- runtime stage')
  if (at < 0) throw new Error('deploy/docker/Dockerfile has no "# ---- runtime stage" marker')
  return `FROM scratch AS build\nCOPY . /stage\n\n${text.slice(at)}`
}

/** Pack, stage (npm, no compiler) with the test apps as server.js, build the image. */
export async function buildImage(work: string): Promise<Record<string, number>> {
  const t0 = Date.now()
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'pack.mjs'), path.join(work, 'tarballs')], { stdio: 'ignore', timeout: 120_000 })
  const stage = path.join(work, 'stage')
  execFileSync(path.join(ROOT, 'deploy', 'docker', 'stage.sh'), [path.join(work, 'tarballs'), stage], { stdio: 'ignore', timeout: 120_000 })
  // The services app keeps a ledger of what it executed; the web app passes /items on.
  copyFileSync(path.join(FIXTURES, 'services-server.mjs'), path.join(stage, 'services', 'server.js'))
  copyFileSync(path.join(FIXTURES, 'web-server.mjs'), path.join(stage, 'web', 'server.js'))
  writeFileSync(path.join(work, 'Dockerfile'), testDockerfile())
  const t1 = Date.now()
  await must(path.join(ROOT, 'scripts', 'docker-base-image.sh'), [DOCKER], 120_000)
  const t2 = Date.now()
  await must(DOCKER, ['build', '-q', '-f', path.join(work, 'Dockerfile'), '-t', IMAGE, stage], 120_000)
  return { stageMs: t1 - t0, baseImageMs: t2 - t1, buildMs: Date.now() - t2 }
}

export function summarize(outcomes: Outcome[], executed: Map<string, number>, tag: string) {
  const mine = outcomes.filter((o) => o.id.startsWith(`${tag}-`))
  const failed = mine.filter((o) => !o.ok)
  return {
    requests: mine.length,
    failed: failed.length,
    failedExecuted: failed.filter((o) => executed.has(`${o.method} ${o.id}`)).length,
    executedTwice: [...executed].filter(([k, n]) => k.includes(` ${tag}-`) && n > 1).length,
    okNotExecuted: mine.filter((o) => o.ok && !executed.has(`${o.method} ${o.id}`)).length,
    servedByPids: new Set(mine.filter((o) => o.ok).map((o) => o.pid)).size,
    maxMs: Math.max(0, ...mine.map((o) => o.ms)),
    errors: [...new Set(failed.map((o) => o.error))].slice(0, 4),
  }
}

export function readLedger(file: string): Map<string, number> {
  const counts = new Map<string, number>()
  let text = ''
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return counts
  }
  for (const line of text.split('\n')) {
    const [method, id] = line.split(' ')
    if (method && id) counts.set(`${method} ${id}`, (counts.get(`${method} ${id}`) ?? 0) + 1)
  }
  return counts
}

let daemon: Daemon | undefined
let work: string
const timings: Record<string, unknown> = {}

beforeAll(async () => {
  if (skip) return
  work = mkdtempSync(path.join(os.tmpdir(), 'naaccord-docker-'))
  daemon = await ensureDaemon(path.join(work, 'dockerd.log'))
  timings.daemonStartedHere = daemon.started
  Object.assign(timings, await buildImage(work))
}, 300_000)

afterAll(async () => {
  await daemon?.stop()
  if (work) rmSync(work, { recursive: true, force: true })
  if (!skip) console.log(`docker-real: ${JSON.stringify(timings)}`)
}, 60_000)

describe.skipIf(skip !== undefined)(`deploy/docker on a real Docker daemon${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let port: number
  const project = `naaccordtest${process.pid}`
  const ledgerFile = () => path.join(work, 'ledger', 'executed')
  const compose = (args: string[], timeoutMs = 60_000) =>
    must(COMPOSE, ['--no-ansi', '-p', project, '-f', COMPOSE_FILE, '-f', path.join(work, 'override.yml'), ...args], timeoutMs, { NAACCORD_WEB_PORT: String(port) })
  const base = () => `http://127.0.0.1:${port}`
  async function get(id: string): Promise<{ id?: string; pid?: number } | undefined> {
    try {
      const res = await fetch(`${base()}/items/${id}`, { signal: AbortSignal.timeout(5_000) })
      return res.status === 200 ? ((await res.json()) as { id?: string; pid?: number }) : undefined
    } catch {
      return undefined
    }
  }

  beforeAll(async () => {
    // The test's only addition to the compose file: a folder for the services app's ledger.
    mkdirSync(path.join(work, 'ledger'))
    chownSync(path.join(work, 'ledger'), 991, 991)
    writeFileSync(
      path.join(work, 'override.yml'),
      `services:\n  services:\n    environment:\n      STATE_DIRECTORY: /var/lib/naaccord-test\n    volumes: [ "${path.join(work, 'ledger')}:/var/lib/naaccord-test" ]\n`,
    )
    port = await freePort()
    const t = Date.now()
    await compose(['up', '-d', '--no-build'], 90_000)
    const until = Date.now() + 20_000
    while (Date.now() < until && (await get('up'))?.id !== 'up') await new Promise((r) => setTimeout(r, 200))
    timings.upMs = Date.now() - t
  }, 300_000)

  afterAll(async () => {
    if (work) {
      await run(COMPOSE, ['--no-ansi', '-p', project, '-f', COMPOSE_FILE, '-f', path.join(work, 'override.yml'), 'down', '-v', '-t', '5'], { timeoutMs: 60_000, env: { NAACCORD_WEB_PORT: String(port) } })
    }
  }, 90_000)

  it('a request through the web container reaches the services container over the shared socket', async () => {
    const first = await get('first')
    expect(first?.id).toBe('first')
    expect(readLedger(ledgerFile()).get('GET first')).toBe(1)
    const stat = await compose(['exec', '-T', 'services', 'stat', '-c', '%u %g %a %F', '/run/naaccord', '/run/naaccord/service.sock'])
    expect(stat.trim().split('\n')).toEqual(['991 990 750 directory', '991 990 660 socket'])
    const ids = await compose(['exec', '-T', 'web', 'id', '-u'])
    expect(ids.trim()).toBe('992')
  }, 30_000)

  it('docker-compose kill -s HUP services 20 times under load: 0 failed, 0 executed twice', async () => {
    const t0 = Date.now()
    const traffic = load(base, 8, 'hup', 20)
    await new Promise((r) => setTimeout(r, 300))
    const pids = new Set<number>()
    let reloads = 0
    for (let i = 0; i < 20 && Date.now() - t0 < 60_000; i++) {
      const before = (await get(`hup-probe-${i}`))?.pid
      await compose(['kill', '-s', 'HUP', 'services'], 15_000)
      reloads++
      // The new app serves once the supervisor has it ready; wait for its pid (bounded).
      const until = Date.now() + 10_000
      for (;;) {
        const pid = (await get(`hup-wait-${i}-${Date.now()}`))?.pid
        if ((pid !== undefined && pid !== before) || Date.now() > until) {
          if (pid !== undefined) pids.add(pid)
          break
        }
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    await new Promise((r) => setTimeout(r, 300))
    const outcomes = await traffic.stop()
    const s = summarize(outcomes, readLedger(ledgerFile()), 'hup')
    Object.assign(timings, { hupReloads: reloads, hupPhaseMs: Date.now() - t0, hup: s })
    expect(reloads).toBe(20)
    expect(s.failed).toBe(0)
    expect(s.executedTwice).toBe(0)
    expect(s.okNotExecuted).toBe(0)
    expect(pids.size).toBeGreaterThanOrEqual(18)
    expect(s.servedByPids).toBeGreaterThanOrEqual(15)
  }, 90_000)

  it('docker-compose restart services 3 times under load: counted; nothing executed twice', async () => {
    const t0 = Date.now()
    const traffic = load(base, 8, 'restart', 20)
    await new Promise((r) => setTimeout(r, 300))
    const restartMs: number[] = []
    for (let i = 0; i < 3; i++) {
      const t = Date.now()
      await compose(['restart', '-t', '20', 'services'], 60_000)
      restartMs.push(Date.now() - t)
      const until = Date.now() + 15_000
      while (Date.now() < until && (await get(`restart-wait-${i}`)) === undefined) await new Promise((r) => setTimeout(r, 100))
    }
    await new Promise((r) => setTimeout(r, 300))
    const outcomes = await traffic.stop()
    const s = summarize(outcomes, readLedger(ledgerFile()), 'restart')
    Object.assign(timings, { restarts: restartMs, restartPhaseMs: Date.now() - t0, restart: s })
    // A restart stops the supervisor: it drains, removes the socket, and the container starts
    // again. Calls in that gap find no socket; the client retries a call it never sent for
    // NAACCORD_RETRY_WINDOW_MS, so what fails is only what reached the old process as it stopped.
    expect(s.executedTwice).toBe(0)
    expect(s.failedExecuted).toBe(0)
    expect(s.okNotExecuted).toBe(0)
    expect(restartMs).toHaveLength(3)
    expect(s.requests).toBeGreaterThan(0)
  }, 120_000)

  it('a container running as a third uid is refused at the folder; one in group 990 but not in allow by the peer check', async () => {
    const volume = `${project}_naaccord-run`
    const connect = `require('net').connect('/run/naaccord/service.sock').on('connect',()=>{console.log('connected');process.exit(0)}).on('error',e=>{console.log(e.code);process.exit(0)})`
    const outsider = await must(DOCKER, ['run', '--rm', '--network', 'none', '--user', '993:993', '-v', `${volume}:/run/naaccord`, IMAGE, 'node', '-e', connect], 30_000)
    expect(outsider.trim()).toBe('EACCES')
    const client = `import('@naaccord/ipc-client').then(async ({createClient})=>{const c=createClient({acknowledgePlaintext:true});try{await c.get('/items/x');console.log('served')}catch(e){console.log(e.code)}finally{await c.close()}})`
    const member = await must(DOCKER, ['run', '--rm', '--network', 'none', '--user', '994:994', '--group-add', '990', '-w', '/opt/naaccord/web', '-e', 'NAACCORD_SOCKET_PATH=/run/naaccord/service.sock', '-e', 'NAACCORD_EXPECT_SERVER_UID=991', '-v', `${volume}:/run/naaccord`, IMAGE, 'node', '-e', client], 30_000)
    timings.memberRefusedCode = member.trim().split('\n')[0]
    expect(member.trim().split('\n')[0]).toMatch(/^IPC_/)
    const logs = await compose(['logs', '--no-color', '--tail', '200', 'services'])
    expect(logs).toMatch(/refused connection from uid 994 gid 994 pid -?\d+: not in the allow policy/)
  }, 60_000)
})

const MANIFEST = path.join(ROOT, 'deploy', 'kubernetes', 'naaccord.yaml')

interface ContainerSpec {
  command: string[]
  workingDir: string
  env: Record<string, string>
  runAsUser: number
  runAsGroup: number
  readiness: string[]
  preStopSeconds: number
}

/** A container of the manifest, read from its text (flow-style JSON arrays, one key a line). */
function container(name: string): ContainerSpec {
  const text = readFileSync(MANIFEST, 'utf8')
  const block = text.split(/\n {8}- name: /).find((b) => b.startsWith(`${name}\n`))
  if (!block) throw new Error(`no container ${name} in ${MANIFEST}`)
  const one = (re: RegExp) => re.exec(block)?.[1] ?? ''
  const env = Object.fromEntries([...block.matchAll(/\{ name: (\w+), value: "?([^"}]*?)"? \}/g)].map((m) => [m[1], m[2]]))
  return {
    command: JSON.parse(one(/\n {10}command: (\[.*\])/)) as string[],
    workingDir: one(/workingDir: (\S+)/),
    env: env as Record<string, string>,
    runAsUser: Number(one(/runAsUser: (\d+)/)),
    runAsGroup: Number(one(/runAsGroup: (\d+)/)),
    readiness: JSON.parse(one(/readinessProbe:\n\s+exec:\n\s+command: (\[.*\])/)) as string[],
    preStopSeconds: Number(one(/preStop:\n\s+exec: \{ command: \["sleep", "(\d+)"\] \}/)),
  }
}

describe.skipIf(skip !== undefined)(`deploy/kubernetes: the pod's two containers run as the kubelet would${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const text = () => readFileSync(MANIFEST, 'utf8')
  const fsGroup = () => Number(/fsGroup: (\d+)/.exec(text())?.[1])
  const grace = () => Number(/terminationGracePeriodSeconds: (\d+)/.exec(text())?.[1])
  const made: string[] = []
  const volumes: string[] = []
  const network = `naaccordpod${process.pid}`

  interface Pod { name: string; port: number; ledger: string }

  /** The kubelet's steps: emptyDir (medium Memory: a tmpfs), fsGroup on it, the pause container's network, both containers, readiness. */
  async function startPod(name: string): Promise<Pod & { readyMs: number }> {
    const t0 = Date.now()
    const port = await freePort()
    const volume = `${name}-run`
    await must(DOCKER, ['volume', 'create', '--driver', 'local', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', '--opt', 'o=size=1m', volume])
    volumes.push(volume)
    // The pause container holds the pod's network and, here, the tmpfs (Docker unmounts a tmpfs
    // volume, contents and all, when no container uses it; an emptyDir lives as long as its pod).
    await must(DOCKER, ['run', '-d', '--name', `${name}-pause`, '--network', network, '-p', `127.0.0.1:${port}:8000`, '-v', `${volume}:/v:nocopy`, IMAGE, 'sleep', 'infinity'])
    made.push(`${name}-pause`)
    // fsGroup: the kubelet makes the volume group fsGroup, group-writable and setgid.
    await must(DOCKER, ['exec', '-u', '0', `${name}-pause`, 'sh', '-c', `chgrp ${fsGroup()} /v && chmod g+rwxs /v`])
    const ledger = path.join(work, `${name}-ledger`)
    mkdirSync(ledger)
    chownSync(ledger, 991, 991)
    for (const c of ['services', 'web']) {
      const spec = container(c)
      const env = Object.entries({ ...spec.env, ...(c === 'services' ? { STATE_DIRECTORY: '/var/lib/naaccord-test' } : {}) }).flatMap(([k, v]) => ['-e', `${k}=${v}`])
      await must(DOCKER, [
        'run', '-d', '--name', `${name}-${c}`, '--network', `container:${name}-pause`,
        '--user', `${spec.runAsUser}:${spec.runAsGroup}`, '--group-add', String(fsGroup()),
        '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges:true',
        '-w', spec.workingDir, ...env, '-v', `${volume}:/run/naaccord:nocopy`,
        ...(c === 'services' ? ['-v', `${ledger}:/var/lib/naaccord-test`] : []),
        IMAGE, ...spec.command,
      ])
      made.push(`${name}-${c}`)
    }
    // Readiness: both containers' exec probes, as the kubelet runs them (bounded).
    const until = Date.now() + 20_000
    for (const c of ['services', 'web']) {
      const spec = container(c)
      while ((await run(DOCKER, ['exec', `${name}-${c}`, ...spec.readiness], { timeoutMs: 5_000 })).status !== 0) {
        if (Date.now() > until) throw new Error(`${name}-${c} not ready in 20 s: ${(await run(DOCKER, ['exec', `${name}-${c}`, ...spec.readiness])).stdout}`)
        await new Promise((r) => setTimeout(r, 250))
      }
    }
    return { name, port, ledger: path.join(ledger, 'executed'), readyMs: Date.now() - t0 }
  }

  /** Termination as the kubelet does it: preStop in each container, then SIGTERM, SIGKILL after the grace period. */
  async function stopPod(pod: Pod): Promise<{ ms: number; exitCodes: string[] }> {
    const t0 = Date.now()
    await Promise.all(['services', 'web'].map(async (c) => {
      await run(DOCKER, ['exec', `${pod.name}-${c}`, 'sleep', String(container(c).preStopSeconds)], { timeoutMs: grace() * 1000 })
      await run(DOCKER, ['stop', '-t', String(Math.max(1, grace() - Math.round((Date.now() - t0) / 1000))), `${pod.name}-${c}`], { timeoutMs: (grace() + 10) * 1000 })
    }))
    const exitCodes = await Promise.all(['services', 'web'].map(async (c) => (await must(DOCKER, ['inspect', '-f', '{{.State.ExitCode}} {{.State.OOMKilled}}', `${pod.name}-${c}`])).trim()))
    return { ms: Date.now() - t0, exitCodes }
  }

  beforeAll(async () => {
    await must(DOCKER, ['network', 'create', network])
  }, 30_000)

  afterAll(async () => {
    if (made.length) await run(DOCKER, ['rm', '-f', ...made], { timeoutMs: 60_000 })
    if (volumes.length) await run(DOCKER, ['volume', 'rm', '-f', ...volumes], { timeoutMs: 30_000 })
    await run(DOCKER, ['network', 'rm', network], { timeoutMs: 30_000 })
  }, 90_000)

  it('the manifest: emptyDir, uids, fsGroup, exec probes through the CLI, preStop and a grace period longer than the drain', () => {
    const t = text()
    expect(t).toMatch(/emptyDir: \{ medium: Memory/)
    expect(t).toMatch(/maxUnavailable: 0/)
    const services = container('services')
    const web = container('web')
    expect([services.runAsUser, web.runAsUser, fsGroup()]).toEqual([991, 992, 990])
    expect(services.env.NAACCORD_SOCKET_PATH).toBe('/run/naaccord/sock/service.sock')
    expect(web.env.NAACCORD_EXPECT_SERVER_UID).toBe('991')
    expect(services.readiness.join(' ')).toMatch(/naaccord-ipc doctor --socket \/run\/naaccord\/sock\/service\.sock --owner 991/)
    // preStop + the supervisor's 15 s drain fit in the grace period.
    expect(grace()).toBeGreaterThan(services.preStopSeconds + 15)
  })

  it('a rolling update under load (new pod ready, then the old one terminated): 0 failed, 0 executed twice', async () => {
    const t0 = Date.now()
    const a = await startPod(`naaccordpod${process.pid}a`)
    const mode = await must(DOCKER, ['exec', `${a.name}-services`, 'stat', '-c', '%a %u %g', '/run/naaccord', '/run/naaccord/sock', '/run/naaccord/sock/service.sock'])
    // The volume's root: sticky, setgid, world-writable (refused as the socket's folder); the subfolder: 991's, 0750, group 990 inherited from the setgid root.
    expect(mode.trim().split('\n')).toEqual(['3777 0 990', '750 991 990', '660 991 990'])
    let current: Pod = a
    const traffic = load(() => `http://127.0.0.1:${current.port}`, 6, 'pod', 20)
    await new Promise((r) => setTimeout(r, 1_000))
    const b = await startPod(`naaccordpod${process.pid}b`)
    // The Service's endpoints: the new pod is ready, the old one leaves as its termination starts.
    current = b
    const stopped = await stopPod(a)
    await new Promise((r) => setTimeout(r, 1_000))
    const outcomes = await traffic.stop()
    const executed = readLedger(a.ledger)
    for (const [k, n] of readLedger(b.ledger)) executed.set(k, (executed.get(k) ?? 0) + n)
    const s = summarize(outcomes, executed, 'pod')
    // The probes of the remaining pod still pass.
    const probe = await run(DOCKER, ['exec', `${b.name}-web`, ...container('web').readiness], { timeoutMs: 5_000 })
    Object.assign(timings, { podReadyMs: [a.readyMs, b.readyMs], podStopMs: stopped.ms, podExitCodes: stopped.exitCodes, rollingUpdateMs: Date.now() - t0, pod: s })
    expect(probe.status).toBe(0)
    expect(s.requests).toBeGreaterThan(0)
    expect(s.failed).toBe(0)
    expect(s.executedTwice).toBe(0)
    expect(s.okNotExecuted).toBe(0)
    // Stopped by SIGTERM within the grace period, not SIGKILLed (137).
    expect(stopped.ms).toBeLessThan(grace() * 1000)
    expect(stopped.exitCodes.every((c) => !c.startsWith('137'))).toBe(true)
  }, 120_000)
})
