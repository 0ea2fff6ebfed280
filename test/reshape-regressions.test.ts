// What two attacks on the reshaped code (option tables, serve() units, process effects, client
// split, CLI probe) found, each kept as a test that failed before its fix; the comment above each
// describes the code before the fix. First round: explicit null options read as "not given" by the
// option tables (a regression: a6f1304 refused them), X-Powered-By handed to writeHead itself, a
// non-HTTP answer surfacing as undici's own error (both older than the reshaping). Second round,
// on those fixes: more null options, the forms of writeHead's headers argument, the cause of
// IPC_BAD_RESPONSE.
import net from 'node:net'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { createTestPki } from '@naaccord/ipc-certs'
import { createClient, resolveClientOptions } from '@naaccord/ipc-client'
import { resolveServerOptions, serve } from '@naaccord/ipc-server'
import { resolveSupervisorOptions } from '@naaccord/ipc-server/supervisor'
import { deferCleanup, rawExchange, tempDir } from './helpers.js'

const defer = deferCleanup()

/** The error code a synchronous call throws, or 'accepted'. */
function outcome(fn: () => unknown): string {
  try {
    fn()
    return 'accepted'
  } catch (err) {
    return (err as { code?: string }).code ?? `${(err as Error).name}: ${(err as Error).message}`
  }
}

async function pki() {
  const t = tempDir()
  defer(t.cleanup)
  return createTestPki({ dir: path.join(t.dir, 'pki') })
}

// option-table.ts resolveOptions(): `picked.value ?? entry.fallback?.(values) ?? entry.default`
// turns an explicit null into "not given": the default (or, for nested objects, the environment)
// is used instead of refusing the value. Before the tables, null was refused by name for these
// (resolveAllowWithSources, resolveHealth, resolveListen, resolveServerTls, the trusted proxy
// and the client's tls.pin all checked `value === null` or passed null to a list parser).
describe('an explicit null is a bad value (IPC_INVALID_OPTION), not "use the default"', () => {
  it('server tls.allowClients: null is refused, not read as "every certificate of the CA" (fail-open)', async () => {
    const p = await pki()
    const tls = { cert: p.server.certPath, key: p.server.keyPath, ca: p.ca.certPath, allowClients: null as unknown as string[] }
    // Now: accepted, and the resolved policy has no allow-list at all.
    expect(outcome(() => resolveServerOptions({ socketPath: '/tmp/x.sock', tls, logger: false }, {}))).toBe('IPC_INVALID_OPTION')
  })

  it('client tls.pin: null is refused, not silently "no pinning" (and it must not hide NAACCORD_TLS_PIN)', async () => {
    const p = await pki()
    const pin = 'sha256//' + Buffer.alloc(32, 7).toString('base64')
    const given = { socketPath: '/tmp/x.sock', logger: false as const, tls: { ca: p.ca.certPath, pin: null as unknown as string } }
    // Now: accepted with pins [] even though the environment asks for a pin.
    expect(outcome(() => resolveClientOptions(given, { NAACCORD_TLS_PIN: pin }))).toBe('IPC_INVALID_OPTION')
  })

  it('server allow: null is refused, not replaced by NAACCORD_ALLOW_UIDS from the environment', () => {
    let resolved: unknown
    const code = outcome(() => {
      resolved = resolveServerOptions({ socketPath: '/tmp/x.sock', allow: null as unknown as false, logger: false }, { NAACCORD_ALLOW_UIDS: '65534' }).allow
    })
    // Now: accepted, allow = { uids: [65534], gids: [] } taken from the environment.
    expect(code, JSON.stringify(resolved)).toBe('IPC_INVALID_OPTION')
  })

  it('server trustedProxy: null is refused, not turned on by NAACCORD_TRUSTED_PROXY_UIDS', () => {
    let resolved: unknown
    const code = outcome(() => {
      resolved = resolveServerOptions({ socketPath: '/tmp/x.sock', trustedProxy: null as unknown as undefined, logger: false }, { NAACCORD_TRUSTED_PROXY_UIDS: '65534' }).trustedProxy
    })
    // Now: accepted, and uid 65534's identity header is believed.
    expect(code, JSON.stringify(resolved)).toBe('IPC_INVALID_OPTION')
  })

  it('server tls: null, listen: null and health: null are refused, as before', () => {
    for (const bad of [{ tls: null }, { listen: null }, { health: null }]) {
      expect(outcome(() => resolveServerOptions({ socketPath: '/tmp/x.sock', logger: false, ...(bad as object) }, {})), JSON.stringify(bad)).toBe('IPC_INVALID_OPTION')
    }
  })
})

// Not a regression of the reshaping (a6f1304 answers the same), but a break of what
// docs/server.md says ("No answer carries `X-Powered-By`"): header-policy.ts removes the header
// from the response's header map (removeHeader) before calling writeHead, but the headers given
// to writeHead itself, as an object or as a raw array, are written as they are.
describe('X-Powered-By never leaves (docs/server.md)', () => {
  it('not even when the app passes it to writeHead', async () => {
    const { serve } = await import('@naaccord/ipc-server')
    const { rawExchange } = await import('./helpers.js')
    const t = tempDir()
    defer(t.cleanup)
    const socketPath = path.join(t.dir, 's.sock')
    const ipc = await serve(
      (req, res) => {
        if (req.url === '/object') res.writeHead(200, { 'X-Powered-By': 'PHP/5.4' }).end('a')
        else res.writeHead(200, ['X-Powered-By', 'PHP/5.4']).end('b')
      },
      { socketPath, logger: false, handleSignals: false, acknowledgePlaintextSocket: true },
    )
    defer(() => ipc.close())
    for (const url of ['/object', '/array']) {
      const answer = await rawExchange({ path: socketPath }, `GET ${url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
      expect(answer, url).toMatch(/^HTTP\/1\.1 200/)
      expect(answer, url).not.toMatch(/x-powered-by/i)
    }
  })
})

// Not a regression (a6f1304 the same), but against docs/errors.md ("Every error is an instance
// of IpcError with a stable code"): a server that answers something that is not HTTP makes the
// client reject with undici's HTTPParserError as it is (request/error-map.ts maps no parser error).
describe('every client error is a coded IpcError (docs/errors.md)', () => {
  it('a non-HTTP answer is not handed out as undici HTTPParserError', async () => {
    const net = await import('node:net')
    const { createClient, IpcError } = await import('@naaccord/ipc-client')
    const t = tempDir()
    defer(t.cleanup)
    const socketPath = path.join(t.dir, 's.sock')
    const junk = net.createServer((s) => s.end('garbage\r\n\r\n'))
    await new Promise<void>((r) => junk.listen(socketPath, r))
    defer(() => junk.close())
    const client = createClient({ socketPath, logger: false, retries: 0, acknowledgePlaintext: true })
    defer(() => client.destroy())
    const err = await client.get('/').then(
      () => undefined,
      (e: unknown) => e,
    )
    expect((err as Error).name).not.toBe('HTTPParserError')
    expect(err).toBeInstanceOf(IpcError)
  })
})

describe('null options: refused by name (IPC_INVALID_OPTION), never a TypeError or a made-up value', () => {
  // shared/src/logger.ts:114-118 resolveLogger handles false and undefined only: null reaches
  // `value.child(...)`. Before 700487f null meant "our logger"; now it is a TypeError, not an
  // IpcError naming `logger` (server options.ts:240, client options.ts:142 anyValue, supervisor options.ts:54 anyValue).
  it('logger: null (server, client, supervisor)', () => {
    const sp = '/tmp/x.sock'
    expect(outcome(() => resolveServerOptions({ socketPath: sp, logger: null as never }, {}))).toBe('IPC_INVALID_OPTION')
    expect(outcome(() => resolveClientOptions({ socketPath: sp, logger: null as never }, {}))).toBe('IPC_INVALID_OPTION')
    expect(outcome(() => resolveSupervisorOptions({ command: ['x'], socketPath: sp, logger: null as never }, {}))).toBe('IPC_INVALID_OPTION')
  })

  // server/src/socket/group.ts:32 resolveGroup calls value.includes() on null (options.ts
  // socketGroup: optional(resolveGroup)): a TypeError instead of IPC_INVALID_OPTION naming socketGroup.
  it('socketGroup: null (server, supervisor)', () => {
    expect(outcome(() => resolveServerOptions({ socketPath: '/tmp/x.sock', logger: false, socketGroup: null as never }, {}))).toBe('IPC_INVALID_OPTION')
    expect(outcome(() => resolveSupervisorOptions({ command: ['x'], socketPath: '/tmp/x.sock', logger: false, socketGroup: null as never }, {}))).toBe('IPC_INVALID_OPTION')
  })

  // server/src/supervisor/options.ts:52 pidFile parses with path.resolve(String(v)): null becomes
  // the file "<cwd>/null" (and NAACCORD_PID_FILE is ignored), silently.
  it('supervisor pidFile: null is not the file "null" in the working folder', () => {
    let pidFile = ''
    const code = outcome(() => {
      pidFile = resolveSupervisorOptions({ command: ['x'], socketPath: '/tmp/x.sock', logger: false, pidFile: null as never }, { NAACCORD_PID_FILE: '/run/x.pid' }).pidFile
    })
    expect(code, pidFile).toBe('IPC_INVALID_OPTION')
  })

  // client/src/options.ts:134 tls is anyValue, and resolveTls (options.ts:225) hands null to
  // resolveOptions, whose rejectUnknown/`given ?? {}` (option-table.ts:117-118) read it as {}:
  // tls: null is "not given" (the environment's TLS is used), the very reading 700487f removed.
  it('client tls: null is refused, not read as "not given"', () => {
    expect(outcome(() => resolveClientOptions({ socketPath: '/tmp/x.sock', logger: false, tls: null as never }, { NAACCORD_TLS_CA: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----' }))).toBe('IPC_INVALID_OPTION')
  })

  // client/src/options.ts:146 parseHeaders: `value ?? {}` turns headers: null into the default.
  it('client headers: null is refused, not read as {}', () => {
    expect(outcome(() => resolveClientOptions({ socketPath: '/tmp/x.sock', logger: false, headers: null as never }, {}))).toBe('IPC_INVALID_OPTION')
  })
})

describe('X-Powered-By never leaves (docs/server.md), whatever form writeHead gets', () => {
  // header-policy.ts:37-38 filters the *last* argument; Node's writeHead(status, reason, obj) takes
  // `obj ??= reason`, so a trailing undefined/null (a wrapper forwarding (status, headers, msg?))
  // leaves the real headers unfiltered. Same path would let `Connection: keep-alive` out while draining.
  it('writeHead(200, headers, undefined) and writeHead(200, "OK", headers, undefined)', async () => {
    const t = tempDir()
    defer(t.cleanup)
    const socketPath = path.join(t.dir, 's.sock')
    const ipc = await serve(
      (req, res) => {
        const h = { 'X-Powered-By': 'PHP/5.4', A: '1' }
        const writeHead = res.writeHead as (...a: unknown[]) => typeof res
        if (req.url === '/u') writeHead.call(res, 200, h, undefined).end('a')
        else if (req.url === '/n') writeHead.call(res, 200, h, null).end('a')
        else writeHead.call(res, 200, 'OK', h, undefined).end('b')
      },
      { socketPath, logger: false, handleSignals: false, acknowledgePlaintextSocket: true },
    )
    defer(() => ipc.close())
    for (const url of ['/u', '/n', '/m']) {
      const answer = await rawExchange({ path: socketPath }, `GET ${url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
      expect(answer, url).toMatch(/^HTTP\/1\.1 200[^]*\r\nA: 1\r\n/)
      expect(answer, url).not.toMatch(/x-powered-by/i)
    }
  })

  // header-policy.ts:68-70 copies every flat array (not only those holding a decided header) and
  // drops an odd trailing element: Node refuses ['A', '1', 'B'] (ERR_INVALID_ARG_VALUE), the policy
  // now sends it without 'B'. A changed behaviour on a path the fix meant to leave alone.
  it('an odd flat header array is still refused by Node, as without the policy', async () => {
    const t = tempDir()
    defer(t.cleanup)
    const socketPath = path.join(t.dir, 's.sock')
    const ipc = await serve(
      (_req, res) => {
        try {
          res.writeHead(200, ['A', '1', 'B'] as never).end('sent')
        } catch (err) {
          res.end(`threw ${(err as { code?: string }).code}`)
        }
      },
      { socketPath, logger: false, handleSignals: false, acknowledgePlaintextSocket: true },
    )
    defer(() => ipc.close())
    const answer = await rawExchange({ path: socketPath }, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    expect(answer).toMatch(/threw ERR_INVALID_ARG_VALUE/)
  })
})

describe('IPC_BAD_RESPONSE as docs/errors.md describes it', () => {
  // undici's HTTPParserError does not always carry an HPE_* code: the docs promise the cause itself.
  it('the cause is undici\'s HTTPParserError, with the parser\'s reason in its message', async () => {
    const t = tempDir()
    defer(t.cleanup)
    const socketPath = path.join(t.dir, 's.sock')
    const junk = net.createServer((s) => s.once('data', () => s.end('garbage\r\n\r\n')))
    await new Promise<void>((r) => junk.listen(socketPath, r))
    defer(() => junk.close())
    const client = createClient({ socketPath, logger: false, retries: 0, acknowledgePlaintext: true })
    defer(() => client.destroy())
    const err = (await client.get('/').then(() => undefined, (e: unknown) => e)) as { code?: string; cause?: { name?: string; message?: string } }
    expect(err.code).toBe('IPC_BAD_RESPONSE')
    expect(err.cause?.name).toBe('HTTPParserError')
    expect(err.cause?.message).toMatch(/HTTP\/1\.1/)
  })
})
