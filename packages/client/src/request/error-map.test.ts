import { describe, expect, it } from 'vitest'
import { errors } from 'undici'
import { mapConnectError } from '../connect/connect-errors.js'
import { mapRequestError, type MapContext } from './error-map.js'

const ctx: MapContext = { target: '/run/s.sock', timeoutMs: 3_000, connectTimeoutMs: 2_000, tls: undefined }
const errno = (code: string, message = code) => Object.assign(new Error(message), { code })

describe('mapRequestError: every undici and socket error becomes one of ours', () => {
  it.each([
    [new errors.HeadersTimeoutError(), 'IPC_TIMEOUT'],
    [new errors.BodyTimeoutError(), 'IPC_TIMEOUT'],
    [new errors.ConnectTimeoutError(), 'IPC_TIMEOUT'],
    [new errors.SocketError('other side closed'), 'IPC_CONNECTION_LOST'],
    [new errors.ResponseContentLengthMismatchError(), 'IPC_CONNECTION_LOST'],
    [new errors.ClientDestroyedError(), 'IPC_CLIENT_CLOSED'],
    [new errors.ClientClosedError(), 'IPC_CLIENT_CLOSED'],
    [errno('ENOENT'), 'IPC_SERVICE_UNAVAILABLE'],
    [errno('ECONNREFUSED'), 'IPC_SERVICE_UNAVAILABLE'],
    [errno('EAGAIN'), 'IPC_SERVICE_UNAVAILABLE'],
    [errno('EACCES'), 'IPC_PERMISSION_DENIED'],
    [errno('ECONNRESET'), 'IPC_CONNECTION_LOST'],
    [errno('EPIPE'), 'IPC_CONNECTION_LOST'],
    [new errors.SocketError('closed', undefined), 'IPC_CONNECTION_LOST'],
    [Object.assign(new errors.SocketError('other side closed'), { cause: errno('ECONNRESET') }), 'IPC_CONNECTION_LOST'],
    // TLS alerts that refuse our client certificate (RFC 8446 6.2), as Node names them.
    [errno('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'), 'IPC_TLS_CLIENT_CERT_REQUIRED'],
    [errno('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE'), 'IPC_TLS_CLIENT_CERT_REQUIRED'],
    [errno('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), 'IPC_TLS_CLIENT_CERT_REQUIRED'],
  ])('%s -> %s', (err, code) => {
    expect(mapRequestError(err, ctx)).toMatchObject({ code })
  })

  it('says which timeout fired and how long it was', () => {
    expect(mapRequestError(new errors.BodyTimeoutError(), ctx, 750)).toMatchObject({ code: 'IPC_TIMEOUT', timeoutMs: 750 })
    expect((mapRequestError(new errors.BodyTimeoutError(), ctx) as Error).message).toContain('response body')
    expect(mapRequestError(new errors.ConnectTimeoutError(), ctx)).toMatchObject({ timeoutMs: 2_000 })
  })

  it('an end of stream or a reset without an alert is a lost connection, not a refused certificate', () => {
    for (const err of [errno('ECONNRESET', 'Client network socket disconnected before secure TLS connection was established'), new errors.SocketError('other side closed')]) {
      expect(mapRequestError(err, ctx)).toMatchObject({ code: 'IPC_CONNECTION_LOST' })
    }
    // An alert that says nothing about our certificate is not a refusal either.
    expect(mapConnectError(errno('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE'), ctx)).not.toMatchObject({ code: 'IPC_TLS_CLIENT_CERT_REQUIRED' })
  })

  it("the caller's abort and our own errors pass through untouched", () => {
    const abort = new DOMException('stop', 'AbortError')
    expect(mapRequestError(abort, ctx)).toBe(abort)
    const aborted = new errors.RequestAbortedError()
    expect(mapRequestError(aborted, ctx)).toBe(aborted)
  })
})
