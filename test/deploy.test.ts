// The recipes under deploy/: the systemd units pass `systemd-analyze verify` (which does run
// here, though PID 1 is not systemd, so the units are checked, not started), the tmpfiles.d and
// sysusers.d entries apply to a scratch root, and the units say what the README promises.
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { deferCleanup, ROOT, tempDir } from './helpers.js'

const defer = deferCleanup()
const SYSTEMD = path.join(ROOT, 'deploy', 'systemd')
const UNITS = ['naaccord-services.socket', 'naaccord-services.service', 'naaccord-web.service']
const have = (tool: string) => spawnSync(tool, ['--version']).status === 0
const unit = (name: string) => readFileSync(path.join(SYSTEMD, name), 'utf8')

function verify(dir: string, names: string[]): { status: number | null; output: string } {
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...names.map((n) => path.join(dir, n))], { encoding: 'utf8' })
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() }
}

describe('deploy/systemd', () => {
  it('the socket unit listens on the services socket, 0660, root-owned with the callers\' group', () => {
    const s = unit('naaccord-services.socket')
    expect(s).toMatch(/^ListenStream=\/run\/naaccord\/service\.sock$/m)
    expect(s).toMatch(/^SocketMode=0660$/m)
    expect(s).toMatch(/^SocketUser=root$/m)
    expect(s).toMatch(/^SocketGroup=naaccord$/m)
    expect(s).toMatch(/^FileDescriptorName=service\.sock$/m)
  })

  it('the service unit is Type=notify, hardened, and runs as its own user', () => {
    const s = unit('naaccord-services.service')
    for (const line of [
      'Type=notify',
      'NotifyAccess=main',
      'Requires=naaccord-services.socket',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6',
      'User=naaccord-services',
      // serve() refuses an adopted socket wider than socketMode: the group the .socket unit sets.
      'Environment=NAACCORD_SOCKET_GROUP=naaccord',
    ]) {
      expect(s).toContain(`\n${line}\n`)
    }
    expect(s).toMatch(/^WatchdogSec=\d+$/m)
    expect(unit('naaccord-web.service')).toMatch(/^Requires=naaccord-services\.socket$/m)
    expect(unit('naaccord-web.service')).toMatch(/^After=naaccord-services\.socket/m)
  })

  it.skipIf(!have('systemd-analyze'))('systemd-analyze verify accepts the units (and rejects a broken copy)', () => {
    const { dir, cleanup } = tempDir()
    defer(cleanup)
    for (const n of UNITS) copyFileSync(path.join(SYSTEMD, n), path.join(dir, n))
    const good = verify(dir, UNITS)
    expect(good.output).toBe('')
    expect(good.status).toBe(0)
    // The same check notices a mistake: a misspelt type and an unknown key.
    writeFileSync(path.join(dir, 'naaccord-services.service'), unit('naaccord-services.service').replace('\nType=notify\n', '\nType=notyfy\nBogusKey=1\n'))
    const bad = verify(dir, ['naaccord-services.service'])
    expect(bad.output).toMatch(/notyfy/)
    expect(bad.output).toMatch(/BogusKey/)
  })

  it.skipIf(!have('systemd-tmpfiles'))('the tmpfiles.d entry makes /run/naaccord root-owned 0755', () => {
    const { dir, cleanup } = tempDir()
    defer(cleanup)
    const r = spawnSync('systemd-tmpfiles', ['--create', `--root=${dir}`, path.join(SYSTEMD, 'naaccord.conf')], { encoding: 'utf8' })
    expect(r.stderr).toBe('')
    const st = statSync(path.join(dir, 'run', 'naaccord'))
    expect(st.isDirectory()).toBe(true)
    expect(st.mode & 0o7777).toBe(0o755)
    expect(st.uid).toBe(0)
  })

  it.skipIf(!have('systemd-sysusers') || process.getuid?.() !== 0)('the sysusers.d entry creates the two users and puts the web user in group naaccord', () => {
    const { dir, cleanup } = tempDir()
    defer(cleanup)
    mkdirSync(path.join(dir, 'etc'))
    const r = spawnSync('systemd-sysusers', [`--root=${dir}`, path.join(SYSTEMD, 'sysusers-naaccord.conf')], { encoding: 'utf8' })
    expect(r.status).toBe(0)
    const passwd = readFileSync(path.join(dir, 'etc', 'passwd'), 'utf8')
    expect(passwd).toMatch(/^naaccord-services:x:991:991:/m)
    expect(passwd).toMatch(/^naaccord-web:x:992:992:/m)
    expect(readFileSync(path.join(dir, 'etc', 'group'), 'utf8')).toMatch(/^naaccord:x:990:naaccord-web$/m)
  })
})
