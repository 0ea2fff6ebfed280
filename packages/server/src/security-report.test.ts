import { describe, expect, it } from 'vitest'
import type { Env } from '@naaccord/ipc-shared'
import { resolveServerOptions, type ServerOptions } from './options.js'
import { serverSecurityReport, supervisorSecurityReport, weakeningMessage, type SecurityContext, type SecuritySetting } from './security-report.js'
import { resolveSupervisorOptions } from './supervisor/options.js'

const me = process.getuid!()
const ctx: SecurityContext = { uid: me, peerCredentialsAddon: undefined }
const quiet = { logger: false as const, acknowledgePlaintextSocket: true }

function report(options: ServerOptions, env: Env = {}, context = ctx): SecuritySetting[] {
  return serverSecurityReport(resolveServerOptions({ ...quiet, ...options }, env), context)
}
const weak = (r: SecuritySetting[]) => r.filter((s) => s.weakens).map((s) => [s.setting, s.value, s.source])
const find = (r: SecuritySetting[], setting: string) => r.find((s) => s.setting === setting)

describe('serverSecurityReport', () => {
  it('the defaults weaken nothing (plaintext over the socket acknowledged) and every source is "default"', () => {
    const r = report({})
    expect(weak(r)).toEqual([])
    expect(r.filter((s) => s.source !== 'default').map((s) => s.setting)).toEqual(['acknowledgePlaintextSocket'])
    expect(find(r, 'socketMode')).toMatchObject({ value: '0600', why: expect.stringContaining('only our own uid') })
  })

  it('plaintext over the socket weakens unless acknowledged by name', () => {
    expect(weak(serverSecurityReport(resolveServerOptions({ logger: false }, {}), ctx))).toEqual([['acknowledgePlaintextSocket', false, 'default']])
  })

  it.each([
    ['NAACCORD_TRUSTED_PROXY_UIDS', '65534', ['trustedProxy.uids', [65534], 'env:NAACCORD_TRUSTED_PROXY_UIDS']],
    ['NAACCORD_SOCKET_MODE', '666', ['socketMode', '0666', 'env:NAACCORD_SOCKET_MODE']],
    ['NAACCORD_SOCKET_MODE', '0660', ['socketMode', '0660', 'env:NAACCORD_SOCKET_MODE']],
    ['NAACCORD_ALLOW_UIDS', `${me},65534`, ['allow.uids', [me, 65534], 'env:NAACCORD_ALLOW_UIDS']],
    ['NAACCORD_ALLOW_GIDS', '100', ['allow.gids', [100], 'env:NAACCORD_ALLOW_GIDS']],
  ])('%s=%s weakens, named with its variable', (name, value, expected) => {
    expect(weak(report({}, { [name]: value }))).toEqual([expected])
  })

  it.each([
    [{ socketMode: 0o666 }, ['socketMode', '0666', 'option']],
    [{ socketMode: 0o604 }, ['socketMode', '0604', 'option']],
    [{ allow: { uids: [65534] } }, ['allow.uids', [65534], 'option']],
    [{ allow: false as const }, ['allow', false, 'option']],
    [{ trustedProxy: { uids: [108] } }, ['trustedProxy.uids', [108], 'option']],
  ])('%j weakens, named as an option', (options, expected) => {
    expect(weak(report(options))).toEqual([expected])
  })

  it('the option wins over the environment, and the report says so', () => {
    expect(find(report({ socketMode: 0o600 }, { NAACCORD_SOCKET_MODE: '666' }), 'socketMode')).toMatchObject({ value: '0600', source: 'option', weakens: false })
    // An explicit allow policy is taken whole: the variables are not read.
    expect(find(report({ allow: { uids: [me] } }, { NAACCORD_ALLOW_GIDS: '100' }), 'allow.gids')).toMatchObject({ value: [], source: 'default', weakens: false })
  })

  it('group bits are fine with a socketGroup chosen for them; root in allow.uids is not a widening', () => {
    expect(weak(report({ socketGroup: 0 }))).toEqual([])
    expect(find(report({ socketGroup: 0 }), 'socketMode')).toMatchObject({ value: '0660', source: 'default', weakens: false })
    expect(weak(report({ allow: { uids: [me, 0] } }))).toEqual([])
  })

  it('a wide mode with the peer check off says that every local user is served', () => {
    expect(find(report({ socketMode: 0o666, allow: false }), 'socketMode')!.why).toMatch(/ANY local user .* every one of them is served/)
  })

  it('socket-only settings do not weaken a TCP-only server', () => {
    expect(weak(report({ listen: [{ host: '127.0.0.1', port: 1 }], allowPlaintextTcp: true, socketMode: 0o666, allow: false }))).toEqual([['allowPlaintextTcp', true, 'option']])
  })

  it('the addon override weakens, named by its variable', () => {
    const r = report({}, {}, { uid: me, peerCredentialsAddon: '/tmp/fake.node' })
    expect(weak(r)).toEqual([['peerCredentialsAddon', '/tmp/fake.node', 'env:NAACCORD_PEERCRED_ADDON']])
    expect(weakeningMessage(find(r, 'peerCredentialsAddon')!)).toMatch(/^security weakened: peerCredentialsAddon = \/tmp\/fake\.node \(from env:NAACCORD_PEERCRED_ADDON\): /)
  })
})

describe('supervisorSecurityReport', () => {
  it('reports the socket it holds, with the sources of its settings', () => {
    const opts = resolveSupervisorOptions({ command: ['node', 'app.js'], logger: false }, { NAACCORD_SOCKET_MODE: '666' })
    expect(weak(supervisorSecurityReport(opts, ctx))).toEqual([['socketMode', '0666', 'env:NAACCORD_SOCKET_MODE']])
    expect(weak(supervisorSecurityReport(resolveSupervisorOptions({ command: ['x'], logger: false }, {}), ctx))).toEqual([])
  })
})
