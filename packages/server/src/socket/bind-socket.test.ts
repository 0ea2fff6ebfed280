import { describe, expect, it } from 'vitest'
import { isPrivateBindPath } from './bind-socket.js'

describe('isPrivateBindPath (the name naaccord-ipc run binds under, and nothing looser)', () => {
  const sock = '/run/naaccord/service.sock'
  it('accepts exactly <folder>/.<name>.XXXXXX/s beside the socket', () => {
    expect(isPrivateBindPath('/run/naaccord/.service.sock.Ab12Cd/s', sock)).toBe(true)
  })
  it.each([
    ['another folder', '/run/other/.service.sock.Ab12Cd/s'],
    ['a folder above', '/run/.service.sock.Ab12Cd/s'],
    ['a dot folder of another shape', '/run/naaccord/.evil/s'],
    ['the private name of another socket', '/run/naaccord/.other.sock.Ab12Cd/s'],
    ['a suffix of 5 characters', '/run/naaccord/.service.sock.Ab12C/s'],
    ['a suffix with a dot', '/run/naaccord/.service.sock.Ab.2Cd/s'],
    ['another file name inside', '/run/naaccord/.service.sock.Ab12Cd/service.sock'],
    ['"." as the folder', '/run/naaccord/./s'],
    ['".." as the folder', '/run/naaccord/../s'],
    ['one level deeper', '/run/naaccord/.service.sock.Ab12Cd/x/s'],
  ])('refuses %s', (_what, bound) => {
    expect(isPrivateBindPath(bound, sock)).toBe(false)
  })
})
