import { describe, expect, it } from 'vitest'
import { resolveServerOptions } from './options.js'

const quiet = { logger: false as const }

describe('resolveServerOptions', () => {
  it('applies defaults', () => {
    const o = resolveServerOptions(quiet, {})
    expect(o).toMatchObject({ socketPath: '/var/run/naaccord/service.sock', socketMode: 0o600, dirMode: 0o700, shutdownTimeoutMs: 10_000, handleSignals: true })
    expect(o.allow).toEqual({ uids: [process.getuid!()], gids: [] })
    expect(o.limits.keepAliveTimeoutMs).toBeGreaterThan(4_000) // longer than the client's idle timeout
    expect(Object.isFrozen(o)).toBe(true)
  })

  it('explicit option > environment > default', () => {
    const env = { NAACCORD_SOCKET_PATH: '/run/env/s.sock', NAACCORD_SOCKET_MODE: '0660', NAACCORD_ALLOW_UIDS: '1000, 1001' }
    expect(resolveServerOptions({ ...quiet, socketPath: '/run/x/s.sock' }, env).socketPath).toBe('/run/x/s.sock')
    const fromEnv = resolveServerOptions(quiet, env)
    expect(fromEnv.socketPath).toBe('/run/env/s.sock')
    expect(fromEnv.socketMode).toBe(0o660)
    expect(fromEnv.allow).toEqual({ uids: [1000, 1001], gids: [] })
  })

  it('keeps where each security setting came from: option, environment variable (by name), default', () => {
    const env = { NAACCORD_SOCKET_MODE: '0660', NAACCORD_ALLOW_GIDS: '100', NAACCORD_TRUSTED_PROXY_UIDS: '33' }
    const o = resolveServerOptions({ ...quiet, socketPath: '/run/x/s.sock', acknowledgePlaintextSocket: true }, env)
    expect(o.sources).toMatchObject({
      socketPath: 'option',
      socketMode: 'env:NAACCORD_SOCKET_MODE',
      socketGroup: 'default',
      'allow.uids': 'default',
      'allow.gids': 'env:NAACCORD_ALLOW_GIDS',
      'trustedProxy.uids': 'env:NAACCORD_TRUSTED_PROXY_UIDS',
      'trustedProxy.identityHeader': 'default',
      acknowledgePlaintextSocket: 'option',
      tls: 'default',
    })
    // The values are the same as without the sources.
    expect(o).toMatchObject({ socketMode: 0o660, allow: { uids: [process.getuid!()], gids: [100] }, trustedProxy: { uids: [33] } })
    expect(resolveServerOptions({ ...quiet, allow: false }, {}).sources).toMatchObject({ allow: 'option', 'allow.uids': 'option' })
  })

  it('a socket group widens the defaults to 0660 and 0750', () => {
    const o = resolveServerOptions({ ...quiet, socketGroup: 0 }, {})
    expect(o).toMatchObject({ socketGid: 0, socketMode: 0o660, dirMode: 0o750 })
  })

  it.each([
    [{ sockPath: '/x' }, 'sockPath'],
    [{ socketMode: 'rw' }, 'socketMode'],
    [{ socketMode: 0o777 }, 'socketMode'],
    [{ dirMode: 0o777 }, 'dirMode'],
    [{ shutdownTimeoutMs: -5 }, 'shutdownTimeoutMs'],
    [{ allow: { uid: [1] } }, 'allow.uid'],
    [{ allow: { uids: [], gids: [] } }, 'allow'],
    [{ allow: { uids: ['root'] } }, 'allow.uids[0]'],
    [{ listen: [] }, 'listen'],
    [{ listen: [{ host: '127.0.0.1', port: 70000 }] }, 'listen[0].port'],
    [{ limits: { maxBodyByte: 1 } }, 'limits.maxBodyByte'],
    [{ socketGroup: 'no-such-group-here' }, 'socketGroup'],
    [{ handleSignals: 'maybe' }, 'handleSignals'],
    [{ limits: { headersTimeoutMs: 40_000 } }, 'limits.headersTimeoutMs'],
    [{ maxConnections: 0 }, 'maxConnections'],
    [{ maxUnauthenticated: 0 }, 'maxUnauthenticated'],
    [{ maxConnections: 10, maxUnauthenticated: 11 }, 'maxUnauthenticated'],
    [{ maxUnauthenticated: 'many' }, 'maxUnauthenticated'],
    [{ closeIdleOnShutdown: 'sometimes' }, 'closeIdleOnShutdown'],
    [{ health: { path: 'healthz' } }, 'health.path'],
    [{ health: { route: '/h' } }, 'health.route'],
  ])('refuses %j with IPC_INVALID_OPTION naming %s', (opts, option) => {
    expect(() => resolveServerOptions({ ...quiet, ...(opts as object) }, {})).toThrow(expect.objectContaining({ code: 'IPC_INVALID_OPTION', option }))
  })

  it('checks header and request timeouts on a cycle derived from them, not Node\'s 30 s', () => {
    expect(resolveServerOptions({ ...quiet, limits: { headersTimeoutMs: 2000 } }, {}).limits.connectionsCheckingIntervalMs).toBe(500)
    expect(resolveServerOptions({ ...quiet, limits: { headersTimeoutMs: 100, requestTimeoutMs: 0 } }, {}).limits.connectionsCheckingIntervalMs).toBe(50)
    expect(resolveServerOptions(quiet, {}).limits.connectionsCheckingIntervalMs).toBe(2500)
  })

  it('maxConnections and health: defaults, environment, false', () => {
    expect(resolveServerOptions(quiet, {})).toMatchObject({ maxConnections: 512, health: { path: '/healthz' } })
    expect(resolveServerOptions(quiet, { NAACCORD_MAX_CONNECTIONS: '64' }).maxConnections).toBe(64)
    expect(resolveServerOptions({ ...quiet, health: false }, {}).health).toBe(false)
  })

  it('maxUnauthenticated: a quarter of maxConnections unless given; option > environment; closeIdleOnShutdown off unless asked', () => {
    expect(resolveServerOptions(quiet, {})).toMatchObject({ maxConnections: 512, maxUnauthenticated: 128, closeIdleOnShutdown: false })
    expect(resolveServerOptions(quiet, { NAACCORD_MAX_CONNECTIONS: '64' })).toMatchObject({ maxConnections: 64, maxUnauthenticated: 16 })
    expect(resolveServerOptions({ ...quiet, maxConnections: 1 }, {})).toMatchObject({ maxConnections: 1, maxUnauthenticated: 1 })
    expect(resolveServerOptions(quiet, { NAACCORD_MAX_UNAUTHENTICATED: '8' }).maxUnauthenticated).toBe(8)
    expect(resolveServerOptions({ ...quiet, maxUnauthenticated: 32 }, { NAACCORD_MAX_UNAUTHENTICATED: '8' }).maxUnauthenticated).toBe(32)
    expect(resolveServerOptions(quiet, { NAACCORD_CLOSE_IDLE_ON_SHUTDOWN: 'true' }).closeIdleOnShutdown).toBe(true)
    expect(() => resolveServerOptions(quiet, { NAACCORD_MAX_CONNECTIONS: '64', NAACCORD_MAX_UNAUTHENTICATED: '65' })).toThrow(
      expect.objectContaining({ code: 'IPC_INVALID_OPTION', option: 'maxUnauthenticated' }),
    )
  })

  it('refuses a malformed environment variable, naming the option', () => {
    expect(() => resolveServerOptions(quiet, { NAACCORD_SOCKET_MODE: 'everyone' })).toThrow(expect.objectContaining({ code: 'IPC_INVALID_OPTION', option: 'socketMode' }))
  })

  it('refuses a socket path that does not fit in sun_path', () => {
    expect(() => resolveServerOptions({ ...quiet, socketPath: `/run/${'x'.repeat(110)}` }, {})).toThrow(expect.objectContaining({ code: 'IPC_SOCKET_PATH_TOO_LONG' }))
  })
})
