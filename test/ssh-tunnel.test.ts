// The services socket over an SSH tunnel (design note option 3): a real sshd on a loopback port
// with a temporary config, host key and authorized key, and `ssh -N -L local.sock:service.sock`.
// Our client pointed at the local socket works unchanged; the services server sees the tunnel
// user (sshd's session process), which is what its allow policy must name.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { createClient } from '@naaccord/ipc-client'
import { serve, type Peer } from '@naaccord/ipc-server'
import { deferCleanup, exited, freePort, isRoot, NOBODY, ROOT, tempDir } from './helpers.js'
import { waitUntil } from './wait.js'

const execFileAsync = promisify(execFile)
const defer = deferCleanup()
const SSHD = '/usr/sbin/sshd'
const SSH = '/usr/bin/ssh'
const TUNNEL_USER = 'nobody' // stands in for the recipe's dedicated naaccord-tunnel user
const missing = !isRoot ? 'needs root (sshd)' : !existsSync(SSHD) || !existsSync(SSH) ? `needs ${SSHD} and ${SSH}: apt-get install openssh-server openssh-client` : undefined

function stopOnCleanup(child: ChildProcess): void {
  defer(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const done = await Promise.race([exited(child).then(() => true), sleep(5_000).then(() => false)])
      if (!done) {
        child.kill('SIGKILL')
        await exited(child)
      }
    }
  })
}

const until = (what: string, check: () => boolean | Promise<boolean>, failed: () => string | undefined, timeoutMs = 10_000) =>
  waitUntil(what, check, { timeoutMs, failed })

const connects = (socketPath: string) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(socketPath)
    s.once('connect', () => (s.destroy(), resolve(true)))
    s.once('error', () => resolve(false))
  })

describe.skipIf(missing !== undefined)(`SSH tunnel${missing ? ` (skipped: ${missing})` : ''}`, () => {
  it('ssh -N -L forwards a local socket to the services socket: our client works unchanged, the server sees the tunnel user', async () => {
    const t = tempDir()
    defer(t.cleanup)
    chmodSync(t.dir, 0o711) // the tunnel user reaches the services socket, nothing else in here
    const dir = t.dir
    const servicesSocket = path.join(dir, 'service.sock')
    const localSocket = path.join(dir, 'local.sock')

    // The services server allows the tunnel user only: not root, not the web server's uid.
    const ipc = await serve(
      (req, res) => {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ url: req.url, peer: req.peer }))
      },
      { socketPath: servicesSocket, socketMode: 0o666, allow: { uids: [NOBODY] }, logger: false, handleSignals: false, acknowledgePlaintextSocket: true },
    )
    defer(() => ipc.close())

    // Keys: sshd's host key, the web server's tunnel key, a pinned known_hosts.
    const keys = path.join(dir, 'keys')
    mkdirSync(keys, { mode: 0o711 })
    for (const k of ['host', 'tunnel']) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', k, '-f', path.join(keys, k)], { timeout: 10_000 })
    const authorized = path.join(keys, 'authorized_keys')
    writeFileSync(authorized, `restrict,port-forwarding ${readFileSync(path.join(keys, 'tunnel.pub'), 'utf8')}`, { mode: 0o644 })
    const port = await freePort()
    writeFileSync(path.join(keys, 'known_hosts'), `[127.0.0.1]:${port} ${readFileSync(path.join(keys, 'host.pub'), 'utf8')}`)

    // sshd: the recipe's Match block for the tunnel user, on a loopback port, with this test's files.
    const recipe = readFileSync(path.join(ROOT, 'deploy', 'ssh', 'sshd_config.naaccord'), 'utf8').replace('Match User naaccord-tunnel', `Match User ${TUNNEL_USER}`)
    const config = path.join(dir, 'sshd_config')
    writeFileSync(
      config,
      [
        `ListenAddress 127.0.0.1:${port}`,
        `HostKey ${path.join(keys, 'host')}`,
        'PidFile none',
        `AuthorizedKeysFile ${authorized}`,
        'AuthenticationMethods publickey',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        // The temp folder lives under /tmp (world-writable), which StrictModes refuses for key files.
        'StrictModes no',
        `AllowUsers ${TUNNEL_USER}`,
        'LogLevel VERBOSE',
        recipe,
      ].join('\n'),
    )
    // sshd's privilege separation needs this folder (systemd makes it for the packaged service).
    if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 })
    let sshdLog = ''
    const sshd = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] })
    sshd.stderr!.on('data', (d: Buffer) => (sshdLog += d.toString()))
    stopOnCleanup(sshd)
    await until('sshd listening', () => sshdLog.includes('Server listening on 127.0.0.1'), () => (sshd.exitCode !== null ? `sshd exited: ${sshdLog}` : undefined))

    // ssh on the web server side: the recipe's command line.
    let sshLog = ''
    const startTunnel = async (): Promise<ChildProcess> => {
      const child = spawn(
        SSH,
        [
          '-F', '/dev/null', '-N', '-T',
          '-o', 'ExitOnForwardFailure=yes', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes',
          '-o', 'StreamLocalBindMask=0177', '-o', 'StreamLocalBindUnlink=yes',
          '-o', `UserKnownHostsFile=${path.join(keys, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes',
          '-i', path.join(keys, 'tunnel'), '-p', String(port),
          '-L', `${localSocket}:${servicesSocket}`,
          `${TUNNEL_USER}@127.0.0.1`,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      )
      child.stderr!.on('data', (d: Buffer) => (sshLog += d.toString()))
      stopOnCleanup(child)
      await until('tunnel up', () => existsSync(localSocket) && connects(localSocket), () => (child.exitCode !== null ? `ssh exited (${child.exitCode}): ${sshLog}\n${sshdLog}` : undefined))
      return child
    }
    const ssh = await startTunnel()

    // StreamLocalBindMask=0177: only ssh's user may use the local end.
    expect(statSync(localSocket).mode & 0o777).toBe(0o600)

    const client = createClient({ socketPath: localSocket, logger: false, retries: 0 })
    defer(() => client.destroy())
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => client.get<{ url: string; peer: Peer }>(`/r/${i}`))).catch((err: Error) => {
      throw new Error(`${err.message}\nsshd: ${sshdLog}\nssh: ${sshLog}`, { cause: err })
    })
    expect(answers.map((a) => a.url)).toEqual(Array.from({ length: 20 }, (_, i) => `/r/${i}`))
    // The peer is sshd's session process, running as the tunnel user: not the web server (root here).
    for (const a of answers) expect(a.peer).toMatchObject({ transport: 'unix', uid: NOBODY, gid: NOBODY })
    const sshdPid = answers[0]!.peer.pid!
    expect(readFileSync(`/proc/${sshdPid}/cmdline`, 'utf8')).toContain('sshd')

    // The same client process straight at the services socket is refused: root is not in allow.
    const direct = createClient({ socketPath: servicesSocket, logger: false, retries: 0 })
    defer(() => direct.destroy())
    await expect(direct.get('/')).rejects.toMatchObject({ code: 'IPC_HTTP_STATUS', status: 403 })

    // curl through the tunnel too (an independent client).
    const { stdout } = await execFileAsync('curl', ['-sS', '--max-time', '5', '--unix-socket', localSocket, 'http://localhost/curl'])
    expect(JSON.parse(stdout)).toMatchObject({ url: '/curl', peer: { uid: NOBODY } })

    // A restarted ssh binds again over the socket the first one left (StreamLocalBindUnlink=yes).
    ssh.kill('SIGKILL')
    await exited(ssh)
    expect(existsSync(localSocket)).toBe(true)
    await client.destroy()
    await startTunnel()
    const again = createClient({ socketPath: localSocket, logger: false, retries: 0 })
    defer(() => again.destroy())
    expect(await again.get<{ peer: Peer }>('/again')).toMatchObject({ peer: { uid: NOBODY } })
  }, 25_000)
})
