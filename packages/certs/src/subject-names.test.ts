import { describe, expect, it } from 'vitest'
import { isIpcError } from '@naaccord/ipc-shared'
import { fileBaseName, normaliseNames, subjectNames } from './subject-names.js'

describe('normaliseNames', () => {
  it('lower-cases DNS names, canonicalises IPs and drops duplicates, keeping the first first', () => {
    expect(normaliseNames('names', ['LocalHost.', '127.0.0.1', 'localhost', '[::1]', '0:0:0:0:0:0:0:1'], 'server')).toEqual(['localhost', '127.0.0.1', '::1'])
    expect(normaliseNames('names', ['::FFFF:10.0.0.1'], 'server')).toEqual(['::ffff:a00:1'])
  })

  it.each([
    [[], 'server'],
    [[''], 'server'],
    [['bad name'], 'server'],
    [['-leading.example'], 'server'],
    [['a'.repeat(64)], 'server'],
    [['fe80::1%eth0'], 'server'],
    [['*.internal'], 'server'],
    [['*.services.internal'], 'client'],
    [[`${'a'.repeat(60)}.${'b'.repeat(10)}`], 'server'],
  ] as const)('refuses %j for a %s with IPC_INVALID_OPTION', (names, kind) => {
    let err: unknown
    try {
      normaliseNames('names', names, kind)
    } catch (e) {
      err = e
    }
    expect(isIpcError(err, 'IPC_INVALID_OPTION')).toBe(true)
  })

  it('accepts a server wildcard below a two-label domain', () => {
    expect(normaliseNames('names', ['*.services.internal'], 'server')).toEqual(['*.services.internal'])
  })

  it('names a CLI flag as given, and an API option by index', () => {
    expect(() => normaliseNames('--name', ['ok', 'not ok'], 'server')).toThrow(/^--name: "not ok"/)
    expect(() => normaliseNames('names', ['ok', 'not ok'], 'server')).toThrow(/^names\[1\]: "not ok"/)
  })
})

describe('subjectNames', () => {
  it('gives a localhost server the loopback IPs', () => {
    expect(subjectNames('server', ['localhost', 'services.internal'])).toEqual({
      commonName: 'localhost',
      dns: ['localhost', 'services.internal'],
      ip: ['127.0.0.1', '::1'],
      uri: [],
    })
  })

  it('gives a client a URI SAN and no loopback IPs', () => {
    expect(subjectNames('client', ['localhost'])).toEqual({ commonName: 'localhost', dns: ['localhost'], ip: [], uri: ['urn:naaccord:client:localhost'] })
  })

  it('puts IP literals in IP SANs only', () => {
    expect(subjectNames('server', ['10.0.0.5', 'svc'])).toEqual({ commonName: '10.0.0.5', dns: ['svc'], ip: ['10.0.0.5'], uri: [] })
  })
})

describe('fileBaseName', () => {
  it.each([
    ['localhost', 'localhost'],
    ['*.services.internal', 'wildcard.services.internal'],
    ['::1', '1'],
    ['web-server', 'web-server'],
  ])('%s -> %s', (name, base) => {
    expect(fileBaseName(name)).toBe(base)
  })
})
