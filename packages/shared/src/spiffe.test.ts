import { describe, expect, it } from 'vitest'
import { parseSpiffeId, spiffeIdProblem, uriSans } from './spiffe.js'

describe('SPIFFE IDs', () => {
  it.each(['spiffe://example.org/web', 'spiffe://prod.example-1.org/ns/default/sa/web_server.v2'])('accepts %s', (id) => {
    expect(spiffeIdProblem(id)).toBeUndefined()
    expect(parseSpiffeId('x', id)).toBe(id)
  })

  it.each([
    ['https://example.org/web', 'spiffe://'],
    ['spiffe://EXAMPLE.org/web', 'trust domain'],
    ['spiffe://user@example.org/web', 'trust domain'],
    ['spiffe://example.org', 'path'],
    ['spiffe://example.org/', 'segment'],
    ['spiffe://example.org/a//b', 'segment'],
    ['spiffe://example.org/a/./b', 'segment'],
    ['spiffe://example.org/web?x=1', 'segment'],
    [`spiffe://example.org/${'a'.repeat(2100)}`, '2048'],
  ])('refuses %s (%s)', (id, why) => {
    expect(spiffeIdProblem(id)).toContain(why)
    expect(() => parseSpiffeId('tls.serverId', id)).toThrow(expect.objectContaining({ code: 'IPC_INVALID_OPTION', option: 'tls.serverId' }))
  })

  it('reads URI SANs from Node subjectaltname text', () => {
    expect(uriSans('DNS:services, URI:spiffe://example.org/services, IP Address:127.0.0.1')).toEqual(['spiffe://example.org/services'])
    expect(uriSans(undefined)).toEqual([])
  })
})
