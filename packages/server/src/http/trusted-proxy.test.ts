import { describe, expect, it } from 'vitest'
import { resolveServerOptions } from '../options.js'
import { resolveTrustedProxy } from './trusted-proxy.js'

describe('resolveTrustedProxy', () => {
  it('is off unless given or set in the environment', () => {
    expect(resolveTrustedProxy(undefined, {})).toBeUndefined()
    expect(resolveServerOptions({ logger: false }, {}).trustedProxy).toBeUndefined()
  })

  it('takes uids and a header name (lower-cased), with the default header', () => {
    expect(resolveTrustedProxy({ uids: [108] }, {})).toEqual({ uids: [108], identityHeader: 'x-client-cert-subject' })
    expect(resolveTrustedProxy({ uids: '108,109', identityHeader: 'X-SSL-Client-DN' }, {})).toEqual({ uids: [108, 109], identityHeader: 'x-ssl-client-dn' })
  })

  it('reads NAACCORD_TRUSTED_PROXY_UIDS / _HEADER only when the option is not given', () => {
    const env = { NAACCORD_TRUSTED_PROXY_UIDS: '33', NAACCORD_TRUSTED_PROXY_HEADER: 'x-dn' }
    expect(resolveTrustedProxy(undefined, env)).toEqual({ uids: [33], identityHeader: 'x-dn' })
    expect(resolveTrustedProxy({ uids: [7] }, env)).toEqual({ uids: [7], identityHeader: 'x-client-cert-subject' })
  })

  it.each([
    [{}, 'trustedProxy.uids'],
    [{ uids: [] }, 'trustedProxy.uids'],
    [{ uids: ['x'] }, 'trustedProxy.uids[0]'],
    [{ uids: [1], identityHeader: 'bad header' }, 'trustedProxy.identityHeader'],
    [{ uids: [1], header: 'x' }, 'trustedProxy.header'],
  ])('refuses %j naming %s', (value, option) => {
    expect(() => resolveTrustedProxy(value as never, {})).toThrow(expect.objectContaining({ code: 'IPC_INVALID_OPTION', option }))
  })
})
