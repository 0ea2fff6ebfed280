import net from 'node:net'
import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { createConnectionTracker } from './connection-tracker.js'

// Unconnected sockets: the tracker only counts them and destroys them.
const socket = () => new net.Socket()

describe('createConnectionTracker', () => {
  it('keeps the rest of maxConnections for authenticated sockets, however many unauthenticated ones come', () => {
    const t = createConnectionTracker({ maxConnections: 4, maxUnauthenticated: 2 })
    const [a, b, c] = [socket(), socket(), socket()]
    expect([t.admit(a, false), t.admit(b, false)]).toEqual([undefined, undefined])
    expect(t.admit(c, false)).toBe('max_unauthenticated')
    expect(c.destroyed).toBe(true)
    expect([t.admit(socket(), true), t.admit(socket(), true)]).toEqual([undefined, undefined])
    expect(t.admit(socket(), true)).toBe('max_connections')
    expect({ size: t.size, unauthenticated: t.unauthenticated }).toEqual({ size: 4, unauthenticated: 2 })
    expect(t.authenticate(a)).toBe(true)
    expect(t.authenticate(a)).toBe(false) // already moved
    expect({ size: t.size, unauthenticated: t.unauthenticated }).toEqual({ size: 4, unauthenticated: 1 })
  })

  it('close() cuts the unauthenticated sockets only, then refuses every socket; drained() waits for the rest', async () => {
    const t = createConnectionTracker({ maxConnections: 8, maxUnauthenticated: 4 })
    const [pending, passed] = [socket(), socket()]
    t.admit(pending, false)
    t.admit(passed, true)
    expect(t.close()).toBe(1)
    expect([pending.destroyed, passed.destroyed]).toEqual([true, false])
    expect(t.admit(socket(), true)).toBe('closing')
    await once(pending, 'close')
    expect(t.size).toBe(1)
    let drained = false
    const waiting = t.drained().then(() => (drained = true))
    await new Promise((r) => setImmediate(r))
    expect(drained).toBe(false)
    t.destroyAll()
    await waiting
    expect(t.size).toBe(0)
  })

  it('a socket cut before its handshake finished is not moved to the authenticated budget', async () => {
    const t = createConnectionTracker({ maxConnections: 8, maxUnauthenticated: 4 })
    const s = socket()
    t.admit(s, false)
    s.destroy()
    await once(s, 'close')
    expect(t.authenticate(s)).toBe(false)
    expect(t.size).toBe(0)
  })
})
