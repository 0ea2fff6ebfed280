// deploy/systemd/ under a real systemd (252, Debian bookworm) as PID 1 of a new pid + mount
// namespace (test/systemd-namespace.ts): the packed packages installed with npm inside, no
// compiler; the recipe installed by the README's own install block; the real users 991/992 and
// group 990. Shows socket activation, READY and STATUS, 20 restarts under load with nothing failed
// or executed twice, the watchdog restarting a stopped process, both refusals, and the hardening.
// Root only, and only where the cached root file system exists or can be built
// (scripts/systemd-rootfs.sh, run by .ci/run); skips with the reason otherwise.
import { execFileSync } from 'node:child_process'
import { copyFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, ROOT } from './helpers.js'
import { bootSystemd, cachedRootfs, type SystemdNamespace } from './systemd-namespace.js'
import { load } from './load-loop.js'

const rootfs = cachedRootfs()
const skip = 'reason' in rootfs ? rootfs.reason : undefined
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'systemd')
const SOCKET = '/run/naaccord/service.sock'
/** The client's default timeoutMs: a caller waiting out a stalled services process must not reach it. */
const CLIENT_TIMEOUT_MS = 30_000

/** The install block of docs/production.md, run as-is inside. */
function readmeInstallBlock(): string {
  const readme = readFileSync(path.join(ROOT, 'docs', 'production.md'), 'utf8')
  const m = /<!-- systemd-install: [^>]*-->\n```sh\n([\s\S]*?)```/.exec(readme)
  if (!m?.[1]) throw new Error('docs/production.md has no systemd-install block')
  return m[1]
}

describe.skipIf(skip !== undefined)(`deploy/systemd under a real systemd as PID 1${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let sd: SystemdNamespace
  let stage: string
  let port: number
  const timings: Record<string, number | string> = {}

  async function sh(script: string, timeoutMs = 30_000): Promise<string> {
    const r = await sd.run(['sh', '-euc', script], { timeoutMs })
    if (r.status !== 0) throw new Error(`inside: ${script}\nexit ${r.status}\n${r.stdout}${r.stderr}`)
    return r.stdout
  }
  async function show(unit: string, ...props: string[]): Promise<Record<string, string>> {
    const out = await sh(`systemctl show ${unit} ${props.map((p) => `-p ${p}`).join(' ')}`)
    return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
  }
  /** The unit's journal once it has a line matching `re` (stdout reaches journald a little later). */
  async function journalLine(unit: string, re: RegExp, timeoutMs = 5_000): Promise<string | undefined> {
    const until = Date.now() + timeoutMs
    for (;;) {
      const line = (await sh(`journalctl --no-pager -o cat -u ${unit}`)).split('\n').find((l) => re.test(l))
      if (line !== undefined || Date.now() > until) return line
      await new Promise((r) => setTimeout(r, 200))
    }
  }
  async function ledger(): Promise<Map<string, number>> {
    const counts = new Map<string, number>()
    for (const line of (await sh('cat /var/lib/naaccord-test/executed')).split('\n')) {
      const [method, id] = line.split(' ')
      if (method && id) counts.set(`${method} ${id}`, (counts.get(`${method} ${id}`) ?? 0) + 1)
    }
    return counts
  }

  beforeAll(async () => {
    const t0 = Date.now()
    stage = mkdtempSync(path.join(os.tmpdir(), 'naaccord-systemd-stage-'))
    // What a release gives an operator: the packed tarballs and deploy/.
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'pack.mjs'), path.join(stage, 'tarballs')], { stdio: 'ignore', timeout: 120_000 })
    cpSync(path.join(ROOT, 'deploy'), path.join(stage, 'deploy'), { recursive: true })
    for (const f of readdirSync(FIXTURES)) copyFileSync(path.join(FIXTURES, f), path.join(stage, f))
    timings.packMs = Date.now() - t0

    const t1 = Date.now()
    sd = await bootSystemd((rootfs as { dir: string }).dir, stage)
    timings.bootMs = Date.now() - t1

    const t2 = Date.now()
    // The apps, each in its own folder with its own npm install of the tarballs (no compiler in
    // the image: the addon's prebuild must load), root-owned and read-only to the services.
    const npm = 'NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-ca-certificates.crt npm install --no-audit --no-fund --loglevel=error'
    const tgz = (names: string[]) => names.map((n) => `/root/stage/tarballs/naaccord-ipc-${n}-*.tgz`).join(' ')
    await sh(
      [
        'if command -v cc gcc make python3 >/dev/null 2>&1; then echo "a toolchain is installed"; exit 1; fi',
        'mkdir -p /opt/naaccord/services /opt/naaccord/web',
        `cd /opt/naaccord/services && echo '{"private":true,"type":"module"}' > package.json && ${npm} ${tgz(['shared', 'peercred', 'server', 'certs', 'cli'])} express@5 &`,
        `cd /opt/naaccord/web && echo '{"private":true,"type":"module"}' > package.json && ${npm} ${tgz(['shared', 'peercred', 'client'])} &`,
        'wait %1 && wait %2',
        'cp /root/stage/services-server.mjs /opt/naaccord/services/server.js',
        'cp /root/stage/web-server.mjs /opt/naaccord/web/server.js',
        'test "$(cat /opt/naaccord/services/node_modules/@naaccord/ipc-peercred/install-status.json | grep -c prebuilt)" = 1',
        'test ! -e /opt/naaccord/services/node_modules/@naaccord/ipc-peercred/build',
        // The operator's command (doctor, check-tls, certs) comes from @naaccord/ipc-cli.
        '/opt/naaccord/services/node_modules/.bin/naaccord-ipc doctor --help >/dev/null',
      ].join('\n'),
      90_000,
    )
    timings.npmMs = Date.now() - t2

    // The README's install block, as an operator runs it.
    await sh(`cd /root/stage\n${readmeInstallBlock()}`)
    // Test-only drop-ins: a writable ledger for the services app (ProtectSystem=strict leaves it
    // nothing writable) and the web server's port. WatchdogSec stays the recipe's.
    port = await freePort()
    await sh(
      [
        'mkdir -p /etc/systemd/system/naaccord-services.service.d /etc/systemd/system/naaccord-web.service.d',
        "printf '[Service]\\nStateDirectory=naaccord-test\\n' > /etc/systemd/system/naaccord-services.service.d/test.conf",
        `printf '[Service]\\nEnvironment=NAACCORD_WEB_PORT=${port}\\n' > /etc/systemd/system/naaccord-web.service.d/test.conf`,
        'systemctl daemon-reload',
      ].join('\n'),
    )
  }, 240_000)

  afterAll(async () => {
    await sd?.destroy()
    if (stage) rmSync(stage, { recursive: true, force: true })
    console.log(`systemd-real: ${JSON.stringify(timings)}`)
  }, 30_000)

  it('systemctl start: the first request through the web server starts the services unit; READY and STATUS', async () => {
    await sh('systemctl start naaccord-services.socket naaccord-web.service')
    const before = await show('naaccord-services.service', 'ActiveState')
    expect(before.ActiveState).toBe('inactive')
    const sock = await sh(`stat -c '%U %G %a %F' ${SOCKET}; stat -c '%U %G %a' /run/naaccord`)
    expect(sock.trim().split('\n')).toEqual(['root naaccord 660 socket', 'root root 755'])
    // The web server listens once node has started: wait for its port (bounded).
    const deadline = Date.now() + 15_000
    let first: Response | undefined
    let firstMs = 0
    while (!first && Date.now() < deadline) {
      const t = Date.now()
      first = await fetch(`http://127.0.0.1:${port}/items/first`).catch(() => undefined)
      firstMs = Date.now() - t
      if (!first) await new Promise((r) => setTimeout(r, 100))
    }
    expect(first?.status).toBe(200)
    expect(((await first!.json()) as { id: string }).id).toBe('first')
    timings.firstRequestMs = firstMs
    const s = await show('naaccord-services.service', 'ActiveState', 'SubState', 'StatusText', 'Type', 'MainPID', 'User', 'NotifyAccess')
    expect(s).toMatchObject({ ActiveState: 'active', SubState: 'running', Type: 'notify', StatusText: `serving on unix ${SOCKET}` })
    // systemd counts a Type=notify service as started only on READY=1: the journal has it.
    expect(await journalLine('naaccord-services.service', /^Started .*naaccord services/)).toBeDefined()
    expect(await journalLine('naaccord-services.service', /"path":"\/items\/first".*"peer":\{"uid":992/)).toBeDefined()
    const who = await sh(`ps -o uid=,gid= -p ${Number(s.MainPID)}; id -u naaccord-web; id -G naaccord-web`)
    expect(who.trim().split(/\s+/)).toEqual(['991', '991', '992', '992', '990'])
  }, 30_000)

  it('systemctl restart naaccord-services 20 times under load: 0 failed, 0 executed twice', async () => {
    const t0 = Date.now()
    const traffic = load(() => `http://127.0.0.1:${port}`, 8, 'restart')
    const restartMs: number[] = []
    const pids = new Set<string>()
    await new Promise((r) => setTimeout(r, 500))
    for (let i = 0; i < 20 && Date.now() - t0 < 60_000; i++) {
      const t = Date.now()
      const r = await sd.run(['systemctl', 'restart', 'naaccord-services'], { timeoutMs: 30_000 })
      restartMs.push(Date.now() - t)
      if (r.status !== 0) throw new Error(`restart ${i + 1} failed: ${r.stderr}`)
      pids.add((await show('naaccord-services.service', 'MainPID')).MainPID ?? '')
      await new Promise((r) => setTimeout(r, 150))
    }
    await new Promise((r) => setTimeout(r, 500))
    const outcomes = await traffic.stop()
    const failed = outcomes.filter((o) => !o.ok)
    const executed = await ledger()
    const twice = [...executed].filter(([, n]) => n > 1)
    const okNotExecuted = outcomes.filter((o) => o.ok && !executed.has(`${o.method} ${o.id}`))
    const servedBy = new Set(outcomes.filter((o) => o.ok).map((o) => o.pid))
    const sorted = outcomes.map((o) => o.ms).sort((a, b) => a - b)
    Object.assign(timings, {
      restarts: restartMs.length,
      restartRequests: outcomes.length,
      restartPosts: outcomes.filter((o) => o.method === 'POST').length,
      restartFailed: failed.length,
      restartExecutedTwice: twice.length,
      restartServedByPids: servedBy.size,
      restartMedianMs: restartMs.sort((a, b) => a - b)[10] ?? -1,
      restartMaxMs: restartMs.at(-1) ?? -1,
      restartRequestP99Ms: sorted[Math.floor(sorted.length * 0.99)] ?? -1,
      restartRequestMaxMs: sorted.at(-1) ?? -1,
      restartPhaseMs: Date.now() - t0,
    })
    expect(restartMs).toHaveLength(20)
    expect(failed.slice(0, 5)).toEqual([])
    expect(twice.slice(0, 5)).toEqual([])
    expect(okNotExecuted).toEqual([])
    expect(pids.size).toBe(20)
    expect(servedBy.size).toBeGreaterThanOrEqual(15)
    // The unit has no ExecReload=: `systemctl reload` is refused and changes nothing (a restart
    // is the way; connections wait in the socket's backlog meanwhile).
    const reload = await sd.run(['systemctl', 'reload', 'naaccord-services'])
    expect(reload.status).not.toBe(0)
    expect(reload.stderr).toMatch(/not applicable/)
    const unit = await show('naaccord-services.service', 'ActiveState', 'Result')
    const socket = await show('naaccord-services.socket', 'ActiveState')
    expect(unit).toMatchObject({ ActiveState: 'active', Result: 'success' })
    expect(socket.ActiveState).toBe('active')
  }, 90_000)

  it('WatchdogSec: a stopped services process is killed and restarted by systemd; callers wait', async () => {
    const before = await show('naaccord-services.service', 'MainPID', 'NRestarts', 'WatchdogUSec')
    const watchdogSec = Number(/^(\d+)s$/.exec(before.WatchdogUSec ?? '')?.[1])
    expect(watchdogSec).toBeGreaterThan(0)
    const traffic = load(() => `http://127.0.0.1:${port}`, 4, 'watchdog')
    await new Promise((r) => setTimeout(r, 300))
    const stoppedAt = Date.now()
    expect(Number(before.MainPID)).toBeGreaterThan(1)
    await sh(`kill -STOP ${Number(before.MainPID)}`)
    // Bounded: the watchdog period, systemd's kill, RestartSec=1 and a node start.
    let after = before
    while (Date.now() - stoppedAt < watchdogSec * 1000 + 10_000) {
      after = await show('naaccord-services.service', 'MainPID', 'NRestarts', 'ActiveState', 'SubState')
      if (after.MainPID !== before.MainPID && after.MainPID !== '0' && after.SubState === 'running') break
      await new Promise((r) => setTimeout(r, 100))
    }
    const restartedMs = Date.now() - stoppedAt
    await new Promise((r) => setTimeout(r, 500))
    const outcomes = await traffic.stop()
    const during = outcomes.filter((o) => o.startedAt >= stoppedAt && o.startedAt < stoppedAt + restartedMs)
    const failed = outcomes.filter((o) => !o.ok)
    const executed = await ledger()
    const twice = [...executed].filter(([k, n]) => k.includes('watchdog') && n > 1)
    Object.assign(timings, {
      watchdogSec,
      watchdogRestartedMs: restartedMs,
      watchdogRequests: outcomes.length,
      watchdogCallsStartedDuringStall: during.length,
      watchdogLongestWaitMs: Math.max(...during.map((o) => o.ms), 0),
      watchdogFailed: failed.length,
      watchdogFailedNotExecuted: failed.filter((o) => !executed.has(`${o.method} ${o.id}`)).length,
      watchdogExecutedTwice: twice.length,
    })
    if (failed.length) console.log(`watchdog failures: ${JSON.stringify(failed.slice(0, 8))}`)
    expect(after.MainPID).not.toBe(before.MainPID)
    expect(Number(after.NRestarts)).toBe(Number(before.NRestarts) + 1)
    const watchdogLine = await journalLine('naaccord-services.service', /Watchdog timeout/)
    timings.watchdogJournal = watchdogLine ?? ''
    expect(watchdogLine).toBeDefined()
    expect(twice).toEqual([])
    // Calls made while the process was stopped waited in the backlog and were answered by its
    // successor; only a POST already sent to the stopped process can fail, and then unexecuted.
    expect(during.filter((o) => o.ok).length).toBeGreaterThan(0)
    expect(Math.max(...during.map((o) => o.ms))).toBeLessThan(CLIENT_TIMEOUT_MS)
    expect(restartedMs).toBeGreaterThanOrEqual(watchdogSec * 1000)
    expect(failed.filter((o) => o.method === 'GET')).toEqual([])
    // Only POSTs in flight when systemd killed the stopped process can fail: at most one per
    // worker (each runs one call at a time), each started before the kill. Most were never
    // executed (sent to the frozen process); one it had executed (ledger written) when SIGSTOP
    // froze it before its answer's write(2) is killed unanswered: the one case no server can
    // close (a kill between doing and telling; an idempotency key covers it; seen in 1 of 6 runs).
    // Such a POST started before the stop, and is never executed twice (checked above).
    expect(failed.length).toBeLessThanOrEqual(4)
    for (const o of failed) expect(o.startedAt, o.id).toBeLessThanOrEqual(stoppedAt + restartedMs)
    for (const o of failed.filter((f) => executed.has(`${f.method} ${f.id}`))) expect(o.startedAt, o.id).toBeLessThanOrEqual(stoppedAt)
  }, 60_000)

  it('a user outside group 990 is refused at the socket; one in it but not in allow by the peer check, logged', async () => {
    const connect = `require('net').connect('${SOCKET}').on('connect',()=>{console.log('connected');process.exit(0)}).on('error',e=>{console.log(e.code);process.exit(0)})`
    const outsider = await sh(`setpriv --reuid=993 --regid=993 --clear-groups node -e "${connect}"`)
    expect(outsider.trim()).toBe('EACCES')
    const client = `import('@naaccord/ipc-client').then(async ({createClient})=>{const c=createClient({acknowledgePlaintext:true});try{await c.get('/items/x');console.log('served')}catch(e){console.log(e.code)}finally{await c.close()}})`
    const member = await sh(`cd /opt/naaccord/web && NAACCORD_SOCKET_PATH=${SOCKET} NAACCORD_EXPECT_SERVER_UID=991 setpriv --reuid=994 --regid=994 --groups=990 node -e "${client}"`)
    timings.memberRefusedCode = member.trim()
    expect(member.trim()).toMatch(/^IPC_/)
    expect(member.trim()).not.toBe('served')
    const refusal = await journalLine('naaccord-services.service', /refused connection from uid 994 /)
    timings.memberRefusedLog = refusal?.match(/"msg":"([^"]*)"/)?.[1] ?? ''
    expect(refusal).toMatch(/refused connection from uid 994 gid 994 pid \d+: not in the allow policy/)
  }, 30_000)

  it('the unit\'s hardening is in effect in the services process', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/hardening`)
    const h = (await res.json()) as { status: Record<string, string>; [k: string]: unknown }
    timings.hardening = JSON.stringify(h)
    expect(h.status).toMatchObject({ NoNewPrivs: '1', Seccomp: '2', CapEff: '0000000000000000', CapBnd: '0000000000000000', CapPrm: '0000000000000000' })
    expect(h.status.Uid?.split('\t')[0]).toBe('991')
    expect(h).toMatchObject({ writeUsr: 'EROFS', writeEtc: 'EROFS', writeOpt: 'EROFS', writeTmp: 'ok', readHome: 'EACCES', devices: 'ENOENT' })
    // RestrictNamespaces=yes: unshare(2) is refused by the seccomp filter.
    expect(h.unshare).not.toBe(0)
  }, 15_000)
})
